"""``DeadlineSplit``: share a deadline between stages so that the total cost is lowest.

Each stage offers options — a memory per task shape, the stage's predicted time, its predicted
cost — of which only the Pareto front matters (faster costs more). Choosing one option per
stage with the summed time within the budget and the summed cost lowest is a multiple-choice
knapsack; with time cut into small bins (rounded *up*, so the plan never promises more than the
budget) dynamic programming solves it exactly at that resolution.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StageOption:
    memory: dict[str, int]  # shape -> memory_mb
    time_s: float
    cost_usd: float


def pareto(options: Sequence[StageOption]) -> list[StageOption]:
    """Options no other option beats on both time and cost, fastest first."""
    front: list[StageOption] = []
    for option in sorted(options, key=lambda o: (o.time_s, o.cost_usd)):
        if not front or option.cost_usd < front[-1].cost_usd - 1e-15:
            front.append(option)
    return front


def stage_options(
    shapes: dict[str, int],
    grids: dict[str, list[int]],
    time_s: Callable[[str, int], float],
    cost_usd: Callable[[str, int], float],
    overhead_s: float = 0.0,
) -> list[StageOption]:
    """The Pareto front of one stage whose tasks run in parallel.

    ``shapes`` maps shape -> task count, ``time_s(shape, m)`` is one task's predicted time and
    ``cost_usd(shape, m)`` one task's cost. For each candidate stage time T every shape takes
    its cheapest size that finishes within T; the stage takes as long as its slowest task.
    """
    times = {(s, m): time_s(s, m) for s in shapes for m in grids[s]}
    costs = {(s, m): cost_usd(s, m) for s in shapes for m in grids[s]}
    options = []
    for limit in sorted(set(times.values())):
        memory, worst, cost = {}, 0.0, 0.0
        for shape, count in shapes.items():
            fitting = [m for m in grids[shape] if times[(shape, m)] <= limit]
            if not fitting:
                break
            best = min(fitting, key=lambda m: (costs[(shape, m)], times[(shape, m)]))
            memory[shape] = best
            worst = max(worst, times[(shape, best)])
            cost += count * costs[(shape, best)]
        else:
            options.append(StageOption(memory, worst + overhead_s, cost))
    return pareto(options)


def split(
    stages: Sequence[Sequence[StageOption]], budget_s: float, resolution: int = 2000
) -> list[StageOption] | None:
    """The cheapest choice of one option per stage within ``budget_s``; None if none fits."""
    if not stages or any(not options for options in stages):
        return None
    fastest = sum(min(o.time_s for o in options) for options in stages)
    if budget_s <= 0 or fastest > budget_s:
        return None
    step = budget_s / resolution
    best = np.zeros(resolution + 1)  # best[b]: lowest cost of the stages so far within b bins
    choices: list[np.ndarray] = []
    for options in stages:
        table = np.full((len(options), resolution + 1), np.inf)
        for i, option in enumerate(options):
            bins = math.ceil(option.time_s / step - 1e-9)
            if bins <= resolution:
                table[i, bins:] = best[: resolution + 1 - bins] + option.cost_usd
        choice = np.argmin(table, axis=0)
        best = table[choice, np.arange(resolution + 1)]
        choices.append(choice)
    if not np.isfinite(best[resolution]):
        return None
    plan: list[StageOption] = []
    remaining = resolution
    for options, choice in zip(reversed(stages), reversed(choices), strict=True):
        option = options[int(choice[remaining])]
        plan.append(option)
        remaining -= math.ceil(option.time_s / step - 1e-9)
    return list(reversed(plan))


def fastest(stages: Sequence[Sequence[StageOption]], tolerance: float = 1.0) -> list[StageOption]:
    """When no plan meets the deadline: the fastest option of every stage — the cheapest of
    those within ``tolerance`` × the fastest time (options that tie within the run-to-run
    noise differ in cost)."""
    chosen = []
    for options in stages:
        quickest = min(o.time_s for o in options)
        near = (o for o in options if o.time_s <= quickest * tolerance)
        chosen.append(min(near, key=lambda o: (o.cost_usd, o.time_s)))
    return chosen
