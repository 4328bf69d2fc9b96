"""The forecaster's cheap path: how many duration series one tick can update per second.

``update_workload`` (prediction/forecaster.py) builds a bank of series already on ARIMA
coefficients and batches holding one new duration per series; one batch is one tick of a control
plane whose every series got a new point. Forecasting every series (the next round's upper
bound, what a policy reads) is timed too.

The slow path is measured in CPU seconds per statsmodels refit, side by side: on one BLAS thread
(what ``ForecasterBank.refit`` does) and with the BLAS library's own thread count (what it did
before), on the same windows of the loop's configuration.
"""

from __future__ import annotations

import time
from statistics import median
from typing import Any

import numpy as np

from service.prediction.forecaster import ROUND_DURATIONS, ForecasterBank, update_workload

REFIT_SERIES = 8


def measure(series: int = 10_000, ticks: int = 20) -> dict[str, Any]:
    bank, batches = update_workload(series, ticks=ticks)
    update_s = []
    for ids, values in batches:
        started = time.perf_counter()
        bank.update(ids, values)
        update_s.append(time.perf_counter() - started)
    everything = np.arange(series)
    forecast_s = []
    for _ in range(5):
        started = time.perf_counter()
        bank.forecast(everything, horizon=1, level=0.9)
        forecast_s.append(time.perf_counter() - started)
    tick = median(update_s)
    return {
        "series": series,
        "ticks": ticks,
        "update_tick_s": {"median": round(tick, 6), "max": round(max(update_s), 6)},
        "updates_per_s": round(series / tick),
        "forecast_all_s": round(median(forecast_s), 6),
        "forecasts_per_s": round(series / median(forecast_s)),
        "refit": measure_refits(),
    }


def measure_refits(series: int = REFIT_SERIES, rounds: int = 3) -> dict[str, Any]:
    """CPU seconds per refit, one BLAS thread against the library default (best of
    ``rounds``, the same series each time)."""
    _bank(series).refit(np.arange(series))  # imports statsmodels, not counted
    cpu: dict[str, float] = {}
    for label, refit in (
        ("one_blas_thread", lambda bank: bank.refit(np.arange(series))),
        # the same fits without the limit: what refit did before
        ("blas_default", lambda bank: bank._refit(list(range(series)))),
    ):
        best = float("inf")
        for _ in range(rounds):
            bank = _bank(series)
            started = time.process_time()
            refit(bank)
            best = min(best, time.process_time() - started)
        cpu[label] = round(best / series, 4)
    return {"series": series, "cpu_s_per_refit": cpu}


def _bank(series: int) -> ForecasterBank:
    """``series`` series of 64 round-duration ratios, on the loop's configuration."""
    rng = np.random.default_rng(0)
    bank = ForecasterBank(series, ROUND_DURATIONS)
    ids = np.arange(series)
    for _ in range(ROUND_DURATIONS.window):
        bank.update(ids, np.exp(rng.normal(0.0, 0.05, series)))
    return bank
