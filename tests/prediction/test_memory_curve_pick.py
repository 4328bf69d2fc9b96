"""Choosing a memory size by cost from a MemoryCurve: the interval pick and the next size."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from service.policies.costing import invocation_usd
from service.prediction.memory_curve import MemoryCurve, vcpu_share

SIZES = [128.0, 256, 384, 512, 768, 1024, 1536, 1769, 2048, 3008, 4096, 6144, 10240]


def shape(io_ms: float, serial_ms: float, parallel_ms: float = 0.0, threads: int = 1):
    """Duration on Lambda's CPU share; ``pressure`` below makes small sizes slower still."""

    def duration(memory_mb: float) -> float:
        v = float(vcpu_share(memory_mb))
        return io_ms + serial_ms / min(v, 1.0) + parallel_ms / min(v, threads)

    return duration


def with_pressure(base, factor: float):
    """Garbage collection under memory pressure: up to ``factor`` slower at 128 MB, fading."""
    return lambda m: base(m) * (1 + (factor - 1) * (128 / m) ** 1.5)


CURVES = {
    "I/O-bound": shape(800, 40),
    "single-threaded CPU-bound": shape(20, 1000),
    "multi-threaded": shape(20, 50, 3000, 6),
    "memory pressure at small sizes": with_pressure(shape(50, 2000), 1.8),
}
# Measurements the tests fit on: spread (fixed) and the adaptive method's pilot at one vCPU.
DESIGNS = ([128.0, 1024, 10240], [512.0, 1769, 4096], [1769.0])


def usd(memory_mb: float, duration_ms: float) -> float:
    return invocation_usd(memory_mb, duration_ms)


def fit(truth, sizes) -> MemoryCurve:
    return MemoryCurve.fit(list(sizes), [truth(m) for m in sizes])


def worst_case(curve: MemoryCurve) -> float:
    """How much dearer than the best size the pick may still be: its upper-bound cost minus
    the lowest lower-bound cost of any size (its own included)."""
    low, _, high = curve.cost_bounds(SIZES, cost=usd)
    pick = SIZES.index(curve.cheapest(SIZES, cost=usd))
    return float(high[pick] - low.min())


@pytest.mark.parametrize("design", DESIGNS, ids=str)
@pytest.mark.parametrize("name", CURVES)
@pytest.mark.parametrize("cost", [usd, None], ids=["usd", "gb-ms"])
def test_the_pick_has_the_lowest_upper_bound_cost(name: str, design, cost) -> None:
    curve = fit(CURVES[name], design)
    low, centre, high = curve.cost_bounds(SIZES, cost=cost)
    assert np.all(low <= centre) and np.all(centre <= high)
    pick = curve.cheapest(SIZES, cost=cost)
    assert pick in SIZES
    best = high[SIZES.index(pick)]
    # no size it passed over has a lower upper-bound cost
    assert all(best <= high[i] for i in range(len(SIZES)))


@pytest.mark.parametrize("design", DESIGNS, ids=str)
@pytest.mark.parametrize("name", CURVES)
def test_measuring_the_next_size_narrows_the_interval(name: str, design) -> None:
    truth = CURVES[name]
    curve = fit(truth, design)
    following = curve.next_size(SIZES, cost=usd)
    if following is None:  # settled: nothing unmeasured can beat the pick's upper bound
        low, _, high = curve.cost_bounds(SIZES, cost=usd)
        pick = SIZES.index(curve.cheapest(SIZES, cost=usd))
        assert all(low[i] >= high[pick] for i, m in enumerate(SIZES) if m not in design)
        return
    assert following in SIZES and following not in design
    before_low, _, before_high = curve.cost_bounds([following], cost=usd)
    after = fit(truth, [*design, following])
    after_low, _, after_high = after.cost_bounds([following], cost=usd)
    assert math.log(after_high[0] / after_low[0]) < math.log(before_high[0] / before_low[0])
    if name != "memory pressure at small sizes":
        # On a curve of the fitted form, the pick's worst case narrows too. (A measurement
        # that shows the form misfits widens every interval instead, rightly.)
        assert worst_case(after) < worst_case(curve)


@pytest.mark.parametrize("name", CURVES)
def test_three_adaptive_sizes_pick_within_five_percent_of_the_cheapest(name: str) -> None:
    truth = CURVES[name]
    measured = [1769.0]
    curve = fit(truth, measured)
    while len(measured) < 3 and (following := curve.next_size(SIZES, cost=usd)) is not None:
        measured.append(following)
        curve = fit(truth, measured)
    pick = curve.cheapest(SIZES, cost=usd)
    cheapest = min(usd(m, truth(m)) for m in SIZES)
    assert usd(pick, truth(pick)) <= 1.05 * cheapest


def test_memory_pressure_moves_the_pick_off_the_smallest_size() -> None:
    """The fitted form alone always finds the smallest size cheapest (its cost never falls
    with memory); read through the measurements, a function that is more than
    proportionally slower at small sizes is not sent there."""
    truth = CURVES["memory pressure at small sizes"]
    curve = fit(truth, [128.0, 512, 1769])
    point = min(SIZES, key=lambda m: usd(m, curve.predict(m)))
    assert point == 128
    assert curve.cheapest(SIZES, cost=usd) in (512, 1769)
    assert usd(128, truth(128)) > 1.2 * usd(512, truth(512))


def test_an_io_bound_function_settles_on_the_smallest_size() -> None:
    truth = CURVES["I/O-bound"]
    curve = fit(truth, [128.0, 1769])
    assert curve.cheapest(SIZES, cost=usd) == 128
    assert curve.next_size(SIZES, cost=usd) is None


def test_bounds_are_anchored_on_the_measurements_and_monotone() -> None:
    curve = MemoryCurve.fit([128, 512, 512, 2048], [900.0, 300, 320, 120])
    low, centre, high = curve.duration_bounds(SIZES)
    assert centre[SIZES.index(128)] == pytest.approx(900)
    assert centre[SIZES.index(512)] == pytest.approx(310)
    assert centre[SIZES.index(2048)] == pytest.approx(120)
    for row in (low, centre, high):  # more memory is never slower
        assert np.all(np.diff(row) <= 1e-9)
    # narrowest where measured, twice-measured narrower than once
    width = np.log(high / low)
    assert width[SIZES.index(512)] < width[SIZES.index(128)] < width[SIZES.index(768)]
    assert width[SIZES.index(10240)] > width[SIZES.index(4096)] > width[SIZES.index(2048)]


def test_every_size_measured_leaves_nothing_to_measure() -> None:
    truth = CURVES["multi-threaded"]
    curve = fit(truth, SIZES)
    assert curve.next_size(SIZES, cost=usd) is None
    assert curve.cheapest(SIZES, cost=usd) == min(SIZES, key=lambda m: usd(m, truth(m)))


def test_the_state_keeps_the_measurements_and_an_old_state_still_picks() -> None:
    curve = MemoryCurve.fit([128, 1024, 3008], [1628, 386, 321])
    restored = MemoryCurve.from_state(json.loads(json.dumps(curve.to_state())))
    assert restored == curve
    assert restored.cheapest(SIZES) == curve.cheapest(SIZES)
    old = curve.to_state()
    del old["measured"], old["noise"]
    legacy = MemoryCurve.from_state(old)
    assert legacy.measured == ()
    low, _, high = legacy.duration_bounds([512.0])
    assert (low[0], high[0]) == pytest.approx(legacy.predict_interval(512, 0.9))
    assert legacy.cheapest(SIZES) in SIZES


@pytest.mark.parametrize("sizes", [[], [0.0], [-128.0], [float("nan")]])
def test_bad_candidate_sizes_are_rejected(sizes: list[float]) -> None:
    curve = MemoryCurve.fit([128, 1024], [1000.0, 200])
    with pytest.raises(ValueError):
        curve.cheapest(sizes)
    with pytest.raises(ValueError):
        curve.next_size(sizes)


def test_level_must_be_a_probability() -> None:
    curve = MemoryCurve.fit([128, 1024], [1000.0, 200])
    with pytest.raises(ValueError):
        curve.cheapest(SIZES, level=1.0)
