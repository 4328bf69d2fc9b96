"""``static``: one memory size for everything — the baseline a user picks by hand."""

from __future__ import annotations

from dataclasses import dataclass

from service.policies.base import MemoryDecision, PolicyContext, same_for_all


@dataclass(frozen=True)
class Static:
    memory_mb: int
    name: str = "static"

    def allocate(self, context: PolicyContext) -> dict[str, MemoryDecision]:
        reason = f"static policy: {self.memory_mb} MB for every task"
        return same_for_all(context.stage, MemoryDecision(self.memory_mb, "static", reason))
