"""Every handler response is checked against cescale.handler/1 before the loop records it."""

from __future__ import annotations

import uuid
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from service.control import functions
from service.control.drive import drive
from service.control.loop import Controller
from service.control.responses import problem
from service.models import Invocation, Job, Task
from tests.control.helpers import HPO, submit

JOB, TASK = uuid.uuid4(), uuid.uuid4()
ATTEMPT = SimpleNamespace(job_id=JOB, attempt=2)
OWN_TASK = SimpleNamespace(id=TASK)
RESULT = {
    "contract": "cescale.handler/1",
    "metrics": {"loss": 0.4, "score": 0.8},
    "epochs_done": 3,
    "checkpoint": "s3://b/k.npz",
    "peak_memory_mb": 80.0,
    "replayed": False,
}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (RESULT, None),
        (RESULT | {"job_id": str(JOB), "task_id": str(TASK), "attempt": 2}, None),
        (
            {"contract": "cescale.handler/1", "error": {"type": "InvalidInput", "message": "x"}},
            None,
        ),
        ("Simple Lambda happy path OK", "$: 'Simple Lambda happy path OK' is not of type 'object'"),
        (None, "the function returned no payload"),
        ({"echo": {}}, "$: 'contract' is a required property"),
        (RESULT | {"metrics": {"loss": 0.4}}, "$.metrics: 'score' is a required property"),
        (
            RESULT | {"contract": "cescale.handler/2"},
            "$.contract: 'cescale.handler/1' was expected",
        ),
        (RESULT | {"epochs_done": -1}, "$.epochs_done: -1 is less than the minimum of 0"),
        (
            {"contract": "cescale.handler/1", "error": {"type": "Oops", "message": "x"}},
            "$.error.type: 'Oops' is not one of ['InvalidEvent', 'InvalidInput', "
            "'IdempotencyConflict']",
        ),
        (RESULT | {"attempt": 1}, "$.attempt: 1 is not this invocation's 2"),
        (RESULT | {"task_id": "other"}, f"$.task_id: 'other' is not this invocation's '{TASK}'"),
    ],
)
def test_the_first_contract_violation_is_named(payload, expected) -> None:
    assert problem(payload, ATTEMPT, OWN_TASK) == expected


def test_a_long_violation_is_cut_short() -> None:
    found = problem({"echo": "x" * 5000, "contract": 1}, ATTEMPT, OWN_TASK)
    assert found is not None and len(found) <= 300


def test_a_function_answering_garbage_fails_its_tasks_at_once_and_the_job_says_why(
    loop_env, monkeypatch
):
    """The emulator path: the function runs (and is billed) but does not answer the contract."""
    database, platform, clock, settings = loop_env
    monkeypatch.setattr(
        functions.registry, "resolve", lambda function, kind: "tests.platform.handlers:echo"
    )
    spec = HPO | {"hpo": HPO["hpo"] | {"trials": 3, "max_epochs": 1}}
    (job_id,) = submit(database, spec)
    drive(Controller(database, platform, settings, seed=3), clock, [job_id], max_ticks=200)

    reason = (
        "response from cescale-logreg-hpo does not follow cescale.handler/1: "
        "$: 'contract' is a required property"
    )
    with database.session() as session:
        job = session.get(Job, job_id)
        assert job.status == "failed"
        assert job.status_reason == f"every trial of rung-0 failed: {reason} (3)"
        tasks = session.scalars(select(Task).where(Task.job_id == job_id)).all()
        assert [(t.status, t.attempts, t.failure_reason) for t in tasks] == [
            ("failed", 1, reason)
        ] * 3
        invocations = session.scalars(select(Invocation).where(Invocation.job_id == job_id)).all()
        assert len(invocations) == 3
        for invocation in invocations:
            assert (invocation.state, invocation.outcome) == ("done", "handled")
            assert invocation.error == reason
            # it ran, so it is billed in full, at the architecture the emulator ran it on
            assert invocation.bill_state == "final" and invocation.architecture == "x86_64"
            assert invocation.compute_cost_usd > 0 and invocation.request_cost_usd > 0


def test_an_arm64_function_is_billed_at_the_arm64_rate(loop_env):
    database, platform, clock, settings = loop_env
    spec = HPO | {
        "workload": HPO["workload"] | {"architecture": "arm64"},
        "hpo": HPO["hpo"] | {"trials": 3, "max_epochs": 1},
    }
    (job_id,) = submit(database, spec)
    drive(Controller(database, platform, settings, seed=3), clock, [job_id], max_ticks=200)
    with database.session() as session:
        assert session.get(Job, job_id).status == "succeeded"
        invocations = session.scalars(select(Invocation).where(Invocation.job_id == job_id)).all()
        assert len(invocations) == 3
        for invocation in invocations:
            gb_s = Decimal(invocation.memory_mb) / 1024 * Decimal(invocation.billed_ms) / 1000
            assert invocation.architecture == "arm64" and invocation.bill_state == "final"
            picodollars = Decimal("1e-12")  # what the ledger keeps
            assert invocation.compute_cost_usd == (gb_s * Decimal("0.0000133334")).quantize(
                picodollars
            )
            assert invocation.compute_cost_usd < (gb_s * Decimal("0.0000166667")).quantize(
                picodollars
            )
