"""``jolteon``: profile every stage offline, model each stage's time, then static per-stage
sizes chosen under the deadline with a probabilistic bound.

From Zhang, Jin, Liu, Jin, Liu et al., "Jolteon: Unleashing the Promise of Serverless for
Serverless Workflows", USENIX NSDI 2024: §4.1 (the performance model), §4.2 (the chance-
constrained optimisation and its sample-based bound), §5 (profiling); and the authors' public
implementation (github.com/pkusys/Jolteon, ``workflow/perf_model.py``, ``utils/solver.py``),
which this follows, not copies:

- *Profiling* (§5): every stage runs at a few configurations before the workflow is scheduled
  (the tool's sizes 1,024, 1,792, 3,584, 5,120 and 7,168 MB), ``RUNS`` times each. Here a
  stage's work is a trial shape's per-epoch work (every stage of a job runs the same shapes for
  more or fewer epochs), so one task of every shape of the first stage is profiled. The runs are
  billed to the job; being offline, their time is not the job's: the deadline counts from the
  end of profiling (the bench reports the JCT without it, and the profiling time apart).
- *Model* (§4.1): a stage's time at ``k = memory / 1,792`` vCPUs is
  ``a/k + b·log(k)/k + c/k² + d`` (the compute term; read and write are ``a/k + b`` terms
  folded into it), fitted by non-linear least squares with the covariance of its parameters.
- *Bound* (§4.2): the parameters are uncertain; Jolteon draws samples of them and requires the
  workflow to meet the deadline with probability at least ``1 − ε`` (the tool's ``risk``,
  0.05), taking the ``1 − ε`` percentile of the sampled latency. Here ``SAMPLES`` draws of the
  parameters (and of the measured run-to-run scatter) give each stage's time at that
  percentile; a draw holds for every stage of a shape, so stage times move together and their
  percentiles add up to the percentile of the job's time.
- *Solver* (§4.2): per-stage sizes minimising the expected cost subject to the bound, over the
  tool's configuration space of ``k`` ∈ {0.5, 1, 1.5, 2, 2.5, 3, 4} vCPUs (896–7,168 MB; the
  tool solves the relaxation with SLSQP, then probes neighbouring configurations); here the
  exact dynamic programme over the stages' Pareto options (``deadline_split.split``) on that
  space, above the memory the profiling runs used.

It never measures the job's own runs: the sizes come from the offline profile only. They are
re-solved when each stage opens with the time then left (the tool schedules once before the
run; re-solving can only help it when earlier stages ran faster or slower than planned).
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from service.models.enums import StageKind
from service.policies.base import MemoryDecision, PolicyContext
from service.policies.costing import invocation_usd
from service.policies.deadline_split import fastest, split, stage_options
from service.policies.peers.profiling import (
    Profile,
    profile_every_shape,
    profiles,
    profiling_decisions,
    profiling_s,
)
from service.policies.power_tuning import PowerTuning
from service.spec import MAX_MEMORY_MB
from service.workflows.plan import StagePlan, TaskPlan

SIZES = (1024, 1792, 3584, 5120, 7168)
SPACE = tuple(int(k * 1792) for k in (0.5, 1, 1.5, 2, 2.5, 3, 4))  # the solver's k_configs
RUNS = 3
VCPU_MB = 1792  # the tool's equivalent-vCPU unit
EPSILON = 0.05
SAMPLES = 200


def stage_time(k: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    return a / k + b * np.log(k) / k + c / k**2 + d


@dataclass(frozen=True)
class StageModel:
    """One shape's per-epoch time model and the draws the bound is taken over."""

    params: tuple[float, ...]
    draws: np.ndarray  # SAMPLES × 4 parameter draws
    scatter: np.ndarray  # SAMPLES relative run-to-run factors
    init_ms: float

    def mean_ms(self, memory_mb: int) -> float:
        k = np.asarray(memory_mb / VCPU_MB)
        return max(float(stage_time(k, *self.params)), 1e-3)

    def bound_ms(self, memory_mb: int, quantile: float) -> float:
        k = memory_mb / VCPU_MB
        a, b, c, d = self.draws.T
        times = np.maximum(stage_time(k, a, b, c, d), 1e-3) * self.scatter
        return float(np.quantile(times, quantile))

    @classmethod
    def fit(cls, profile: Profile, seed: int = 0) -> StageModel:
        sizes = [m for m in profile.sizes for _ in profile.per_epoch_ms[m]]
        durations = [t for m in profile.sizes for t in profile.per_epoch_ms[m]]
        k = np.asarray(sizes, float) / VCPU_MB
        y = np.asarray(durations, float)
        rng = np.random.default_rng(seed)  # fixed: the policy stays a pure function
        params, cov = _fit(k, y)
        try:
            draws = rng.multivariate_normal(params, cov, size=SAMPLES, check_valid="ignore")
        except (ValueError, np.linalg.LinAlgError):
            draws = np.tile(params, (SAMPLES, 1))
        fitted = np.maximum(stage_time(k, *params), 1e-3)
        residuals = np.log(y / fitted)
        spread = float(np.std(residuals, ddof=1)) if len(y) > 1 else 0.0
        scatter = np.exp(rng.normal(0.0, spread, size=SAMPLES))
        return cls(tuple(float(p) for p in params), draws, scatter, profile.mean_init_ms())


def _fit(k: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least squares on the four-term model; with fewer than four sizes, ``a/k + d``."""
    if len(set(k.tolist())) >= 4:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                params, cov = curve_fit(stage_time, k, y, maxfev=20000)
                if np.all(np.isfinite(cov)):
                    return params, cov
            except (RuntimeError, ValueError):
                pass
    if len(set(k.tolist())) >= 2:
        design = np.column_stack([1 / k, np.ones_like(k)])
        (a, d), *_ = np.linalg.lstsq(design, y, rcond=None)
        residual = y - design @ np.array([a, d])
        dof = max(1, len(y) - 2)
        cov2 = np.linalg.pinv(design.T @ design) * float(residual @ residual) / dof
        cov = np.zeros((4, 4))
        cov[np.ix_([0, 3], [0, 3])] = cov2
        return np.array([a, 0.0, 0.0, d]), cov
    return np.array([0.0, 0.0, 0.0, float(np.mean(y))]), np.zeros((4, 4))


@dataclass(frozen=True)
class Jolteon(PowerTuning):
    candidates: tuple[int, ...] = SIZES
    invocations_per_size: int = RUNS
    name: str = "jolteon"
    epsilon: float = EPSILON

    def profile_tasks(self, first: StagePlan, round_: int = 0) -> tuple[TaskPlan, ...]:
        return profile_every_shape(first, self.candidates, self.invocations_per_size)

    def allocate(self, context: PolicyContext) -> dict[str, MemoryDecision]:
        if context.stage.kind is StageKind.PROFILING:
            return profiling_decisions(context.stage, "jolteon-profile")
        spec, obs = context.spec, context.observations
        arch = spec.workload.base_architecture
        measured = profiles(obs)
        counts = Counter(task.shape for task in context.stage.tasks)
        if any(shape not in measured for shape in counts):
            decision = MemoryDecision(
                MAX_MEMORY_MB, "jolteon", "jolteon: a shape was not profiled: the largest size"
            )
            return {task.key: decision for task in context.stage.tasks}
        models = {s: StageModel.fit(measured[s]) for s in counts}
        floors = {s: measured[s].floor_mb() for s in counts}
        grids = {s: [m for m in SPACE if m >= floors[s]] or [MAX_MEMORY_MB] for s in counts}
        quantile = 1 - self.epsilon
        training = spec.kind == "training"
        current = obs.current_mb.get("worker") if training else None

        def options(stage_counts: dict[str, int], epochs: int, first: bool):
            def cold_ms(s: str, m: int) -> float:
                # HPO tasks start cold every stage; training workers once, at a new size
                if not training or (first and m != current):
                    return models[s].init_ms
                return 0.0

            return stage_options(
                stage_counts,
                grids,
                lambda s, m: (models[s].bound_ms(m, quantile) * epochs + cold_ms(s, m)) / 1000,
                lambda s, m: invocation_usd(m, models[s].mean_ms(m) * epochs, cold_ms(s, m), arch),
                context.stage_overhead_s,
            )

        mix = {s: n / sum(counts.values()) for s, n in counts.items()}
        epochs_now = max(t.epoch_to - t.epoch_from for t in context.stage.tasks)
        stages = [options(dict(counts), epochs_now, True)]
        for outline in context.outline:
            future = {s: max(1, math.ceil(outline.tasks * share)) for s, share in mix.items()}
            stages.append(options(future, outline.epochs, False))
        budget = spec.qos.deadline_s - max(
            0.0, obs.elapsed_s - profiling_s(obs, context.stage_overhead_s)
        )
        plan = split(stages, budget)
        if plan is None:
            chosen = fastest(stages)[0]
            why = "no plan meets the deadline at the bound: the fastest sizes"
        else:
            chosen = plan[0]
            predicted = sum(o.cost_usd for o in plan)
            why = (
                f"per-stage sizes meeting the {budget:.1f} s left with probability "
                f"≥ {1 - self.epsilon:.0%} at least cost (predicted ${predicted:.6f})"
            )
        return {
            task.key: MemoryDecision(
                chosen.memory[task.shape], "jolteon", f"jolteon: {task.shape}: {why}"
            )
            for task in context.stage.tasks
        }
