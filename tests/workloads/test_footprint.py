"""Memory footprints are real: they grow with model and data size, and too little memory OOMs.

Each invocation runs in a fresh subprocess (see conftest) so ``peak_memory_mb`` belongs to that
invocation alone.
"""

from __future__ import annotations

import pytest

MB = 1024 * 1024
MLP = "service.workloads.handlers:mlp_trial"
LOGREG = "service.workloads.handlers:logreg_trial"


def _peak(isolated, make_event, handler, params, dataset, task_id) -> float:
    result = isolated(handler, make_event(task_id=task_id, params=params, dataset=dataset))
    assert result["outcome"] == "ok", result
    return result["response"]["peak_memory_mb"]


def test_footprint_grows_with_model_size(isolated, make_event):
    dataset = "builtin:synthetic?n=1000&d=100"
    widths = [[16], [1024, 1024], [2048, 2048]]
    peaks = [
        _peak(isolated, make_event, MLP, {"hidden": hidden}, dataset, f"width-{i}")
        for i, hidden in enumerate(widths)
    ]
    assert peaks[0] < peaks[1] < peaks[2], peaks
    # The parameters alone differ by ~17 MB (float32); training holds them, their gradients
    # and the serialised checkpoint, so the footprint must grow by at least twice that.
    params_mb = (100 * 2048 + 2048 * 2048 + 2048 * 2 - (100 * 16 + 16 * 2)) * 4 / MB
    assert peaks[2] - peaks[0] > 2 * params_mb, (peaks, params_mb)


@pytest.mark.parametrize(("handler", "params"), [(LOGREG, {}), (MLP, {"hidden": 16})])
def test_footprint_grows_with_data_size(isolated, make_event, handler, params):
    params = {**params, "batch_size": 1024}
    small = _peak(isolated, make_event, handler, params, "builtin:synthetic?n=10000&d=50", "s")
    large = _peak(isolated, make_event, handler, params, "builtin:synthetic?n=400000&d=50", "l")
    data_mb = (400_000 - 10_000) * (50 + 1) * 4 / MB  # float32 features + int32 labels
    assert large - small > 0.9 * data_mb, (small, large, data_mb)
    assert large - small < 2.0 * data_mb, "the dataset should not be copied wholesale"


def test_too_little_memory_is_an_out_of_memory_not_a_crash(isolated, make_event):
    """The ~80 MB dataset does not fit in 40 MB of headroom; it does in 400 MB."""
    event = make_event(params={"batch_size": 1024}, dataset="builtin:synthetic?n=400000&d=50")
    starved = isolated(LOGREG, event, headroom_mb=40)
    assert starved["outcome"] == "OutOfMemory"
    roomy = isolated(LOGREG, event, headroom_mb=400)
    assert roomy["outcome"] == "ok"
    assert roomy["response"]["metrics"]["epochs_run"] == 1
