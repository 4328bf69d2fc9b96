"""``static``: one memory size for everything — the baseline a user picks by hand."""

from __future__ import annotations

from dataclasses import dataclass

from service.policies.base import MemoryDecision, Observations, shapes_of
from service.spec import JobSpec
from service.workflows.plan import StagePlan


@dataclass(frozen=True)
class Static:
    memory_mb: int
    name: str = "static"

    def allocate(
        self, spec: JobSpec, stage: StagePlan, observations: Observations, now: float
    ) -> dict[str, MemoryDecision]:
        decision = MemoryDecision(
            self.memory_mb, "static", f"static policy: {self.memory_mb} MB for every task"
        )
        return dict.fromkeys(shapes_of(stage), decision)
