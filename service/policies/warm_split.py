"""Sharing a deadline between HPO stages when environments stay warm from one stage to the next.

A rung that runs at the size the rung before it ran at finds that rung's environments warm (they
are kept alive between invocations, minutes, far longer than a rung), so only its tasks beyond
the warm ones start cold. ``deadline_split`` prices every stage as if it started cold; here a
stage's time and cost depend on the option chosen for the stage before it, and the split is a
dynamic programme over (stage, option, time bins): the cheapest chain of options within the
budget, with time cut into bins rounded up as in ``deadline_split``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Memory = dict[str, int]  # shape -> memory_mb


@dataclass(frozen=True)
class Priced:
    time_s: float  # the stage's planned time
    cost_usd: float
    spread_s: float = 0.0  # standard deviation of the stage's time (run-to-run noise)


# price(stage index, this stage's option, the previous stage's option or None for the first)
Price = Callable[[int, Memory, Memory | None], Priced]


def warm_split(
    options: Sequence[Sequence[Memory]], price: Price, budget_s: float, resolution: int = 1000
) -> list[tuple[Memory, Priced]] | None:
    """The cheapest choice of one option per stage whose summed time is within ``budget_s``,
    each option priced after the one chosen before it; None if no chain fits."""
    if not options or any(not o for o in options) or budget_s <= 0:
        return None
    step = budget_s / resolution
    size = resolution + 1

    def bins(time_s: float) -> int:
        return math.ceil(time_s / step - 1e-9)

    # best[j, b]: lowest cost of the stages so far, ending with option j, within b bins
    best = np.full((len(options[0]), size), np.inf)
    for j, option in enumerate(options[0]):
        priced = price(0, option, None)
        used = bins(priced.time_s)
        if used <= resolution:
            best[j, used:] = priced.cost_usd
    backs: list[tuple[np.ndarray, np.ndarray]] = []
    for k in range(1, len(options)):
        table = np.full((len(options[k]), size), np.inf)
        back = np.zeros((len(options[k]), size), dtype=int)
        used_by = np.zeros((len(options[k]), len(options[k - 1])), dtype=int)
        for j, option in enumerate(options[k]):
            for i, previous in enumerate(options[k - 1]):
                priced = price(k, option, previous)
                used = bins(priced.time_s)
                used_by[j, i] = used
                if used > resolution:
                    continue
                candidate = np.full(size, np.inf)
                candidate[used:] = best[i, : size - used] + priced.cost_usd
                better = candidate < table[j]
                table[j, better] = candidate[better]
                back[j, better] = i
        best = table
        backs.append((back, used_by))
    last = int(np.argmin(best[:, resolution]))
    if not np.isfinite(best[last, resolution]):
        return None
    chain = [last]
    remaining = resolution
    for back, used_by in reversed(backs):
        j = chain[-1]
        i = int(back[j, remaining])
        remaining -= int(used_by[j, i])
        chain.append(i)
    chain.reverse()
    plan = []
    for k, j in enumerate(chain):
        previous = options[k - 1][chain[k - 1]] if k else None
        plan.append((options[k][j], price(k, options[k][j], previous)))
    return plan
