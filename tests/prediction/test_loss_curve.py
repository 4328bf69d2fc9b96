"""LossCurve: rounds to a target loss on synthetic power-law and exponential curves."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from service.prediction.loss_curve import LossCurve


def power(t: np.ndarray) -> np.ndarray:
    return 0.2 + 2.0 * t**-0.7


def exponential(t: np.ndarray) -> np.ndarray:
    return 0.1 + 1.5 * np.exp(-0.1 * t)


def true_rounds(kind: str, target: float, last: int) -> int:
    if kind == "power":
        crossing = (2.0 / (target - 0.2)) ** (1 / 0.7)
    else:
        crossing = math.log(1.5 / (target - 0.1)) / 0.1
    return max(math.ceil(crossing - last - 1e-9), 1)


CASES = [  # (kind, curve, observed rounds, target)
    ("power", power, 30, 0.35),
    ("power", power, 30, 0.30),
    ("exponential", exponential, 20, 0.15),
    ("exponential", exponential, 20, 0.20),
]


@pytest.mark.parametrize(("kind", "curve", "observed", "target"), CASES)
def test_rounds_to_target_is_close_and_covered(kind, curve, observed, target) -> None:
    truth = true_rounds(kind, target, observed)
    epochs = np.arange(1, observed + 1, dtype=float)
    errors, covered = [], []
    for seed in range(30):
        rng = np.random.default_rng(seed)
        losses = curve(epochs) * (1.0 + rng.normal(0.0, 0.01, epochs.size))
        estimate = LossCurve.fit(epochs, losses).rounds_to_target(target, max_rounds=500, seed=1)
        assert estimate.median is not None and estimate.lower is not None
        assert estimate.upper is not None
        assert estimate.lower <= estimate.median <= estimate.upper
        errors.append(abs(estimate.median - truth) / truth)
        covered.append(estimate.lower <= truth <= estimate.upper)
    assert np.median(errors) <= 0.15
    assert np.mean(covered) >= 0.7  # a 90 % interval, checked with slack for 30 samples


def test_noise_free_curves_are_recovered() -> None:
    epochs = np.arange(1, 31, dtype=float)
    estimate = LossCurve.fit(epochs, power(epochs)).rounds_to_target(0.30, max_rounds=500)
    truth = true_rounds("power", 0.30, 30)
    assert estimate.point is not None and abs(estimate.point - truth) <= 1
    assert estimate.reachable_probability == 1.0


def test_target_below_the_asymptote_is_flagged_unreachable() -> None:
    epochs = np.arange(1, 31, dtype=float)
    rng = np.random.default_rng(0)
    losses = power(epochs) * (1.0 + rng.normal(0.0, 0.01, epochs.size))
    estimate = LossCurve.fit(epochs, losses).rounds_to_target(0.1, max_rounds=500)
    assert estimate.median is None and estimate.upper is None and estimate.point is None
    assert estimate.reachable_probability is not None and estimate.reachable_probability < 0.05
    assert not estimate.likely_reachable


def test_target_beyond_max_rounds_is_unreachable_within_them() -> None:
    epochs = np.arange(1, 21, dtype=float)
    estimate = LossCurve.fit(epochs, exponential(epochs)).rounds_to_target(0.15, max_rounds=5)
    assert estimate.median is None
    assert estimate.reachable_probability is not None and estimate.reachable_probability < 0.05


def test_target_already_reached_needs_zero_rounds() -> None:
    epochs = np.arange(1, 11, dtype=float)
    estimate = LossCurve.fit(epochs, power(epochs)).rounds_to_target(1.0, max_rounds=50)
    assert estimate.reached
    assert (estimate.median, estimate.lower, estimate.upper) == (0, 0, 0)


def test_fewer_than_three_points_give_an_unknown_estimate() -> None:
    curve = LossCurve.fit([1, 2], [2.0, 1.5])
    assert not curve.fitted
    estimate = curve.rounds_to_target(0.5, max_rounds=100)
    assert estimate.median is None and estimate.upper is None
    assert estimate.lower == 1
    assert estimate.reachable_probability is None


def test_flat_noisy_curve_does_not_promise_progress() -> None:
    epochs = np.arange(1, 21, dtype=float)
    rng = np.random.default_rng(4)
    losses = 0.8 + rng.normal(0.0, 0.01, epochs.size)
    estimate = LossCurve.fit(epochs, losses).rounds_to_target(0.5, max_rounds=200)
    assert estimate.median is None
    assert estimate.reachable_probability is not None and estimate.reachable_probability < 0.5


def test_a_constant_curve_fits_without_error() -> None:
    curve = LossCurve.fit([1, 2, 3, 4], [0.7, 0.7, 0.7, 0.7])
    assert curve.predict([10.0])[0] == pytest.approx(0.7)
    assert curve.rounds_to_target(0.5, max_rounds=100).median is None


def test_three_points_give_a_wide_but_finite_estimate() -> None:
    epochs = np.array([1.0, 2.0, 3.0])
    estimate = LossCurve.fit(epochs, power(epochs)).rounds_to_target(0.9, max_rounds=1000)
    assert estimate.lower is not None and estimate.lower >= 1
    assert estimate.upper is None or estimate.upper > estimate.lower


def test_estimates_are_deterministic_given_the_seed() -> None:
    epochs = np.arange(1, 16, dtype=float)
    curve = LossCurve.fit(epochs, power(epochs) * (1 + 0.01 * np.sin(epochs)))
    first = curve.rounds_to_target(0.35, max_rounds=300, seed=3)
    assert curve.rounds_to_target(0.35, max_rounds=300, seed=3) == first


def test_state_round_trip_gives_the_same_estimate() -> None:
    epochs = np.arange(1, 21, dtype=float)
    curve = LossCurve.fit(epochs, exponential(epochs) * (1 + 0.01 * np.cos(epochs)))
    restored = LossCurve.from_state(json.loads(json.dumps(curve.to_state())))
    assert restored == curve
    assert restored.rounds_to_target(0.15, 500) == curve.rounds_to_target(0.15, 500)


def test_invalid_input_is_rejected() -> None:
    with pytest.raises(ValueError):
        LossCurve.fit([0, 1, 2], [1.0, 0.9, 0.8])
    with pytest.raises(ValueError):
        LossCurve.fit([1, 2], [1.0])
