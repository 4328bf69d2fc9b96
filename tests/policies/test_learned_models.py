"""What the learn step stored is what the policies plan with: the stored memory curve, and the
duration forecast's upper bound as the planning margin. These fail when the predictors are
disconnected from the decisions again."""

from __future__ import annotations

import numpy as np
import pytest

from service.models.enums import StageKind
from service.policies.base import Observations
from service.policies.ce_scaling import CeScaling
from service.policies.shape_model import (
    MAX_PLANNING_MARGIN,
    duration_factor,
    fit_all,
    learned_curve,
)
from service.prediction.forecaster import ROUND_DURATIONS, ForecasterBank
from service.prediction.memory_curve import MemoryCurve
from tests.policies.helpers import context, cpu_bound, samples, stage, training_spec

SLOW = cpu_bound(2000.0)


def forecaster_state(ratios: list[float]) -> dict:
    bank = ForecasterBank(1, ROUND_DURATIONS)
    bank.update(np.zeros(len(ratios), dtype=int), np.array(ratios))
    return {"state": bank.series_state(0), "observations": len(ratios)}


def observed(runs, **predictors) -> Observations:
    return Observations(elapsed_s=0.0, spent_usd=0.0, samples=runs, predictors=predictors)


def test_the_stored_curve_is_used_when_it_covers_every_run():
    runs = samples("worker", SLOW)
    # a curve learned elsewhere, twice as slow: if the policy refitted, it would not see it
    stored = MemoryCurve.fit([256, 512, 1024], [2 * SLOW(m) for m in (256, 512, 1024)])
    obs = observed(runs, **{"memory-curve:worker": {"state": stored.to_state(), "observations": 3}})
    model = fit_all(obs, ["worker"])["worker"]
    assert model.duration_ms(1024, 1) == pytest.approx(stored.predict(1024))
    # behind the runs (a run the learn step has not seen): refitted from the runs
    behind = observed(
        runs, **{"memory-curve:worker": {"state": stored.to_state(), "observations": 2}}
    )
    assert learned_curve(behind, "worker", 3) is None
    assert fit_all(behind, ["worker"])["worker"].duration_ms(1024, 1) == pytest.approx(
        SLOW(1024), rel=0.02
    )


def test_a_forecast_of_slower_rounds_widens_the_margin_past_the_fixed_cap():
    runs = samples("worker", SLOW)
    steady = observed(runs, **{"duration:worker": forecaster_state([1.0] * 6)})
    slower = observed(runs, **{"duration:worker": forecaster_state([1.0] * 4 + [1.7] * 4)})
    without = fit_all(observed(runs), ["worker"])["worker"]
    assert without.drift_factor is None
    # a steady series: no drift, the curve's own margin stands (no more cost than without)
    assert duration_factor(steady, "worker") == pytest.approx(1.0, abs=0.02)
    model = fit_all(steady, ["worker"])["worker"]
    assert model.upper_ms(1024, 1) == pytest.approx(without.upper_ms(1024, 1), rel=0.02)
    # rounds got 1.7x slower than the curve: the margin grows by that, past the fixed cap
    assert duration_factor(slower, "worker") > 1 + MAX_PLANNING_MARGIN
    model = fit_all(slower, ["worker"])["worker"]
    assert model.upper_ms(1024, 1) > without.upper_ms(1024, 1) * (1 + MAX_PLANNING_MARGIN)
    # too few rounds to tell drift from noise: no factor
    short = observed(runs, **{"duration:worker": forecaster_state([1.0, 1.7, 1.7])})
    assert duration_factor(short, "worker") is None


def test_a_training_plan_follows_the_forecast():
    plan = stage(3, {"worker": 4}, epochs=2, kind=StageKind.ROUND)
    runs = samples("worker", SLOW, sizes=(512, 1024, 1769), epochs=2)
    outline = [(4, 2)] * 5  # 6 rounds of 2 epochs left, 4 s each at one vCPU
    spec = training_spec(60.0, max_epochs=12)

    def decided(**predictors) -> int:
        ctx = context(spec, plan, outline, samples=runs)
        ctx = ctx.__class__(**{**ctx.__dict__, "observations": observed(runs, **predictors)})
        return CeScaling().allocate(ctx)["worker-0"].memory_mb

    steady = decided(**{"duration:worker": forecaster_state([1.0] * 6)})
    slower = decided(**{"duration:worker": forecaster_state([1.0] * 3 + [1.5] * 4)})
    # rounds now take longer than the curve says: the plan buys more CPU for the rest
    assert steady < 1769 and slower > steady
