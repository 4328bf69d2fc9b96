"""``static-qos``: the strongest static method possible — per seed and deadline, the cheapest
single memory size that met that seed's deadline and fits every task's memory, chosen in
hindsight.

A static job's time does not grow with its memory (on Lambda more memory is never slower, and
every static run of one seed's job makes the same invocations in the same order, so with the
same noise draws), so the sizes that meet a deadline are the ones from some size up. A static
job's cost does not fall as memory rises either (duration falls at most in proportion to
memory), so the smallest size that meets the deadline is normally the cheapest. The search
bisects on Lambda's sizes in ``STEP_MB`` steps, from the smallest above the workload's peak
memory to 10,240 MB, for the smallest size that met the deadline, with every static run of the
seed's job already made (the fixed static sizes) as known points; static-qos is then the
cheapest of all sizes run that met the deadline (so a run the bisection's assumption does not
hold for can only make it cheaper, never miss). A run that met the deadline only after an
out-of-memory retry raised its size does not count as meeting it at its size.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any

from service.spec import MAX_MEMORY_MB, MIN_MEMORY_MB

STEP_MB = 64


def grid(peak_mb: float) -> list[int]:
    """Sizes in ``STEP_MB`` steps from the smallest above ``peak_mb`` to the largest."""
    low = max(MIN_MEMORY_MB, math.ceil((peak_mb + 1) / STEP_MB) * STEP_MB)
    return list(range(min(low, MAX_MEMORY_MB), MAX_MEMORY_MB + 1, STEP_MB))


def ran_only_at(result: dict[str, Any], memory_mb: int) -> bool:
    """Every invocation of the run was at ``memory_mb`` (no out-of-memory retry raised it)."""
    sizes = {
        int(size)
        for stage in result.get("stages", [])
        for by_size in stage.get("memory_by_shape", {}).values()
        for size in by_size
    }
    return sizes <= {memory_mb}


def meets(result: dict[str, Any], memory_mb: int, deadline_s: float) -> bool:
    return (
        result.get("status") == "succeeded"
        and result.get("jct_s") is not None
        and result["jct_s"] <= deadline_s
        and ran_only_at(result, memory_mb)
    )


@dataclass(frozen=True)
class QosSearch:
    """The bisection for one seed's job and one deadline; stateless: what to run next follows
    from the runs made so far (size -> result)."""

    sizes: tuple[int, ...]
    deadline_s: float

    @classmethod
    def of(cls, peak_mb: float, deadline_s: float) -> QosSearch:
        return cls(tuple(grid(peak_mb)), deadline_s)

    def next_size(self, runs: dict[int, dict[str, Any]]) -> int | None:
        """The next size to run, or None when the smallest size meeting the deadline is
        known (or no size meets it)."""
        met = [m for m, r in runs.items() if meets(r, m, self.deadline_s)]
        sizes = list(self.sizes)
        if not met:
            return None if sizes[-1] in runs else sizes[-1]
        # by monotonicity every grid size at or above a size that met the deadline meets it,
        # and every one at or below a size that missed it (below the smallest that met) misses
        hi = bisect.bisect_left(sizes, min(met))
        if hi == len(sizes):
            return None  # only a size above the grid's top met it
        missed = [m for m, r in runs.items() if m < min(met) and not meets(r, m, self.deadline_s)]
        lo = bisect.bisect_right(sizes, max(missed)) if missed else 0
        if lo >= hi:  # the smallest size that met it is known (maybe off the grid: 1,769)
            return None
        return sizes[(lo + hi) // 2]


def best_static(runs: dict[int, dict[str, Any]], deadline_s: float) -> tuple[int, dict[str, Any]]:
    """The cheapest size run that met the deadline (ties: the smaller); when none did, the
    fastest run (it is reported as missing the deadline)."""
    met = [(r["cost_usd"], m) for m, r in runs.items() if meets(r, m, deadline_s)]
    if met:
        size = min(met)[1]
    else:
        finished = [(r["jct_s"], m) for m, r in runs.items() if r.get("jct_s") is not None]
        size = min(finished)[1] if finished else max(runs)
    return size, runs[size]
