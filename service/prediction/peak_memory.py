"""The least memory a function can be given without running out, from what it has used.

CE-scaling never allocates below a task's peak memory use (DESIGN.md §1); above that floor memory
only buys CPU. The floor is estimated like the Kubernetes VPA recommender does for memory: the
largest peak observed (REPORT "Max Memory Used", DESIGN.md §2) times a safety margin, and after an
out-of-memory kill at least max(size + 64 MB, 1.2 * size) of the size that was killed
(DESIGN.md §6). It keeps the maximum rather than a percentile: an OOM costs a failed, billed
invocation and a retry after a cold start, which outweighs a little idle memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

MIN_MEMORY_MB = 128  # DESIGN.md §2: Lambda memory is 128 … 10,240 MB
MAX_MEMORY_MB = 10_240
OOM_BUMP_MB = 64.0
OOM_BUMP_FACTOR = 1.2


@dataclass(frozen=True)
class PeakMemoryEstimator:
    """Immutable: each observation returns an updated estimator."""

    max_peak_mb: float = 0.0
    oom_floor_mb: float = 0.0
    margin: float = 0.15
    observations: int = 0

    def __post_init__(self) -> None:
        if self.margin < 0:
            raise ValueError("margin must not be negative")

    def observe(self, peak_mb: float) -> PeakMemoryEstimator:
        """Record a completed invocation's peak memory use (MB)."""
        if not math.isfinite(peak_mb) or peak_mb < 0:
            raise ValueError("peak memory must be a non-negative number of MB")
        return replace(
            self, max_peak_mb=max(self.max_peak_mb, peak_mb), observations=self.observations + 1
        )

    def observe_oom(self, memory_mb: float) -> PeakMemoryEstimator:
        """Record an out-of-memory kill at this memory size: the need is clearly above it."""
        if not math.isfinite(memory_mb) or memory_mb <= 0:
            raise ValueError("memory size must be a positive number of MB")
        bumped = max(memory_mb + OOM_BUMP_MB, memory_mb * OOM_BUMP_FACTOR)
        return replace(self, oom_floor_mb=max(self.oom_floor_mb, bumped))

    def recommend_mb(self) -> int:
        """The memory floor in whole MB, within Lambda's limits."""
        need = max(self.max_peak_mb * (1.0 + self.margin), self.oom_floor_mb, MIN_MEMORY_MB)
        return min(math.ceil(need), MAX_MEMORY_MB)

    @property
    def exceeds_platform(self) -> bool:
        """True when the need is above the largest size Lambda offers: no size will do."""
        return max(self.max_peak_mb, self.oom_floor_mb) > MAX_MEMORY_MB

    def to_state(self) -> dict[str, Any]:
        return {
            "version": 1,
            "max_peak_mb": self.max_peak_mb,
            "oom_floor_mb": self.oom_floor_mb,
            "margin": self.margin,
            "observations": self.observations,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PeakMemoryEstimator:
        if state.get("version") != 1:
            raise ValueError(f"unsupported PeakMemoryEstimator state: {state.get('version')!r}")
        return cls(
            max_peak_mb=float(state["max_peak_mb"]),
            oom_floor_mb=float(state["oom_floor_mb"]),
            margin=float(state["margin"]),
            observations=int(state["observations"]),
        )
