"""Budget caps: a launch is admitted only when the budget holds for it, so a job stops within one
invocation's cost of its cap instead of launching a whole rung past it (``admission.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.control.admission import Admission, CostModel, Run
from service.simulation.run import simulate
from service.spec import JobSpec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def hpo():
    raw = json.loads((EXAMPLES / "hpo-81-trials.json").read_text())
    return raw, simulate(JobSpec.model_validate(raw))


@pytest.mark.parametrize("share", [0.1, 0.3, 0.6, 0.9])
def test_a_capped_job_stops_within_one_invocation_of_its_cap(hpo, share):
    raw, uncapped = hpo
    cap = uncapped["cost_usd"] * share
    out = simulate(JobSpec.model_validate(raw | {"budget": {"max_cost_usd": cap}}))
    assert out["status"] == "failed" and out["status_reason"].startswith("budget cap reached")
    # before admission a 10 % cap was overshot 2.9× (the whole first rung launched at once)
    assert out["cost_usd"] - cap <= out["costliest_invocation_usd"]


def test_admission_rules():
    model = CostModel.of([Run("a", 1024, 1000.0, None, 1)], "x86_64")
    one = model.predict("a", 1024, 1)
    assert one == pytest.approx(1024 / 1024 * 1.0 * 0.0000166667 + 0.0000002)
    # CPU-bound reading: the same cost per epoch at a smaller size; I/O-bound: dearer above
    assert model.predict("a", 512, 1) == pytest.approx(one)
    assert model.predict("a", 2048, 1) == pytest.approx(2 * one, rel=0.01)
    assert model.predict("b", 1024, 2) == pytest.approx(2 * one)  # an unseen shape: any run's
    admission = Admission(cap_usd=3.5 * one, spent_usd=one, model=model)
    assert admission.admit("a", 1024, 1) and admission.admit("a", 1024, 1)
    assert not admission.admit("a", 1024, 1)  # 1 spent + 2 in flight + 1 > 3.5
    # nothing known yet: one launch at a time
    blind = Admission(cap_usd=1.0, spent_usd=0.0, model=CostModel())
    assert blind.admit("a", 1024, 1) and not blind.admit("a", 1024, 1)
    # nothing in flight and below the cap: the last launch may overshoot by its own cost
    last = Admission(cap_usd=1.5 * one, spent_usd=one, model=model)
    assert last.admit("a", 1024, 1) and not last.admit("a", 1024, 1)
    assert not Admission(cap_usd=one, spent_usd=one, model=model).admit("a", 128, 1)
