"""DeadlineSplit against brute force."""

from __future__ import annotations

import itertools
import random

import pytest

from service.policies.deadline_split import StageOption, pareto, split, stage_options


def random_stage(rng: random.Random) -> list[StageOption]:
    return pareto(
        [
            StageOption({"a": rng.randint(128, 4096)}, rng.uniform(1, 30), rng.uniform(0.1, 5))
            for _ in range(rng.randint(1, 6))
        ]
    )


@pytest.mark.parametrize("seed", range(30))
def test_split_matches_brute_force(seed):
    rng = random.Random(seed)
    stages = [random_stage(rng) for _ in range(rng.randint(1, 4))]
    budget = rng.uniform(5, 80)
    plan = split(stages, budget, resolution=4000)
    feasible = [
        combo for combo in itertools.product(*stages) if sum(o.time_s for o in combo) <= budget
    ]
    if not feasible:
        assert plan is None
        return
    best = min(sum(o.cost_usd for o in combo) for combo in feasible)
    assert plan is not None
    assert sum(o.time_s for o in plan) <= budget + 1e-9  # never over the budget
    # bins round times up, so the DP may miss a plan that fits only within one bin per stage
    assert sum(o.cost_usd for o in plan) <= best * 1.15 + 1e-12


def test_tighter_budgets_buy_speed():
    stages = [
        [StageOption({"a": 4096}, 2.0, 4.0), StageOption({"a": 1024}, 8.0, 1.0)],
        [StageOption({"a": 4096}, 3.0, 6.0), StageOption({"a": 1024}, 12.0, 1.5)],
    ]
    assert [o.memory["a"] for o in split(stages, 100)] == [1024, 1024]
    # 15 s: 2+12 s for $5.5 beats 8+3 s for $7
    assert [o.memory["a"] for o in split(stages, 15)] == [4096, 1024]
    assert [o.memory["a"] for o in split(stages, 5)] == [4096, 4096]
    assert split(stages, 4.9) is None


def test_stage_options_take_the_slowest_shape_and_the_cheapest_fit():
    times = {("big", 512): 10.0, ("big", 2048): 3.0, ("small", 512): 2.0, ("small", 2048): 1.0}
    costs = {("big", 512): 1.0, ("big", 2048): 2.0, ("small", 512): 0.1, ("small", 2048): 0.4}
    options = stage_options(
        {"big": 1, "small": 4},
        {"big": [512, 2048], "small": [512, 2048]},
        lambda s, m: times[(s, m)],
        lambda s, m: costs[(s, m)],
    )
    assert [(o.memory, o.time_s, round(o.cost_usd, 3)) for o in options] == [
        ({"big": 2048, "small": 512}, 3.0, 2.4),
        ({"big": 512, "small": 512}, 10.0, 1.4),
    ]
