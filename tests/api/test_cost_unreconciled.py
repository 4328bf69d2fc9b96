"""GET /v1/jobs/{id}/cost counts the invocations whose REPORT line is not read yet."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from service.database import commit
from service.models import Invocation, Stage, Task
from tests.api.test_job_ledger import seed_ledger, submit


def test_invocations_waiting_for_their_report_are_counted_overall_and_per_stage(
    client, alice, database
):
    job_id = submit(client, alice)
    seed_ledger(database, job_id)
    with database.session() as session:
        rung1 = session.scalar(
            select(Stage).where(Stage.job_id == uuid.UUID(job_id), Stage.name == "rung-1")
        )
        task = session.scalar(select(Task).where(Task.stage_id == rung1.id))
        intent = session.scalar(select(Invocation).where(Invocation.state == "intent"))
        # the in-flight attempt came back without a REPORT line: request billed, duration not
        intent.state, intent.outcome, intent.bill_state = "done", "ok", "pending"
        intent.compute_cost_usd, intent.request_cost_usd = 0, "0.0000002"
        session.add(
            Invocation(
                job_id=task.job_id,
                stage_id=rung1.id,
                task_id=task.id,
                attempt=3,
                function_name="builtin:mlp",
                memory_mb=1024,
                state="ambiguous",
                outcome="unhandled",
                bill_state="missing",  # not found within the horizon: still reported
                compute_cost_usd=0,
                request_cost_usd="0.0000002",
            )
        )
        commit(session)
    cost = client.get(f"/v1/jobs/{job_id}/cost", headers=alice.headers).json()
    assert cost["invocations"] == 5 and cost["unreconciled_invocations"] == 2
    stages = {s["name"]: s for s in cost["stages"]}
    assert stages["rung-0"]["unreconciled_invocations"] == 0
    assert stages["rung-1"]["unreconciled_invocations"] == 2
    assert cost["requests_usd"] == 5 * 0.0000002


def test_the_cost_schema_documents_the_count(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    field = schema["JobCostOut"]["properties"]["unreconciled_invocations"]
    assert field["type"] == "integer" and "REPORT" in field["description"]
    assert "unreconciled_invocations" in schema["JobCostOut"]["required"]
