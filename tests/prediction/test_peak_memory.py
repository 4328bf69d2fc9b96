"""PeakMemoryEstimator: the memory floor from peaks and out-of-memory kills."""

from __future__ import annotations

import json

from service.prediction.peak_memory import PeakMemoryEstimator


def test_floor_is_the_largest_peak_plus_margin() -> None:
    estimator = PeakMemoryEstimator(margin=0.15).observe(300).observe(400).observe(350)
    assert estimator.recommend_mb() == 460
    assert estimator.observations == 3


def test_never_below_the_platform_minimum() -> None:
    assert PeakMemoryEstimator().observe(40).recommend_mb() == 128


def test_oom_bumps_by_at_least_64_mb_or_twenty_percent() -> None:
    assert PeakMemoryEstimator().observe_oom(256).recommend_mb() == 320  # +64 MB
    assert PeakMemoryEstimator().observe_oom(1024).recommend_mb() == 1229  # x1.2


def test_capped_at_the_platform_maximum_and_flagged() -> None:
    estimator = PeakMemoryEstimator().observe_oom(10_240)
    assert estimator.recommend_mb() == 10_240
    assert estimator.exceeds_platform


def test_state_round_trip() -> None:
    estimator = PeakMemoryEstimator().observe(700).observe_oom(512)
    restored = PeakMemoryEstimator.from_state(json.loads(json.dumps(estimator.to_state())))
    assert restored == estimator
