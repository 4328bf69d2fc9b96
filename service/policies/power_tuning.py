"""``power-tuning``: measure first, then run static at the best size — the strongest static
baseline, as AWS Lambda Power Tuning does it.

A profiling stage runs the job's first task at every candidate size (``invocations_per_size``
times each); those runs are billed and count in the job's cost. The size is then chosen by the
strategy, on the measured averages:

- ``cost``: lowest cost per invocation;
- ``speed``: lowest duration;
- ``balanced``: lowest ``0.5 × cost/max cost + 0.5 × duration/max duration`` (Power Tuning's
  balanced weight of 0.5).

A size whose runs ran out of memory or failed is not a candidate.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from statistics import fmean

from service.domain.enums import StageKind
from service.policies.base import MemoryDecision, PolicyContext, same_for_all
from service.policies.costing import invocation_usd
from service.spec import PowerTuningPolicy
from service.workflows.plan import Finished, StagePlan, StageResult, TaskPlan, Workflow

PROFILE_PREFIX = "profile-"


def profile_shape(memory_mb: int) -> str:
    return f"{PROFILE_PREFIX}{memory_mb}"


@dataclass(frozen=True)
class PowerTuning:
    candidates: tuple[int, ...]
    strategy: str = "balanced"
    invocations_per_size: int = 3
    name: str = "power-tuning"

    @classmethod
    def of(cls, policy: PowerTuningPolicy) -> PowerTuning:
        return cls(tuple(policy.memory_mb_candidates), policy.strategy, policy.invocations_per_size)

    def allocate(self, context: PolicyContext) -> dict[str, MemoryDecision]:
        stage = context.stage
        if stage.kind is StageKind.PROFILING:
            return {
                task.key: MemoryDecision(
                    int(task.shape.removeprefix(PROFILE_PREFIX)),
                    "power-tuning-profile",
                    f"profiling run at {task.shape.removeprefix(PROFILE_PREFIX)} MB",
                )
                for task in stage.tasks
            }
        memory, reason = self.choose(context)
        return same_for_all(stage, MemoryDecision(memory, "power-tuning", reason))

    def workflow_under(self, workflow: Workflow) -> ProfiledWorkflow:
        """The job's workflow with the profiling stage in front."""
        return ProfiledWorkflow(workflow, self)

    @property
    def profiling_rounds(self) -> int:
        """Profiling stages before the job's own (``ProfiledWorkflow``)."""
        return 1

    def profile_tasks(self, first: StagePlan, round_: int = 0) -> tuple[TaskPlan, ...]:
        """The profiling stage: the job's first task at every candidate size,
        ``invocations_per_size`` times each."""
        task = first.tasks[0]
        return tuple(
            TaskPlan(
                key=f"{PROFILE_PREFIX}{m}-{i}",
                params=task.params,
                epoch_from=task.epoch_from,
                epoch_to=task.epoch_to,
                shape=profile_shape(m),
            )
            for m in self.candidates
            for i in range(self.invocations_per_size)
        )

    def choose(self, context: PolicyContext) -> tuple[int, str]:
        arch = context.spec.workload.base_architecture
        runs: dict[int, list[float]] = defaultdict(list)
        failed: set[int] = set()
        for sample in context.observations.samples:
            if not sample.shape.startswith(PROFILE_PREFIX):
                continue
            if sample.ok:
                runs[sample.memory_mb].append(sample.duration_ms)
            else:
                failed.add(sample.memory_mb)
        measured = {m: fmean(d) for m, d in runs.items() if m not in failed}
        if not measured:
            largest = max(self.candidates)
            return largest, f"no profiling run succeeded: the largest candidate, {largest} MB"
        cost = {m: invocation_usd(m, d, 0.0, arch) for m, d in measured.items()}
        if self.strategy == "cost":
            best = min(measured, key=lambda m: (cost[m], m))
        elif self.strategy == "speed":
            best = min(measured, key=lambda m: (measured[m], m))
        else:
            top_cost, top_time = max(cost.values()), max(measured.values())
            best = min(
                measured, key=lambda m: (0.5 * cost[m] / top_cost + 0.5 * measured[m] / top_time, m)
            )
        return best, (
            f"power tuning ({self.strategy}) measured {sorted(measured)} MB: {best} MB, "
            f"{measured[best]:.0f} ms, ${cost[best]:.8f} per invocation"
        )


class ProfiledWorkflow:
    """Another workflow with profiling stages in front (the policy's ``profiling_rounds``,
    each of the policy's ``profile_tasks``); the rest is shifted by that many."""

    def __init__(self, inner: Workflow, policy: PowerTuning) -> None:
        self.inner = inner
        self.policy = policy
        self.rounds = policy.profiling_rounds

    def next_stage(self, history: list[StageResult]) -> StagePlan | Finished:
        if len(history) < self.rounds:
            first = self.inner.next_stage([])
            if isinstance(first, Finished):
                return first
            round_ = len(history)
            return StagePlan(
                round_,
                self.policy.name if round_ == 0 else f"{self.policy.name}-{round_}",
                StageKind.PROFILING,
                self.policy.profile_tasks(first, round_),
            )
        inner_history = [_shift(result, -self.rounds) for result in history[self.rounds :]]
        step = self.inner.next_stage(inner_history)
        if isinstance(step, Finished):
            return step
        return _shift_plan(step, +self.rounds)

    def outline_after(self, position: int):
        return self.inner.outline_after(max(position - self.rounds, -1))


def _shift_plan(plan: StagePlan, by: int) -> StagePlan:
    tasks = tuple(
        replace(t, resume=(t.resume[0] + by, t.resume[1]) if t.resume else None) for t in plan.tasks
    )
    resume_model = plan.resume_model + by if plan.resume_model is not None else None
    return replace(plan, position=plan.position + by, tasks=tasks, resume_model=resume_model)


def _shift(result: StageResult, by: int) -> StageResult:
    return StageResult(_shift_plan(result.plan, by), result.outcomes)
