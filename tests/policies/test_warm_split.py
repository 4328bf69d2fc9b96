"""The warm-aware deadline split (the oracle's HPO plan) against brute force, and the oracle's
plan on a job whose rungs find the previous rung's environments warm."""

from __future__ import annotations

import itertools
import random

import pytest

from service.policies.base import Sample
from service.policies.oracle import Oracle, slowest_of
from service.policies.warm_split import Priced, warm_split

from .helpers import context, hpo_spec, stage


def chain_price(times, costs, warm_s, warm_usd):
    """A stage at the previous stage's size saves ``warm_s`` and ``warm_usd`` (no cold start)."""

    def price(k, option, previous):
        m = option["a"]
        same = previous is not None and previous["a"] == m
        return Priced(
            times[(k, m)] - (warm_s if same else 0.0), costs[(k, m)] - (warm_usd if same else 0.0)
        )

    return price


@pytest.mark.parametrize("seed", range(20))
def test_warm_split_matches_brute_force(seed):
    rng = random.Random(seed)
    sizes = [512, 1024, 2048]
    stages = rng.randint(1, 4)
    times = {(k, m): rng.uniform(2, 20) * 1024 / m + 1 for k in range(stages) for m in sizes}
    costs = {(k, m): rng.uniform(0.5, 2) for k in range(stages) for m in sizes}
    price = chain_price(times, costs, 0.9, 0.2)
    options = [[{"a": m} for m in sizes] for _ in range(stages)]
    budget = rng.uniform(5, 60)
    plan = warm_split(options, price, budget, resolution=4000)

    def priced(combo):
        return [price(k, o, combo[k - 1] if k else None) for k, o in enumerate(combo)]

    feasible = [
        combo
        for combo in itertools.product(*options)
        if sum(p.time_s for p in priced(combo)) <= budget
    ]
    if not feasible:
        assert plan is None
        return
    assert plan is not None
    assert sum(p.time_s for _, p in plan) <= budget + 1e-9
    best = min(sum(p.cost_usd for p in priced(combo)) for combo in feasible)
    # bins round times up: the DP may miss a plan that fits only within one bin per stage
    assert sum(p.cost_usd for _, p in plan) <= best * 1.15 + 1e-12


def test_staying_warm_beats_the_cheapest_size_priced_cold():
    # Priced cold, 512 MB is cheapest in both stages; but the second stage at the first's size
    # starts warm, which makes 1024 MB twice the cheaper chain.
    times = {(0, 512): 10.0, (0, 1024): 6.0, (1, 512): 10.0, (1, 1024): 6.0}
    costs = {(0, 512): 1.0, (0, 1024): 1.1, (1, 512): 1.0, (1, 1024): 1.1}
    options = [[{"a": 512}, {"a": 1024}], [{"a": 512}, {"a": 1024}]]
    plan = warm_split(options, chain_price(times, costs, 1.0, 0.5), 100)
    assert [o["a"] for o, _ in plan] == [512, 512]  # 512 twice: 1.0 + 0.5
    costs[(1, 512)] = 1.7  # now 1024 then 1024 (1.1 + 0.6) beats 512, 512 (1.0 + 1.2)
    plan = warm_split(options, chain_price(times, costs, 1.0, 0.5), 100)
    assert [o["a"] for o, _ in plan] == [1024, 1024]
    assert warm_split(options, chain_price(times, costs, 1.0, 0.5), 10.0) is None


def test_slowest_of_n_draws():
    assert slowest_of(1) == (0.0, 1.0)
    mean, spread = slowest_of(27)
    assert mean == pytest.approx(2.0, abs=0.01)  # the slowest of 27 is ~2 sigma above
    assert spread == pytest.approx(0.50, abs=0.01)
    rng = random.Random(1)
    draws = [max(rng.gauss(0, 1) for _ in range(9)) for _ in range(20_000)]
    assert slowest_of(9)[0] == pytest.approx(sum(draws) / len(draws), abs=0.02)


def test_the_oracle_keeps_a_rung_where_its_environments_are_warm():
    # 1 s of single-threaded CPU per epoch at one vCPU and a 5 s cold start at every size: a
    # task priced cold is cheapest at 128 MB (its cold start billed at the least memory), but
    # three environments left warm at 1,024 MB by the rung before run it for less.
    def truth(params, epochs, memory):
        return (1000.0 * epochs * 1769 / min(memory, 1769), 5000.0, 100.0)

    spec = hpo_spec(600.0)
    rung = stage(1, {"a": 3}, epochs=1)
    oracle = Oracle(truth=truth, sigma=0.05)
    cold = oracle.allocate(context(spec, rung))
    assert {d.memory_mb for d in cold.values()} == {128}
    before = tuple(Sample("a", 0, 1024, 1727.0, 5000.0, 100.0, 1, True) for _ in range(3))
    warm = oracle.allocate(context(spec, rung, samples=before, stages_done=1))
    assert {d.memory_mb for d in warm.values()} == {1024}
    # more tasks than warm environments: the rest start cold, and 128 MB is cheaper again
    wide = stage(1, {"a": 27}, epochs=1)
    assert {d.memory_mb for d in oracle.allocate(context(spec, wide, samples=before)).values()} == {
        128
    }
