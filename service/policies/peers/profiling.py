"""What the peers share: a billed profiling stage that runs one task of every trial shape at a
few sizes, and reading its runs back per shape and size.

The stages run in front of the job (``ProfiledWorkflow``, as power-tuning's does); their runs
are billed to the job. The peers profile offline, so their time is not the job's: a peer's
deadline budget starts after it (``profiling_s``) and the bench reports it apart from the JCT. A
profiling run that runs out of memory is retried by the loop at a larger size, and its
measurement counts at the size it ran at.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from service.policies.base import MemoryDecision, Observations
from service.policies.power_tuning import PROFILE_PREFIX
from service.workflows.plan import StagePlan, TaskPlan

SEPARATOR = "@"


def profile_shape(memory_mb: int | str, shape: str) -> str:
    return f"{PROFILE_PREFIX}{memory_mb}{SEPARATOR}{shape}"


def measured_shape(profile_task_shape: str) -> str:
    """The job shape a profiling task measures."""
    return profile_task_shape.split(SEPARATOR, 1)[-1]


def is_profile(shape: str) -> bool:
    return shape.startswith(PROFILE_PREFIX)


def first_of_each_shape(first: StagePlan) -> list[tuple[str, TaskPlan]]:
    firsts: dict[str, TaskPlan] = {}
    for task in first.tasks:
        firsts.setdefault(task.shape, task)
    return sorted(firsts.items())


def profile_every_shape(
    first: StagePlan, sizes: tuple[int, ...] | tuple[str, ...], runs: int
) -> tuple[TaskPlan, ...]:
    """The first task of every shape of the first stage, ``runs`` times at every size (or
    under every label: a size the policy decides when the stage opens)."""
    return tuple(
        TaskPlan(
            key=f"{PROFILE_PREFIX}{m}-{n}-{i}",
            params=task.params,
            epoch_from=task.epoch_from,
            epoch_to=task.epoch_to,
            shape=profile_shape(m, shape),
        )
        for n, (shape, task) in enumerate(first_of_each_shape(first))
        for m in sizes
        for i in range(runs)
    )


@dataclass(frozen=True)
class Profile:
    """One shape's profiling runs: per-epoch durations by the size they ran at, cold-start
    times, the most memory used and the sizes that ran out of memory."""

    per_epoch_ms: dict[int, list[float]]
    init_ms: list[float]
    peak_mb: float
    oom_mb: tuple[int, ...]

    @property
    def sizes(self) -> list[int]:
        return sorted(self.per_epoch_ms)

    def floor_mb(self, step: int = 64) -> int:
        """The smallest size on a ``step`` MB grid above the most memory any run used and above
        every size that ran out of memory."""
        need = max([self.peak_mb, *self.oom_mb]) + 1
        return max(128, math.ceil(need / step) * step)

    def mean_init_ms(self) -> float:
        return sum(self.init_ms) / len(self.init_ms) if self.init_ms else 0.0


def profiles(observations: Observations) -> dict[str, Profile]:
    """The profiling runs, by the job shape they measured."""
    durations: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    inits: dict[str, list[float]] = defaultdict(list)
    peaks: dict[str, float] = defaultdict(float)
    ooms: dict[str, set[int]] = defaultdict(set)
    for sample in observations.samples:
        if not is_profile(sample.shape) or SEPARATOR not in sample.shape:
            continue
        shape = sample.shape.split(SEPARATOR, 1)[1]
        if not sample.ok:
            ooms[shape].add(sample.memory_mb)
            continue
        durations[shape][sample.memory_mb].append(sample.duration_ms / max(1, sample.epochs))
        if sample.init_ms:
            inits[shape].append(sample.init_ms)
        peaks[shape] = max(peaks[shape], sample.peak_mb or 0.0)
    return {
        shape: Profile(dict(by_size), inits[shape], peaks[shape], tuple(sorted(ooms[shape])))
        for shape, by_size in durations.items()
    }


def profile_size(shape: str) -> int:
    return int(shape.removeprefix(PROFILE_PREFIX).split(SEPARATOR, 1)[0])


def profiling_decisions(stage: StagePlan, rule: str) -> dict[str, MemoryDecision]:
    """Every profiling run at the size its shape names."""
    return {
        task.key: MemoryDecision(
            profile_size(task.shape),
            rule,
            f"profiling run of {task.shape.split(SEPARATOR, 1)[-1]} at "
            f"{profile_size(task.shape)} MB",
        )
        for task in stage.tasks
    }


def profiling_s(observations: Observations, overhead_s: float) -> float:
    """How long the profiling stages took: each as long as its slowest run (cold start
    included), plus the loop's overhead between stages. The peers profile *offline*: this
    time is not the job's, so their deadline budget starts after it."""
    slowest: dict[int, float] = defaultdict(float)
    for sample in observations.samples:
        if is_profile(sample.shape):
            took = sample.duration_ms + (sample.init_ms or 0.0)
            slowest[sample.stage] = max(slowest[sample.stage], took)
    return sum(ms / 1000 + overhead_s for ms in slowest.values())
