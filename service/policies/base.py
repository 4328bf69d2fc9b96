"""The policy interface and what a policy sees.

A policy decides the memory of each *shape* of task in a stage (tasks of one shape have the same
footprint: one trial configuration's model size, or the training workers). It is pure: the loop
hands it observations and ``now``, and records what it decides, with the reason, on the job's
timeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from service.spec import JobSpec
from service.workflows.plan import StagePlan


@dataclass(frozen=True)
class ShapeStats:
    """What the loop has seen of one task shape so far."""

    peak_mb: float | None = None  # highest Max Memory Used of any invocation
    oom_floor_mb: int | None = None  # memory an out-of-memory retry raised it to
    samples: tuple[tuple[int, float], ...] = ()  # (memory_mb, duration_ms) of finished runs


@dataclass(frozen=True)
class Observations:
    elapsed_s: float  # since the job started
    spent_usd: float
    shapes: dict[str, ShapeStats] = field(default_factory=dict)
    stages_done: int = 0


@dataclass(frozen=True)
class MemoryDecision:
    memory_mb: int
    rule: str  # the policy rule (or guard) that decided
    reason: str
    predicted_gain_usd: float | None = None


class Policy(Protocol):
    name: str

    def allocate(
        self, spec: JobSpec, stage: StagePlan, observations: Observations, now: float
    ) -> dict[str, MemoryDecision]:
        """Memory for every shape of the stage's tasks."""
        ...


def shapes_of(stage: StagePlan) -> list[str]:
    return sorted({task.shape for task in stage.tasks})
