"""The vocabulary workflows speak: planned stages and tasks, and what came of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


@dataclass(frozen=True)
class StagePlan:
    position: int
    name: str
    kind: StageKind
    tasks: tuple[TaskPlan, ...]
    resume_model: int | None = None  # training: the round whose averaged model workers start from


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
