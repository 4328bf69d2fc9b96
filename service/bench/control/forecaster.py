"""The forecaster's cheap path: how many duration series one tick can update per second.

``update_workload`` (prediction/forecaster.py) builds a bank of series already on ARIMA
coefficients and batches holding one new duration per series; one batch is one tick of a control
plane whose every series got a new point. Forecasting every series (the next round's upper
bound, what a policy reads) is timed too.
"""

from __future__ import annotations

import time
from statistics import median
from typing import Any

import numpy as np

from service.prediction.forecaster import update_workload


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
    }
