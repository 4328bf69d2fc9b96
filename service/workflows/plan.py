"""The vocabulary workflows speak: planned stages and tasks, and what came of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from service.domain.enums import StageKind


@dataclass(frozen=True)
class TaskPlan:
    """One invocation to make (retries aside).

    ``resume`` names the task of an earlier stage whose checkpoint this one continues from
    (an HPO survivor), or is None for a fresh start. Training workers resume from the round's
    shared model instead, which ``StagePlan.resume_model`` names.
    """

    key: str
    params: dict[str, Any]
    epoch_from: int
    epoch_to: int
    resume: tuple[int, str] | None = None  # (stage position, task key)
    shape: str = "default"  # tasks of one shape have the same footprint (e.g. same "hidden")
    extra: dict[str, Any] = field(default_factory=dict)
    worker: int | None = None  # a training worker's index (the handler event's "worker")


@dataclass(frozen=True)
class StagePlan:
    position: int
    name: str
    kind: StageKind
    tasks: tuple[TaskPlan, ...]
    resume_model: int | None = None  # training: the round whose averaged model workers start from
    # Its number in the workflow: a training round's r (the handler event's "round"), an HPO
    # rung's index in its bracket; None for a stage outside the workflow's own (profiling).
    round: int | None = None


@dataclass(frozen=True)
class StageOutline:
    """A stage still to come, as far as it is known: how many tasks, each training how many
    epochs (which trial shapes survive is not known in advance)."""

    tasks: int
    epochs: int


@dataclass(frozen=True)
class TaskOutcome:
    key: str
    ok: bool
    loss: float | None = None
    score: float | None = None
    epochs_done: int | None = None
    checkpoint: str | None = None


@dataclass(frozen=True)
class StageResult:
    plan: StagePlan
    outcomes: dict[str, TaskOutcome]

    def succeeded(self) -> list[TaskOutcome]:
        return [o for o in self.outcomes.values() if o.ok]


@dataclass(frozen=True)
class Finished:
    """The workflow is done; ``result`` is what the job reports, ``ok`` whether it succeeded."""

    ok: bool
    result: dict[str, Any]
    reason: str | None = None


class Workflow(Protocol):
    """What runs next. Pure: the stages that ended in, the next stage (or the end) out.

    ``workflow_for(spec)`` (``service.workflows``) builds one from a job spec; a policy may wrap
    it with stages of its own through a ``workflow_under(workflow)`` hook (power-tuning puts
    its profiling stage in front), so the loop never special-cases a policy."""

    def next_stage(self, history: list[StageResult]) -> StagePlan | Finished:
        """The stage after ``history`` (every ended stage, in order), or the job's end."""
        ...

    def outline_after(self, position: int) -> tuple[StageOutline, ...]:
        """The stages after ``position`` as planned now, for the policies to plan against."""
        ...
