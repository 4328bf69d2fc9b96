"""``oracle`` (simulation only): CE-scaling's optimiser with perfect knowledge.

It is handed the true duration, cold start and footprint of every task shape at every memory
size (from the simulator's workload model) and, for training, the number of rounds the job will
run (the simulated loss is known in advance), so it never explores and never guesses a curve or
a round count. Benchmarks report every policy's cost relative to it, and it must be their floor
(docs/benchmarks.md, "The oracle as a floor").

What it knows that ce-scaling's plan does not model:

- a cold start at the size it happens at (``TrueModel.init_at``): the simulator's cold start
  includes the first run's loading at that size's CPU share, seconds at 128 MB where it is a few
  hundred ms at one vCPU;
- HPO: a rung at the size of the rung before finds that rung's environments warm, so only its
  tasks beyond them start cold (``warm_split``); ce-scaling counts the warm environments of
  the rung it decides only, and prices later rungs cold;
- the noise: a stage takes as long as the slowest of its n parallel tasks, whose run-to-run
  noise is log-normal of ``sigma``. It plans each stage at the expected slowest of n draws
  and keeps a margin so that the whole remaining job meets the deadline with probability
  ``JOB_QUANTILE`` (the stages' spreads add in quadrature).

What it does not know, and so what a policy can still win on by luck: each invocation's noise
draw (a policy that plans nearer the median and happens to meet the deadline pays less) and,
for HPO, which trials will survive each rung. Training goes through ce-scaling's own resize
plan (with ``init_ms``, the cold start at one vCPU) and guards (minimum gain, cooldown).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from statistics import NormalDist
from typing import Any

from service.domain.lambda_limits import MB_PER_VCPU
from service.policies import guards
from service.policies.base import PolicyContext
from service.policies.ce_scaling import CeScaling
from service.policies.costing import grid_between, invocation_usd
from service.policies.deadline_split import stage_options
from service.policies.shape_model import DurationModel
from service.policies.warm_split import Memory, Priced, warm_split

# (task params, epochs, memory_mb) -> (duration_ms, init_ms, peak_mb), without noise
Truth = Callable[[dict[str, Any], int, int], tuple[float, float, float]]

# The remaining job meets its deadline with this probability, given the noise (one-sided).
JOB_QUANTILE = 0.95


@cache
def slowest_of(tasks: int) -> tuple[float, float]:
    """Mean and standard deviation of the largest of ``tasks`` standard-normal draws (density
    n φ(z) Φ(z)^(n-1), integrated on a grid): (0, 1) for one task, (1.95, 0.49) for 27."""
    if tasks <= 1:
        return 0.0, 1.0
    normal, step = NormalDist(), 0.005
    grid = [-8.0 + step * i for i in range(int(16.0 / step) + 1)]
    density = [tasks * normal.pdf(z) * normal.cdf(z) ** (tasks - 1) * step for z in grid]
    mean = sum(z * p for z, p in zip(grid, density, strict=True))
    variance = sum((z - mean) ** 2 * p for z, p in zip(grid, density, strict=True))
    return mean, math.sqrt(variance)


def job_z() -> float:
    return NormalDist().inv_cdf(JOB_QUANTILE)


@dataclass(frozen=True)
class TrueModel:
    truth: Truth
    params: dict[str, Any]
    floor_mb: int
    sigma: float = 0.0
    # parallel tasks of this shape in the stage that trains this many epochs (HPO rungs differ
    # in epochs; training rounds all have the workers); a stage not listed: the most of any
    tasks_by_epochs: Mapping[int, int] = field(default_factory=dict)
    rounds: int = 1  # training: the rounds left, each as long as its slowest worker

    @property
    def init_ms(self) -> float:
        """The cold start as one figure (ce-scaling's training plan reads it): at one vCPU."""
        return self.init_at(MB_PER_VCPU)

    def init_at(self, memory_mb: int) -> float:
        """What a cold start adds at ``memory_mb``: init and the first run's loading at that
        size's CPU share."""
        return self.truth(self.params, 1, memory_mb)[1]

    def tasks(self, epochs: int) -> int:
        return self.tasks_by_epochs.get(epochs, max(self.tasks_by_epochs.values(), default=1))

    def duration_ms(self, memory_mb: int, epochs: int) -> float:
        return self.truth(self.params, epochs, memory_mb)[0]

    def upper_ms(self, memory_mb: int, epochs: int) -> float:
        """The stage's (a training round's) time to plan for: the expected slowest of its
        tasks, plus this stage's share of a ``JOB_QUANTILE`` margin over ``rounds`` such
        stages (spreads add in quadrature, so each round carries 1/√rounds of it)."""
        mean, spread = slowest_of(self.tasks(epochs))
        z = mean + job_z() * spread / math.sqrt(max(1, self.rounds))
        return self.duration_ms(memory_mb, epochs) * math.exp(z * self.sigma)

    def relative_error(self, memory_mb: int) -> float:
        return 0.0


@dataclass(frozen=True)
class Oracle(CeScaling):
    truth: Truth = field(default=lambda params, epochs, memory: (0.0, 0.0, 0.0))
    sigma: float = 0.0  # the platform's run-to-run noise (log-normal)
    name: str = "oracle"
    safety: float = 1.0
    rounds: int | None = None  # training: the rounds the job will run (the loss is known)

    def rounds_left(self, context: PolicyContext) -> int:
        if self.rounds is None:
            return CeScaling.rounds_left(context)
        return max(1, self.rounds - context.stage.position)

    def rounds_before_fit(self, context: PolicyContext) -> int:
        # the rounds are known: no recoverable plan while they are not
        return CeScaling.rounds_before_fit(context) if self.rounds is None else 0

    def models(self, context: PolicyContext, shapes: list[str]) -> dict[str, DurationModel]:
        counts = Counter(task.shape for task in context.stage.tasks)
        total = sum(counts.values())
        epochs_now = max(t.epoch_to - t.epoch_from for t in context.stage.tasks)
        training = context.spec.kind == "training"
        models = {}
        for shape in shapes:
            params = next(t.params for t in context.stage.tasks if t.shape == shape)
            # a later stage's tasks of this shape, as split_hpo counts them: its share of this
            tasks = {
                o.epochs: max(1, math.ceil(o.tasks * counts[shape] / total))
                for o in context.outline
            }
            tasks[epochs_now] = counts[shape]
            peak = self.truth(params, 1, MB_PER_VCPU)[2]
            models[shape] = TrueModel(
                remembered(self.truth, params),
                params,
                math.ceil(peak) + 1,
                self.sigma,
                tasks,
                self.rounds_left(context) if training else 1,
            )
        return models

    # -- HPO: the deadline split, with warm environments between rungs ------------------------
    def split_hpo(self, context: PolicyContext, models: dict[str, DurationModel]):
        spec, obs = context.spec, context.observations
        arch = spec.workload.architecture
        counts = Counter(task.shape for task in context.stage.tasks)
        mix = {shape: n / sum(counts.values()) for shape, n in counts.items()}
        stages = [(dict(counts), max(t.epoch_to - t.epoch_from for t in context.stage.tasks))]
        for outline in context.outline:
            future = {s: max(1, math.ceil(outline.tasks * share)) for s, share in mix.items()}
            stages.append((future, outline.epochs))
        true: dict[str, TrueModel] = models  # type: ignore[assignment]
        grids = {
            s: grid_between(max(true[s].floor_mb, self.min_memory_mb), self.max_memory_mb)
            for s in counts
        }
        # environments started so far, by size (every shape runs on the job's one function)
        warm_now = Counter(x.memory_mb for x in obs.samples if x.ok and x.init_ms)

        def options(k: int) -> list[Memory]:
            stage_counts, epochs = stages[k]
            fitting = {
                s: self.within_timeout(true[s], grids[s], epochs, spec) for s in stage_counts
            }
            found: dict[tuple, Memory] = {}
            for cold in (True, False):
                for option in stage_options(
                    stage_counts,
                    fitting,
                    lambda s, m, e=epochs, c=cold: expected_ms(true[s], m, e, c) / 1000,
                    lambda s, m, e=epochs, c=cold: invocation_usd(
                        m, true[s].duration_ms(m, e), true[s].init_at(m) if c else 0.0, arch
                    ),
                ):
                    found[tuple(sorted(option.memory.items()))] = option.memory
            return list(found.values())

        def price(k: int, option: Memory, previous: Memory | None) -> Priced:
            stage_counts, epochs = stages[k]
            envs = warm_now.copy()
            if previous is not None:
                for size, n in usage(stages[k - 1][0], previous).items():
                    envs[size] = max(envs[size], n)
            at = usage(stage_counts, option)
            time_ms, spread_ms, cost = 0.0, 0.0, 0.0
            for shape, n in stage_counts.items():
                m, model = option[shape], true[shape]
                cold = max(0, at[m] - envs[m]) / at[m]
                time_ms = max(time_ms, expected_ms(model, m, epochs, cold > 0))
                run = model.duration_ms(m, epochs) + (model.init_at(m) if cold else 0.0)
                spread_ms = max(spread_ms, run * self.sigma * slowest_of(n)[1])
                cost += n * invocation_usd(
                    m, model.duration_ms(m, epochs), cold * model.init_at(m), arch
                )
            return Priced(time_ms / 1000 + context.stage_overhead_s, cost, spread_ms / 1000)

        candidates = [options(k) for k in range(len(stages))]
        budget = (spec.qos.deadline_s - obs.elapsed_s) * self.safety
        # The margin depends on the plan's durations: settle it. When no plan leaves room for
        # it, the last plan that met the deadline at its expected times stands (cheaper than
        # the fastest sizes, which need not leave room for it either).
        plan, margin, kept = None, 0.0, 0.0
        for _ in range(3):
            found = warm_split(candidates, price, budget - margin)
            if found is None:
                break
            plan, kept = found, margin
            settled = job_z() * math.sqrt(sum(p.spread_s**2 for _, p in plan))
            if settled <= margin + 1e-3:
                break
            margin = settled
        if plan is None:
            epochs_now = stages[0][1]
            chosen = {
                s: min(grids[s], key=lambda m, s=s: (expected_ms(true[s], m, epochs_now, True), m))
                for s in counts
            }
            why = "no plan meets the deadline: fastest sizes"
        else:
            chosen = plan[0][0]
            why = (
                f"deadline split, environments warm between rungs: this stage "
                f"{plan[0][1].time_s:.1f} s of the {budget:.1f} s left for {len(stages)} "
                f"stage(s), {kept:.1f} s of it kept for the noise"
                + (f" (wanted {margin:.1f} s: no plan leaves room)" if margin > kept else "")
                + f"; predicted job cost ${sum(p.cost_usd for _, p in plan):.6f}"
            )
        decisions = {}
        for shape in counts:
            decisions[shape] = guards.decide(
                guards.Proposal(
                    shape=shape,
                    current_mb=obs.current_mb.get(shape),
                    proposed_mb=chosen[shape],
                    rule="deadline-split",
                    reason=f"{shape}: {why} (true curve)",
                    current_is_safe=False,  # the plan decides; nothing to keep
                    floor_mb=true[shape].floor_mb,
                    min_mb=self.min_memory_mb,
                    max_mb=self.max_memory_mb,
                )
            )
        return {task.key: decisions[task.shape] for task in context.stage.tasks}


def remembered(truth: Truth, params: dict[str, Any]) -> Truth:
    """``truth`` for one task's parameters, each (epochs, size) computed once: a plan asks for
    the same sizes over and over."""

    @cache
    def at(epochs: int, memory_mb: int) -> tuple[float, float, float]:
        return truth(params, epochs, memory_mb)

    return lambda _params, epochs, memory_mb: at(epochs, memory_mb)


def usage(counts: Mapping[str, int], option: Memory) -> Counter:
    """Tasks at each size (each in its own environment: a stage's tasks run at once)."""
    at: Counter = Counter()
    for shape, n in counts.items():
        at[option[shape]] += n
    return at


def expected_ms(model: TrueModel, memory_mb: int, epochs: int, cold: bool) -> float:
    """The expected slowest of the stage's tasks of this shape, a cold start included or not."""
    mean, _ = slowest_of(model.tasks(epochs))
    run = model.duration_ms(memory_mb, epochs) + (model.init_at(memory_mb) if cold else 0.0)
    return run * math.exp(mean * model.sigma)
