"""Cancel, cost and timeline. The control loop is not built yet, so these tests write the rows it
will write (stages, invocations, allocations) straight through the ORM."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest

from service.database import commit
from service.models import Allocation, Invocation, Job, Stage, Task
from service.models.base import utcnow
from tests.api.helpers import HPO_SPEC, assert_problem


def submit(client, tenant) -> str:
    return client.post("/v1/jobs", json=HPO_SPEC, headers=tenant.headers).json()["id"]


def set_status(database, job_id: str, status: str) -> None:
    with database.session() as session:
        job = session.get(Job, uuid.UUID(job_id))
        job.status = status
        if status == "running":
            job.started_at = utcnow()
        commit(session)


def test_cancel_pending_job_is_immediate_and_idempotent(client, alice):
    job_id = submit(client, alice)
    first = client.post(f"/v1/jobs/{job_id}/cancel", headers=alice.headers)
    assert first.status_code == 200
    assert first.json()["status"] == "cancelled" and first.json()["finished_at"]
    again = client.post(f"/v1/jobs/{job_id}/cancel", headers=alice.headers)
    assert again.status_code == 200 and again.json()["status"] == "cancelled"


def test_cancel_running_job_is_a_request(client, alice, database):
    job_id = submit(client, alice)
    set_status(database, job_id, "running")
    response = client.post(f"/v1/jobs/{job_id}/cancel", headers=alice.headers)
    assert response.status_code == 202
    assert response.json()["status"] == "running"
    assert response.json()["cancel_requested"] is True


@pytest.mark.parametrize("final", ["succeeded", "failed"])
def test_cancel_finished_job_is_409(client, alice, database, final):
    job_id = submit(client, alice)
    set_status(database, job_id, final)
    assert_problem(client.post(f"/v1/jobs/{job_id}/cancel", headers=alice.headers), 409)


def seed_ledger(database, job_id: str) -> dict:
    """Two stages; three billed invocations, one still in flight (intent, no bill)."""
    job_uuid = uuid.UUID(job_id)
    t0 = utcnow()
    with database.session() as session:
        rung0 = Stage(
            job_id=job_uuid,
            position=0,
            name="rung-0",
            kind="rung",
            status="succeeded",
            planned_memory_mb=512,
            started_at=t0,
            finished_at=t0 + timedelta(seconds=30),
        )
        rung1 = Stage(
            job_id=job_uuid,
            position=1,
            name="rung-1",
            kind="rung",
            status="running",
            planned_memory_mb=1024,
            started_at=t0 + timedelta(seconds=31),
        )
        session.add_all([rung0, rung1])
        session.flush()
        tasks = [
            Task(
                job_id=job_uuid,
                stage_id=rung0.id,
                key="trial-000",
                function_name="builtin:mlp",
                status="succeeded",
            ),
            Task(
                job_id=job_uuid,
                stage_id=rung0.id,
                key="trial-001",
                function_name="builtin:mlp",
                status="succeeded",
            ),
            Task(
                job_id=job_uuid,
                stage_id=rung1.id,
                key="trial-000",
                function_name="builtin:mlp",
                status="running",
            ),
        ]
        session.add_all(tasks)
        session.flush()
        bills = [
            # (task, memory, billed ms, compute $, request $)
            (tasks[0], 512, 1000, Decimal("0.0000083333500"), Decimal("0.0000002")),
            (tasks[1], 512, 1500, Decimal("0.0000125000250"), Decimal("0.0000002")),
            (tasks[2], 1024, 700, Decimal("0.0000116666900"), Decimal("0.0000002")),
        ]
        for task, memory, billed, compute, request in bills:
            session.add(
                Invocation(
                    job_id=job_uuid,
                    stage_id=task.stage_id,
                    task_id=task.id,
                    attempt=1,
                    function_name="builtin:mlp",
                    memory_mb=memory,
                    state="done",
                    outcome="ok",
                    billed_ms=billed,
                    duration_ms=billed - 0.5,
                    cold_start=False,
                    compute_cost_usd=compute,
                    request_cost_usd=request,
                )
            )
        session.add(
            Invocation(
                job_id=job_uuid,
                stage_id=rung1.id,
                task_id=tasks[2].id,
                attempt=2,
                function_name="builtin:mlp",
                memory_mb=1024,
                state="intent",
            )
        )
        session.add(
            Allocation(
                job_id=job_uuid,
                stage_id=rung1.id,
                function_name="builtin:mlp",
                from_mb=512,
                to_mb=1024,
                state="applied",
                rule="deadline-split",
                reason="rung-1 needs more CPU to meet its share of the deadline",
                predicted_gain_usd=0.0012,
                detail={"shape": "hidden=64"},
                created_at=t0 + timedelta(seconds=30.5),
                applied_at=t0 + timedelta(seconds=30.6),
            )
        )
        commit(session)
    return {"bills": bills}


def test_cost_is_exactly_the_sum_of_billed_invocations(client, alice, database):
    job_id = submit(client, alice)
    seeded = seed_ledger(database, job_id)
    response = client.get(f"/v1/jobs/{job_id}/cost", headers=alice.headers)
    assert response.status_code == 200, response.text
    cost = response.json()
    compute = sum(b[3] for b in seeded["bills"])
    requests = sum(b[4] for b in seeded["bills"])
    assert cost["invocations"] == 3  # the in-flight intent has no bill yet
    assert cost["compute_usd"] == pytest.approx(float(compute), abs=1e-12)
    assert cost["requests_usd"] == pytest.approx(float(requests), abs=1e-12)
    assert cost["total_usd"] == pytest.approx(float(compute + requests), abs=1e-12)
    assert cost["gb_seconds"] == pytest.approx((512 * 1.0 + 512 * 1.5 + 1024 * 0.7) / 1024)
    assert cost["currency"] == "USD"
    stages = {s["name"]: s for s in cost["stages"]}
    assert [s["name"] for s in cost["stages"]] == ["rung-0", "rung-1"]
    assert stages["rung-0"]["invocations"] == 2 and stages["rung-1"]["invocations"] == 1
    assert sum(s["total_usd"] for s in cost["stages"]) == pytest.approx(cost["total_usd"])


def test_cost_of_a_new_job_is_zero(client, alice):
    job_id = submit(client, alice)
    cost = client.get(f"/v1/jobs/{job_id}/cost", headers=alice.headers).json()
    assert cost["total_usd"] == 0 and cost["invocations"] == 0 and cost["stages"] == []


def test_timeline_orders_stage_events_and_allocation_changes(client, alice, database):
    job_id = submit(client, alice)
    seed_ledger(database, job_id)
    response = client.get(f"/v1/jobs/{job_id}/timeline", headers=alice.headers)
    assert response.status_code == 200
    events = response.json()["events"]
    assert [e["type"] for e in events] == [
        "job.submitted",
        "stage.started",
        "stage.finished",
        "allocation.changed",
        "stage.started",
    ]
    change = events[3]
    assert change["stage"] == "rung-1"
    assert change["detail"]["from_mb"] == 512 and change["detail"]["to_mb"] == 1024
    assert change["detail"]["reason"].startswith("rung-1 needs more CPU")
    assert change["detail"]["predicted_gain_usd"] == pytest.approx(0.0012)
    assert change["detail"]["shape"] == "hidden=64"
    # stage events carry the stage's task counts as of the read (the watch view's progress)
    done = {"total": 2, "succeeded": 2, "failed": 0, "running": 0}
    assert events[1]["detail"]["tasks"] == events[2]["detail"]["tasks"] == done
    assert events[4]["detail"]["tasks"] == {"total": 1, "succeeded": 0, "failed": 0, "running": 1}
    times = [e["at"] for e in events]
    assert times == sorted(times)


def test_cancel_retries_when_the_control_loop_updates_the_job_meanwhile(
    client, alice, database, monkeypatch
):
    """SQLite has no row locks: the loop can commit a new version of the job between the
    cancel's read and its write. The cancel reads again instead of failing with a 500."""
    from sqlalchemy import text

    from service.jobs.repository import JobRepository

    job_id = submit(client, alice)
    stages = JobRepository.stages
    interfered = []

    def stages_after_a_concurrent_update(self, job_uuid):
        if not interfered:
            interfered.append(True)
            with database.session() as other:  # the loop's tick, committed meanwhile
                other.execute(
                    text("UPDATE jobs SET version = version + 1 WHERE id = :id"),
                    {"id": job_uuid},
                )
                commit(other)
        return stages(self, job_uuid)

    monkeypatch.setattr(JobRepository, "stages", stages_after_a_concurrent_update)
    response = client.post(f"/v1/jobs/{job_id}/cancel", headers=alice.headers)
    assert interfered
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
