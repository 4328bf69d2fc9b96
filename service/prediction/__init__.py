"""Online estimators the allocation policies learn from: pure functions of observations.

- :class:`MemoryCurve` — duration as a function of memory (Lambda's CPU-share model).
- :class:`ForecasterBank` — ARIMA / EWMA forecasts of duration series, many at once.
- :class:`LossCurve` — rounds a training job still needs to reach its target loss.

No clock reads, no I/O: every estimator's state is a small JSON dict (``to_state`` /
``from_state``) that the control loop stores, so a restarted controller resumes where it was.
"""

from service.prediction.forecaster import (
    Forecast,
    ForecasterBank,
    ForecasterConfig,
    RefitReport,
    update_workload,
)
from service.prediction.loss_curve import FittedForm, LossCurve, RoundsEstimate
from service.prediction.memory_curve import CurveComponents, CurveShape, MemoryCurve, vcpu_share

__all__ = [
    "CurveComponents",
    "CurveShape",
    "FittedForm",
    "Forecast",
    "ForecasterBank",
    "ForecasterConfig",
    "LossCurve",
    "MemoryCurve",
    "RefitReport",
    "RoundsEstimate",
    "update_workload",
    "vcpu_share",
]
