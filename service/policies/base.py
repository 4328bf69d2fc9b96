"""The policy interface and what a policy sees.

A policy decides the memory of every task of a stage that is about to open. It is pure: the loop
hands it the spec, the stage, an outline of the stages still to come, what has been observed so
far and ``now``; it returns a decision per task with the rule that made it, the reason, the
predicted gain, and any change a guard vetoed. The loop records all of it on the job's timeline.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Protocol

from service.spec import JobSpec
from service.workflows.plan import StageOutline, StagePlan, Workflow


@dataclass(frozen=True)
class Sample:
    """One finished invocation, as the REPORT line and the task describe it."""

    shape: str
    stage: int
    memory_mb: int
    duration_ms: float
    init_ms: float | None
    peak_mb: float | None
    epochs: int
    ok: bool
    architecture: str = "x86_64"  # the one it ran on
    # CPU time it used (Lambda Insights), None when unknown: below one vCPU a run is its I/O
    # plus its CPU work at the CPU share, so one size's runs tell the rest of that range
    cpu_ms: float | None = None


@dataclass(frozen=True)
class Observations:
    elapsed_s: float  # since the job started
    spent_usd: float
    samples: tuple[Sample, ...] = ()
    oom_floors: dict[str, int] = field(default_factory=dict)  # shape -> memory it was raised to
    current_mb: dict[str, int] = field(default_factory=dict)  # shape -> last allocated memory
    losses: tuple[float, ...] = ()  # training: the loss after each round
    stages_done: int = 0
    rounds_since_change: int | None = None  # training: rounds run at the current memory
    # What the loop's learn step stored, by predictor name ("memory-curve:<shape>",
    # "duration:<shape>", "loss-curve"): {"state": ..., "observations": n}
    predictors: dict[str, dict] = field(default_factory=dict)

    def by_shape(self) -> dict[str, list[Sample]]:
        grouped: dict[str, list[Sample]] = defaultdict(list)
        for sample in self.samples:
            grouped[sample.shape].append(sample)
        return grouped

    def peak_mb(self, shape: str) -> float | None:
        peaks = [s.peak_mb for s in self.samples if s.shape == shape and s.ok and s.peak_mb]
        return max(peaks) if peaks else None


@dataclass(frozen=True)
class PolicyContext:
    spec: JobSpec
    stage: StagePlan
    outline: tuple[StageOutline, ...]  # the stages after this one, as planned now
    observations: Observations
    now: float
    stage_overhead_s: float = 1.0  # time between stages the loop itself adds (tick latency)
    # False when the stage is opening: a policy may then leave tasks out (they wait, e.g. for a
    # pilot's measurements) and is asked again for them once the decided tasks have finished.
    must_decide_all: bool = False


@dataclass(frozen=True)
class Veto:
    rule: str
    proposed_mb: int
    reason: str


@dataclass(frozen=True)
class MemoryDecision:
    memory_mb: int
    rule: str  # the policy rule (or guard) that decided
    reason: str
    predicted_gain_usd: float | None = None
    vetoes: tuple[Veto, ...] = ()
    # The architecture the task runs on, for a job whose spec says "auto"
    # (``service.policies.architecture``); None: the spec's own.
    architecture: str | None = None


class Policy(Protocol):
    name: str

    def allocate(self, context: PolicyContext) -> dict[str, MemoryDecision]:
        """Memory for the tasks of ``context.stage``, keyed by task key. A task left out waits
        (see ``PolicyContext.must_decide_all``)."""
        ...


class StagesOfItsOwn(Protocol):
    """A policy that runs stages of its own around the job's workflow (power-tuning's
    profiling stage) registers them with this hook instead of being special-cased by the loop."""

    def workflow_under(self, workflow: Workflow) -> Workflow: ...


def workflow_under(policy: Policy, workflow: Workflow) -> Workflow:
    """The workflow the loop runs for ``policy``: the job's own, or the policy's wrapping of it
    (``StagesOfItsOwn``)."""
    hook = getattr(policy, "workflow_under", None)
    return hook(workflow) if hook is not None else workflow


def same_for_all(stage: StagePlan, decision: MemoryDecision) -> dict[str, MemoryDecision]:
    return {task.key: decision for task in stage.tasks}
