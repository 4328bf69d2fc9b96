"""``parrotfish``: sample a few sizes, fit a parametric curve, then one size per function.

From Moghimi, Xu, Lu, Alvarez and Rodriguez Guerrero, "Parrotfish: Parametric Regression for
Optimizing Serverless Functions", ACM SoCC 2023: §3 (the parametric model), §4 (sampling and
the recommendation), and the authors' public implementation (github.com/ubc-cirrus-lab/
parrotfish), which this follows, not copies:

- *Sampling* (§4.1): the initial sample is three sizes of the memory space — its smallest, the
  one a third of the way up and its largest (128, 3,520 and 10,240 MB on Lambda's space in
  64 MB steps) — each invoked ``INVOCATIONS`` times (the tool's default of 4 per size). A size
  that runs out of memory moves up (the tool retries at +128 MB; here the loop's out-of-memory
  retry raises it, and the run counts at the size it ran at).
- *Model* (§3): billed cost ``c(m) = a0·m + a1·m·exp(−m/a2)``, with non-negative parameters
  fitted by non-linear least squares (the tool uses ``scipy.optimize.curve_fit``; here a scan
  of ``a2`` with exact non-negative least squares for the rest, ``Curve.fit``). Per-invocation
  duration is ``c(m)/(m·price)``, so the same family is fitted on durations:
  ``d(m) = a0 + a1·exp(−m/a2)``.
- *Several payloads* (§4.3): one curve per payload, and the size that minimises the weighted
  sum of their predicted costs. Here the payloads are the job's trial shapes (one task of each
  shape of the first stage), weighted by their share of the stage's tasks.
- *Constraint* (§4.2): an execution-time threshold filters the candidate sizes. A job has a
  deadline rather than a per-invocation threshold, so a size qualifies when the job's predicted
  time at it — every stage still to run, one after another, at the slowest shape's predicted
  duration plus a cold start — fits the time left. When none does, the fastest predicted size.
- *Offline*: the tool explores before the function is used, so its runs are billed to the job
  but their time is not the job's: the deadline counts from the end of profiling (the bench
  reports the JCT without it, and the profiling time apart).
- *One size per function*: the size is chosen once, when the first stage of the job proper
  opens, and kept for every later stage (an out-of-memory retry may still raise it).

- *Adaptive sampling* (§4.1): after the initial sizes, further sizes one at a time, each the
  unexplored size minimising predicted cost × (1 + knowledge) (a Gaussian bump of σ = 200 MB
  around every explored size), refitting after each, up to the tool's 20 data points: two
  more sizes × 4 invocations, each in a profiling stage of its own.

Left out: the tool's early stop of adaptive sampling (it always takes both sizes here) and its
dynamic re-sampling of sizes whose runs vary by more than 5 % (more billed runs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from service.models.enums import StageKind
from service.policies.base import MemoryDecision, PolicyContext, same_for_all
from service.policies.costing import invocation_usd
from service.policies.peers.profiling import (
    Profile,
    is_profile,
    measured_shape,
    profile_every_shape,
    profiles,
    profiling_decisions,
    profiling_s,
)
from service.policies.power_tuning import PowerTuning
from service.spec import MAX_MEMORY_MB, MIN_MEMORY_MB
from service.workflows.plan import StagePlan, TaskPlan

STEP_MB = 64
SPACE = tuple(range(MIN_MEMORY_MB, MAX_MEMORY_MB + 1, STEP_MB))
INITIAL = (SPACE[0], SPACE[math.ceil(len(SPACE) / 3)], SPACE[-1])
INVOCATIONS = 4
# The tool stops sampling at 20 data points (MAX_TOTAL_SAMPLE_COUNT): the three initial sizes
# × 4 invocations, then two adaptive sizes × 4.
ADAPTIVE_ROUNDS = 2
KNOWLEDGE_MB = 200.0  # the knowledge bump's standard deviation (FitToRealCostObjective)


def duration_curve(m: np.ndarray, a0: float, a1: float, a2: float) -> np.ndarray:
    """Parrotfish's ``a0·m + a1·m·exp(−m/a2)`` cost family, divided by ``m``."""
    return a0 + a1 * np.exp(-m / a2)


@dataclass(frozen=True)
class Curve:
    a0: float
    a1: float
    a2: float

    def __call__(self, memory_mb: int) -> float:
        return float(duration_curve(np.asarray(float(memory_mb)), self.a0, self.a1, self.a2))

    @classmethod
    def fit(cls, profile: Profile) -> Curve:
        """Least squares with non-negative parameters. For a fixed ``a2`` the model is linear
        in ``a0, a1``, so the fit scans ``a2`` on a log grid and solves the rest exactly
        (non-negative least squares): the same minimum ``curve_fit`` looks for, without its
        convergence failures on three sizes."""
        sizes = [m for m in profile.sizes for _ in profile.per_epoch_ms[m]]
        durations = [d for m in profile.sizes for d in profile.per_epoch_ms[m]]
        x, y = np.asarray(sizes, float), np.asarray(durations, float)
        if len(set(sizes)) < 2:  # nothing to fit a curve on: flat at what was measured
            return cls(float(np.mean(y)), 0.0, 1.0)
        best: tuple[float, Curve] | None = None
        for a2 in np.geomspace(16.0, 20_000.0, 200):
            design = np.column_stack([np.ones_like(x), np.exp(-x / a2)])
            (a0, a1), residual = nnls(design, y)
            if best is None or residual < best[0] - 1e-12:
                best = (residual, cls(float(a0), float(a1), float(a2)))
        assert best is not None
        return best[1]


@dataclass(frozen=True)
class Parrotfish(PowerTuning):
    candidates: tuple[int, ...] = INITIAL
    invocations_per_size: int = INVOCATIONS
    name: str = "parrotfish"

    adaptive_rounds: int = ADAPTIVE_ROUNDS

    @property
    def profiling_rounds(self) -> int:
        return 1 + self.adaptive_rounds

    def profile_tasks(self, first: StagePlan, round_: int = 0) -> tuple[TaskPlan, ...]:
        if round_ == 0:
            return profile_every_shape(first, self.candidates, self.invocations_per_size)
        # adaptive sampling: the size is chosen when the stage opens, from the runs so far
        return profile_every_shape(first, (f"next{round_}",), self.invocations_per_size)

    def allocate(self, context: PolicyContext) -> dict[str, MemoryDecision]:
        if context.stage.kind is StageKind.PROFILING:
            if context.stage.position == 0:
                return profiling_decisions(context.stage, "parrotfish-profile")
            return self.sample_next(context)
        chosen = [
            m for shape, m in context.observations.current_mb.items() if not is_profile(shape)
        ]
        if chosen:  # one size per function, chosen once
            memory = min(chosen)
            reason = f"parrotfish: the size chosen after profiling, {memory} MB"
        else:
            memory, reason = self.recommend(context)
        return same_for_all(context.stage, MemoryDecision(memory, "parrotfish", reason))

    def sample_next(self, context: PolicyContext) -> dict[str, MemoryDecision]:
        """Adaptive sampling (§4.1): per shape, the unexplored size that minimises predicted
        cost × (1 + knowledge), knowledge being a Gaussian (σ = 200 MB) bump around every
        size explored — the cheap region, away from what is already known."""
        measured = profiles(context.observations)
        arch = context.spec.workload.base_architecture
        decisions = {}
        for task in context.stage.tasks:
            shape = measured_shape(task.shape)
            profile = measured.get(shape)
            if profile is None:
                memory, why = MAX_MEMORY_MB, "nothing measured"
            else:
                curve = Curve.fit(profile)
                explored = profile.sizes + list(profile.oom_mb)
                floor = profile.floor_mb(STEP_MB)
                left = [m for m in SPACE if m >= floor and m not in explored] or [MAX_MEMORY_MB]

                def value(m: int, curve=curve, explored=explored) -> float:
                    knowledge = sum(
                        math.exp(-((m - e) ** 2) / (2 * KNOWLEDGE_MB**2)) for e in explored
                    )
                    return invocation_usd(m, curve(m), 0.0, arch) * (1 + knowledge)

                memory = min(left, key=lambda m: (value(m), m))
                why = "lowest cost × knowledge of the unexplored sizes"
            decisions[task.key] = MemoryDecision(
                memory, "parrotfish-profile", f"parrotfish adaptive sample of {shape}: {why}"
            )
        return decisions

    def recommend(self, context: PolicyContext) -> tuple[int, str]:
        measured = profiles(context.observations)
        if not measured:
            return MAX_MEMORY_MB, "parrotfish: no profiling run succeeded: the largest size"
        arch = context.spec.workload.base_architecture
        counts = {s: sum(1 for t in context.stage.tasks if t.shape == s) for s in measured}
        total = sum(counts.values()) or 1
        curves = {s: Curve.fit(p) for s, p in measured.items()}
        floor = max(p.floor_mb(STEP_MB) for p in measured.values())
        space = [m for m in SPACE if m >= floor] or [MAX_MEMORY_MB]
        inits = {s: max(p.init_ms, default=0.0) for s, p in measured.items()}

        def cost(m: int) -> float:  # the payloads' weighted predicted cost per invocation
            return sum(
                counts[s] / total * invocation_usd(m, curves[s](m), 0.0, arch) for s in curves
            )

        epochs = [max(t.epoch_to - t.epoch_from for t in context.stage.tasks)]
        epochs += [outline.epochs for outline in context.outline]

        def job_s(m: int) -> float:
            slowest = max(curves.values(), key=lambda c: c(m))
            per_stage = [
                (slowest(m) * e + max(inits.values())) / 1000 + context.stage_overhead_s
                for e in epochs
            ]
            return sum(per_stage)

        offline = profiling_s(context.observations, context.stage_overhead_s)
        left = context.spec.qos.deadline_s - max(0.0, context.observations.elapsed_s - offline)
        fitting = [m for m in space if job_s(m) <= left]
        if fitting:
            best = min(fitting, key=lambda m: (cost(m), m))
            why = f"cheapest predicted size whose predicted {job_s(best):.1f} s fits {left:.1f} s"
        else:
            quickest = min(job_s(m) for m in space)
            best = min((m for m in space if job_s(m) <= quickest * 1.03), key=cost)
            why = f"no size fits the {left:.1f} s left: the fastest predicted"
        sampled = sorted({m for p in measured.values() for m in p.sizes})
        return best, f"parrotfish: curves fitted on {sampled} MB; {best} MB, {why}"
