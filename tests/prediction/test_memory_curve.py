"""MemoryCurve on synthetic Lambda-shaped curves: fit on three sizes, predict the rest."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service.prediction.memory_curve import MemoryCurve, vcpu_share

GRID = np.array([128, 256, 512, 1024, 1536, 2048, 3008, 4096, 10240], dtype=float)
DESIGNS = ([128, 1024, 3008], [512, 1769, 3008])


def lambda_shape(io_ms: float, serial_ms: float, parallel_ms: float, threads: int):
    """Duration on Lambda's CPU share: I/O + serial CPU + CPU over `threads` threads."""

    def duration(memory_mb: np.ndarray) -> np.ndarray:
        v = vcpu_share(memory_mb)
        return io_ms + serial_ms / np.minimum(v, 1.0) + parallel_ms / np.minimum(v, threads)

    return duration


SHAPES = {
    "single-threaded CPU-bound": lambda_shape(20, 1000, 0, 1),
    "multi-threaded to 6 vCPU": lambda_shape(20, 50, 3000, 6),
    "I/O-bound": lambda_shape(800, 40, 0, 1),
    "mixed": lambda_shape(150, 400, 900, 6),
}


def mape(curve: MemoryCurve, truth) -> float:
    expected = truth(GRID)
    return float(np.mean(np.abs(curve.predict_many(GRID) - expected) / expected) * 100)


@pytest.mark.parametrize("design", DESIGNS, ids=str)
@pytest.mark.parametrize("name", SHAPES)
def test_three_sizes_recover_the_exact_curve(name: str, design: list[int]) -> None:
    truth = SHAPES[name]
    curve = MemoryCurve.fit(design, truth(np.array(design, dtype=float)))
    assert mape(curve, truth) < 0.5


@pytest.mark.parametrize("design", DESIGNS, ids=str)
@pytest.mark.parametrize("name", SHAPES)
def test_three_noisy_sizes_predict_within_ten_percent(name: str, design: list[int]) -> None:
    truth = SHAPES[name]
    errors = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        sizes = np.array(design, dtype=float)
        measured = truth(sizes) * rng.lognormal(0.0, 0.03, sizes.size)
        errors.append(mape(MemoryCurve.fit(sizes, measured), truth))
    errors = np.array(errors)
    assert np.mean(errors) <= 6.0
    assert np.mean(errors <= 10.0) >= 0.95


def test_the_issue_example_is_monotone_and_between_its_neighbours() -> None:
    curve = MemoryCurve.fit([128, 1024, 3008], [1628, 386, 321])
    assert 386 < curve.predict(256) < 1628
    assert 386 < curve.predict(512) < 1628
    assert 321 * 0.95 < curve.predict(2048) < 386
    grid = np.arange(128, 10241, 16)
    predicted = curve.predict_many(grid)
    assert np.all(np.diff(predicted) <= 1e-9)
    assert np.all(predicted > 0)
    # 3008 MB measured slower than 1,769 MB is predicted: the noise does not invent a slope.
    assert curve.threads == 1


def test_single_point_assumes_single_threaded_cpu_bound() -> None:
    curve = MemoryCurve.fit([1024], [500])
    assert curve.predict(1024) == pytest.approx(500)
    assert curve.predict(512) == pytest.approx(1000)
    assert curve.predict(1769) == pytest.approx(curve.predict(10240))
    assert curve.relative_error(1024) >= 0.5


def test_two_points_fit_exactly() -> None:
    truth = SHAPES["I/O-bound"]
    curve = MemoryCurve.fit([256, 1024], truth(np.array([256.0, 1024.0])))
    assert curve.predict(256) == pytest.approx(float(truth(np.array([256.0]))[0]), rel=1e-3)
    assert curve.predict(1024) == pytest.approx(float(truth(np.array([1024.0]))[0]), rel=1e-3)


def test_duplicates_are_averaged() -> None:
    curve = MemoryCurve.fit([512, 512, 2048, 2048], [1000, 1200, 400, 440])
    direct = MemoryCurve.fit([512, 2048], [1100, 420])
    assert curve.predict(1024) == pytest.approx(direct.predict(1024), rel=1e-6)
    assert curve.observations == 4


def test_noisy_non_monotone_input_still_gives_a_monotone_positive_curve() -> None:
    curve = MemoryCurve.fit([128, 256, 512, 1024, 2048], [900, 1000, 700, 800, 750])
    predicted = curve.predict_many(np.arange(128, 10241, 64))
    assert np.all(np.diff(predicted) <= 1e-9)
    assert np.all(predicted > 0)


def test_components_add_up_to_the_prediction() -> None:
    curve = MemoryCurve.fit([128, 1024, 3008], SHAPES["mixed"](np.array([128.0, 1024, 3008])))
    parts = curve.components(2048)
    assert parts.total_ms == pytest.approx(curve.predict(2048))
    assert parts.io_ms == pytest.approx(150, rel=1e-3)
    assert curve.threads == 6


def test_uncertainty_grows_away_from_the_measured_sizes() -> None:
    truth = SHAPES["multi-threaded to 6 vCPU"]
    sizes = np.array([512.0, 1024, 2048])
    curve = MemoryCurve.fit(sizes, truth(sizes))
    inside = curve.relative_error(1024)
    assert curve.relative_error(4096) > inside
    assert curve.relative_error(10240) > curve.relative_error(4096)
    low, high = curve.predict_interval(10240, level=0.9)
    assert low < curve.predict(10240) < high


def test_min_memory_for_a_duration_is_the_smallest_size_that_meets_it() -> None:
    curve = MemoryCurve.fit([128, 1024, 3008], SHAPES["mixed"](np.array([128.0, 1024, 3008])))
    memory = curve.min_memory_for(1500)
    assert memory is not None
    assert curve.predict(memory) <= 1500 < curve.predict(memory - 1)
    assert curve.min_memory_for(1.0) is None
    assert curve.min_memory_for(1e9) == 128


def test_state_round_trip_predicts_the_same() -> None:
    curve = MemoryCurve.fit([128, 1024, 3008], [1628, 386, 321])
    restored = MemoryCurve.from_state(json.loads(json.dumps(curve.to_state())))
    assert restored == curve
    for size in GRID:
        assert restored.predict(size) == curve.predict(size)
        assert restored.relative_error(size) == curve.relative_error(size)


@pytest.mark.parametrize(
    ("memory", "duration"),
    [([], []), ([128], [0.0]), ([0], [10.0]), ([128, 256], [10.0]), ([128], [float("nan")])],
)
def test_invalid_input_is_rejected(memory: list[float], duration: list[float]) -> None:
    with pytest.raises(ValueError):
        MemoryCurve.fit(memory, duration)


@pytest.mark.parametrize("seed", range(60))
def test_nnls_small_matches_scipy(seed: int) -> None:
    from scipy.optimize import nnls

    from service.prediction.memory_curve import nnls_small

    rng = np.random.default_rng(seed)
    rows, columns = int(rng.integers(3, 9)), int(rng.integers(1, 4))
    design = rng.normal(size=(rows, columns)) + (rng.random() < 0.5) * 2.0
    target = rng.normal(size=rows) * 3
    ours = nnls_small(design, target)
    theirs, _ = nnls(design, target)
    assert np.all(ours >= 0)
    assert np.linalg.norm(design @ ours - target) == pytest.approx(
        np.linalg.norm(design @ theirs - target), rel=1e-9, abs=1e-12
    )


def test_cpu_time_tells_io_bound_from_cpu_bound_at_one_size() -> None:
    # Without CPU time a run at one size reads as CPU-bound: 1/m below it. With it, the run's
    # I/O is known, and so is every smaller size (d = io + cpu / v below one vCPU).
    truth = SHAPES["I/O-bound"]  # 800 ms of I/O, 40 ms of CPU
    at = np.array([1769.0, 1769.0, 1769.0])
    blind = MemoryCurve.fit(at, truth(at))
    seen = MemoryCurve.fit(at, truth(at), cpu_ms=[40.0, 40.0, 40.0])
    sizes = np.array([128.0, 256.0, 512.0, 1024.0])
    assert np.allclose(seen.predict_many(sizes), truth(sizes), rtol=0.02)
    assert blind.predict(256) > 5 * float(truth(np.array([256.0]))[0])
    assert seen.observations == 3  # implied points are not runs
    assert seen.observed_min_mb == 1769  # implied sizes are not measured ones
    assert seen.relative_error(256) < blind.relative_error(256) / 2
    assert MemoryCurve.from_state(seen.to_state()).relative_error(256) == seen.relative_error(256)
    cpu_bound = SHAPES["single-threaded CPU-bound"]  # 20 ms of I/O, 1000 ms of CPU
    curve = MemoryCurve.fit([1769.0], cpu_bound(np.array([1769.0])), cpu_ms=[1000.0])
    assert curve.predict(442) == pytest.approx(float(cpu_bound(np.array([442.0]))[0]), rel=0.02)


def test_cpu_time_above_one_vcpu_or_unknown_implies_nothing() -> None:
    truth = SHAPES["multi-threaded to 6 vCPU"]
    at = np.array([3538.0, 7076.0])
    plain = MemoryCurve.fit(at, truth(at))
    with_cpu = MemoryCurve.fit(at, truth(at), cpu_ms=[3050.0, None])
    assert with_cpu.predict(512) == pytest.approx(plain.predict(512))
    # a reading above what the CPU share allows (noise) counts as all CPU, never negative I/O
    curve = MemoryCurve.fit([884.0], [1000.0], cpu_ms=[900.0])
    assert curve.predict(442) == pytest.approx(2000.0, rel=0.02)
    with pytest.raises(ValueError, match="one CPU time"):
        MemoryCurve.fit([512.0, 1024.0], [1.0, 2.0], cpu_ms=[1.0])


def test_first_runs_cpu_counts_only_until_a_warm_run_is_in_and_one_size_keeps_a_prior_error():
    from service.prediction.memory_curve import RELATIVE_ERROR_PRIOR, steady_cpu

    assert steady_cpu([90.0, 95.0], [True, True]) == [90.0, 95.0]
    assert steady_cpu([90.0, 3.0, 95.0], [True, False, True]) == [None, 3.0, None]
    # three runs at one size agree to 1 %: the shape below still rests on d = a + cpu / v only
    curve = MemoryCurve.fit([1769.0] * 3, [1000.0, 1010.0, 990.0], cpu_ms=[100.0] * 3)
    assert curve.residual_error == RELATIVE_ERROR_PRIOR
    two = MemoryCurve.fit(
        [1769.0] * 3 + [884.0], [1000.0, 1010.0, 990.0, 1100.0], cpu_ms=[100.0] * 4
    )
    assert two.residual_error < RELATIVE_ERROR_PRIOR
