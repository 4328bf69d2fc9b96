"""ForecasterBank on synthetic ARMA duration series with known parameters."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service.prediction.forecaster import (
    ForecasterBank,
    ForecasterConfig,
    _coefficients,
    update_workload,
)

LEVEL = np.log(2000.0)


def arma_log_series(
    n_series: int, length: int, phi: float, theta: float, sd: float, seed: int
) -> np.ndarray:
    """log-durations x_t = μ + φ (x_{t-1} - μ) + e_t + θ e_{t-1}, e ~ N(0, sd²)."""
    rng = np.random.default_rng(seed)
    e = rng.normal(0.0, sd, (n_series, length))
    x = np.empty((n_series, length))
    x[:, 0] = LEVEL + e[:, 0]
    for t in range(1, length):
        x[:, t] = LEVEL + phi * (x[:, t - 1] - LEVEL) + e[:, t] + theta * e[:, t - 1]
    return x


def run_online(bank: ForecasterBank, x: np.ndarray, warmup: int) -> dict[str, np.ndarray]:
    """Forecast one step, then observe, for every point; refit whatever is due."""
    ids = np.arange(x.shape[0])
    errors, naive, covered = [], [], []
    for t in range(x.shape[1]):
        if t >= warmup:
            forecast = bank.forecast(ids, horizon=1, level=0.9)
            errors.append(np.log(forecast.mean[:, 0]) - x[:, t])
            naive.append(x[:, :t].mean(axis=1) - x[:, t])
            actual = np.exp(x[:, t])
            covered.append((forecast.lower[:, 0] <= actual) & (actual <= forecast.upper[:, 0]))
        bank.update(ids, np.exp(x[:, t]))
        due = bank.due_for_refit()
        if due.size:
            bank.refit(due)
    return {"errors": np.array(errors), "naive": np.array(naive), "covered": np.array(covered)}


SEEDS = range(1, 9)


def arma_run_for(seed: int) -> tuple[ForecasterBank, dict[str, np.ndarray]]:
    x = arma_log_series(n_series=6, length=160, phi=0.8, theta=0.3, sd=0.1, seed=seed)
    bank = ForecasterBank(6, ForecasterConfig(refit_every=32))
    return bank, run_online(bank, x, warmup=20)


@pytest.fixture(scope="module")
def arma_runs() -> dict[int, tuple[ForecasterBank, dict[str, np.ndarray]]]:
    return {seed: arma_run_for(seed) for seed in SEEDS}


@pytest.fixture(scope="module")
def arma_run(arma_runs) -> tuple[ForecasterBank, dict[str, np.ndarray]]:
    return arma_runs[1]


# These hold for every seed, with a margin: the ideal one-step MSE is the innovation variance
# 0.01 and the naive mean's is the series' variance, about 0.044. Seed 6 once failed by a
# short-window fit with θ ≈ 1, whose recursion swung by ±0.8 every step (see forecaster.MAX_ROOT).
@pytest.mark.parametrize("seed", SEEDS)
def test_one_step_forecasts_beat_the_naive_mean(arma_runs, seed) -> None:
    bank, run = arma_runs[seed]
    assert bank.uses_arima(np.arange(6)).all()
    mse, naive_mse = np.mean(run["errors"] ** 2), np.mean(run["naive"] ** 2)
    assert mse < 0.6 * naive_mse
    settled = np.mean(run["errors"][60:] ** 2)  # after a few refits
    assert settled < 1.5 * 0.1**2  # near the innovation variance: the best any forecast can do


@pytest.mark.parametrize("seed", SEEDS)
def test_ninety_percent_intervals_cover_about_ninety_percent(arma_runs, seed) -> None:
    _, run = arma_runs[seed]
    assert 0.75 <= run["covered"].mean() <= 0.97


def test_fits_on_the_invertibility_boundary_are_rejected() -> None:
    # the first 8 points of seed 6's last series: statsmodels fits ARMA(1, 1) with θ = 0.9996
    x = arma_log_series(n_series=6, length=160, phi=0.8, theta=0.3, sd=0.1, seed=6)[5]
    bank = ForecasterBank(1, ForecasterConfig(refit_every=32))
    bank.update(np.zeros(8, dtype=int), np.exp(x[:8]))
    bank.refit(np.array([0]))
    arima = bank.series_state(0)["arima"]
    if arima is not None and arima["active"]:
        _, phi, theta, _ = _coefficients(tuple(arima["order"]), np.array(arima["params"]))
        assert abs(theta) < 0.97 and (arima["order"][1] == 1 or abs(phi) < 0.97)


def test_fitted_coefficients_are_near_the_truth(arma_run) -> None:
    bank, _ = arma_run
    state = [bank.series_state(i)["arima"] for i in range(6)]
    ar_series = [s for s in state if s["order"][:2] == [1, 0]]
    assert ar_series, "a stationary ARMA series should mostly be fitted with d = 0"
    phis = [s["params"][1] for s in ar_series]
    assert 0.55 < float(np.median(phis)) < 0.95


def test_short_series_use_the_ewma() -> None:
    bank = ForecasterBank(2)
    for value in (1000.0, 1100.0, 900.0):
        bank.update(np.array([0]), np.array([value]))
    assert bank.due_for_refit().size == 0
    report = bank.refit(np.array([0, 1]))
    assert report.skipped.tolist() == [0, 1]
    assert not bank.uses_arima(np.array([0])).any()
    forecast = bank.forecast(np.array([0, 1]), horizon=3)
    assert 900 < forecast.mean[0, 0] < 1100
    assert np.all(np.diff(forecast.upper[0] - forecast.lower[0]) > 0)  # widens with the horizon
    assert np.isnan(forecast.mean[1]).all()  # no observation, no forecast


def test_a_series_that_cannot_be_fitted_falls_back_to_the_ewma() -> None:
    bank = ForecasterBank(1, ForecasterConfig(min_observations=8))
    bank.update(np.zeros(12, dtype=int), np.full(12, 750.0))  # constant: nothing to fit
    assert bank.due_for_refit().tolist() == [0]
    report = bank.refit(np.array([0]))
    assert report.fell_back.tolist() == [0]
    assert bank.due_for_refit().size == 0  # it waits a full cadence before trying again
    forecast = bank.forecast(np.array([0]))
    assert forecast.mean[0, 0] == pytest.approx(750.0, rel=0.05)


def test_integrated_series_get_widening_intervals() -> None:
    rng = np.random.default_rng(3)
    x = LEVEL + np.cumsum(rng.normal(0.0, 0.05, 80))
    bank = ForecasterBank(1, ForecasterConfig(orders=((0, 1, 1), (1, 1, 1))))
    bank.update(np.zeros(80, dtype=int), np.exp(x))
    assert bank.refit(np.array([0])).fitted.tolist() == [0]
    forecast = bank.forecast(np.array([0]), horizon=10)
    width = np.log(forecast.upper[0] / forecast.lower[0])
    assert np.all(np.diff(width) > 0)
    assert np.exp(x[-1]) == pytest.approx(np.exp(np.log(forecast.mean[0, 0])), rel=0.1)


def test_state_round_trip_gives_identical_forecasts(arma_run) -> None:
    bank, _ = arma_run
    ids = np.arange(bank.n_series)
    restored = ForecasterBank.from_state(json.loads(json.dumps(bank.to_state())))
    for before, after in zip(bank.forecast(ids, 4), restored.forecast(ids, 4), strict=True):
        np.testing.assert_array_equal(before, after)
    values = np.full(ids.size, 1800.0)
    bank_copy = ForecasterBank.from_state(bank.to_state())
    bank_copy.update(ids, values)
    restored.update(ids, values)
    for before, after in zip(bank_copy.forecast(ids), restored.forecast(ids), strict=True):
        np.testing.assert_array_equal(before, after)
    assert restored.due_for_refit().tolist() == bank.due_for_refit().tolist()


def test_vectorised_update_equals_a_per_series_loop() -> None:
    bank, batches = update_workload(n_series=300, ticks=4, seed=7)
    looped = ForecasterBank.from_state(bank.to_state())
    for ids, values in batches:
        bank.update(ids, values)
        for i, value in zip(ids.tolist(), values.tolist(), strict=True):
            looped.update(np.array([i]), np.array([value]))
    # Repeated indices in one call are applied in order, like separate calls.
    repeated = np.array([5, 9, 5, 5])
    bank.update(repeated, np.array([1000.0, 2000.0, 1100.0, 1200.0]))
    for i, value in zip(repeated.tolist(), [1000.0, 2000.0, 1100.0, 1200.0], strict=True):
        looped.update(np.array([i]), np.array([value]))
    ids = np.arange(bank.n_series)
    assert bank.uses_arima(ids).all()
    for vectorised, one_by_one in zip(bank.forecast(ids, 3), looped.forecast(ids, 3), strict=True):
        np.testing.assert_allclose(vectorised, one_by_one, rtol=1e-12)


def test_add_series_keeps_the_existing_ones() -> None:
    bank = ForecasterBank(1)
    bank.update(np.array([0]), np.array([500.0]))
    new = bank.add_series(2)
    assert new.tolist() == [1, 2]
    assert bank.observations(np.arange(3)).tolist() == [1, 0, 0]


@pytest.mark.parametrize("values", [[0.0], [-5.0], [float("nan")]])
def test_missing_or_invalid_durations_are_rejected(values: list[float]) -> None:
    bank = ForecasterBank(1)
    with pytest.raises(ValueError):
        bank.update(np.array([0]), np.array(values))


def test_out_of_range_series_are_rejected() -> None:
    with pytest.raises(IndexError):
        ForecasterBank(2).forecast(np.array([2]))
