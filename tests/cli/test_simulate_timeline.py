"""A simulated job's timeline is in the order it ran: every row is stamped by the loop's
(virtual) clock, none by the database's or the machine's wall clock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.simulation.run import simulate
from service.spec import JobSpec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(
    ("example", "policy"),
    [("hpo-digits.json", None), ("training-digits.json", {"name": "power-tuning"})],
)
def test_simulated_timeline_runs_from_submission_to_the_end(example, policy):
    document = json.loads((EXAMPLES / example).read_text())
    if policy is not None:
        document["policy"] = policy
    result = simulate(JobSpec.model_validate(document), timeline=True)
    events = result["timeline"]
    types = [event["type"] for event in events]
    assert types[0] == "job.submitted"
    assert types[1] == "job.started"
    assert types[-1] == f"job.{result['status']}" == "job.succeeded"
    times = [event["at_s"] for event in events]
    assert times == sorted(times)
    assert 0 <= times[-1] <= result["jct_s"] + 1e-6  # submitted when it started: one clock
    started = [e["stage"] for e in events if e["type"] == "stage.started"]
    assert started == [stage["name"] for stage in result["stages"]]
