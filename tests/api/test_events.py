"""GET /v1/jobs/{id}/events: Server-Sent Events of a job's timeline, status and cost; resumable
with Last-Event-ID; live while the job runs; tenant-scoped."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.database import Database, commit
from service.models import Job, Stage
from tests.api.helpers import assert_problem
from tests.api.ledger_seed import seed_job
from tests.conftest import make_tenant, truncate_all

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def read_events(response) -> list[dict]:
    """Parse text/event-stream into [{event, data, id}] (comments and retry skipped)."""
    events, current = [], {}
    for line in response.iter_lines():
        if line == "":
            if "event" in current:
                events.append(current)
            current = {}
        elif line.startswith(":") or line.startswith("retry:"):
            continue
        else:
            name, _, value = line.partition(": ")
            current[name] = json.loads(value) if name == "data" else value
    return events


@pytest.fixture
def finished(database, alice):
    with database.session() as session:
        seeded = seed_job(session, alice.tenant_id, T0, [(512, [2000, 2000]), (1024, [1000])])
        commit(session)
    return seeded


def test_a_finished_jobs_stream_replays_everything_and_ends(client, alice, finished):
    url = f"/v1/jobs/{finished.job_id}/events"
    with client.stream("GET", url, headers=alice.headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = read_events(response)  # returns: the stream ended by itself
    types = [e["event"] for e in events]
    assert types == [
        "job.submitted",
        "job.started",
        "stage.started",
        "stage.finished",
        "allocation.changed",
        "stage.started",
        "stage.finished",
        "job.succeeded",
        "job.status",
        "cost.updated",
    ]
    change = events[4]["data"]
    assert change["stage"] == "round-1" and change["detail"]["to_mb"] == 1024
    assert "needs 1024 MB" in change["detail"]["reason"]
    assert events[8]["data"]["status"] == "succeeded" and "id" not in events[8]
    cost = events[9]["data"]
    assert cost["invocations"] == 3
    assert cost["total_usd"] == pytest.approx(float(finished.total))
    ids = [e["id"] for e in events[:8]]
    assert ids == sorted(ids, key=lambda i: int(i.split("-")[0])) and len(set(ids)) == 8

    # resume after the third event: only the timeline after it, then the snapshots again
    with client.stream("GET", url, headers={**alice.headers, "Last-Event-ID": ids[2]}) as response:
        resumed = read_events(response)
    assert [e.get("id") for e in resumed[:5]] == ids[3:8]
    assert [e["event"] for e in resumed[5:]] == ["job.status", "cost.updated"]


def test_bad_requests_are_problems(client, alice, bob, finished):
    url = f"/v1/jobs/{finished.job_id}/events"
    assert_problem(client.get(url, headers=bob.headers), 404)
    assert_problem(client.get(url), 401)
    assert_problem(client.get(url, headers={**alice.headers, "Last-Event-ID": "nope"}), 400)
    assert_problem(client.get("/v1/jobs/not-a-uuid/events", headers=alice.headers), 422)


def test_a_running_job_streams_changes_as_they_are_committed(pg_engine, settings):
    """The loop's writes, made from another thread while a client follows the job."""
    settings = settings.model_copy(update={"events_poll_s": 0.05})
    database = Database(settings, engine=pg_engine)
    try:
        tenant = make_tenant(database, f"live-{uuid.uuid4().hex[:6]}")
        with database.session() as session:
            seeded = seed_job(session, tenant.tenant_id, T0, [(512, [1000])], status="running")
            commit(session)
        seen: list[dict] = []
        arrived = threading.Event()

        def follow(client) -> None:
            with client.stream(
                "GET", f"/v1/jobs/{seeded.job_id}/events", headers=tenant.headers
            ) as response:
                for event in _iter(response):
                    seen.append(event)
                    if event["event"] == "cost.updated":
                        arrived.set()

        with TestClient(create_app(settings, database)) as client:
            reader = threading.Thread(target=follow, args=(client,))
            reader.start()
            assert arrived.wait(30), seen  # the initial snapshot
            assert seen[-2]["data"]["status"] == "running"
            before = len(seen)
            with database.session() as session:  # the loop: a new round, then the end
                job = session.get(Job, seeded.job_id)
                session.add(
                    Stage(
                        job_id=job.id,
                        position=1,
                        name="round-1",
                        kind="round",
                        status="succeeded",
                        started_at=T0 + timedelta(seconds=61),
                        finished_at=T0 + timedelta(seconds=62),
                    )
                )
                job.status = "succeeded"
                job.finished_at = T0 + timedelta(seconds=63)
                commit(session)
            reader.join(30)
            assert not reader.is_alive(), "the stream did not end with the job"
        later = [e["event"] for e in seen[before:]]
        assert later == ["stage.started", "stage.finished", "job.succeeded", "job.status"]
        assert seen[-1]["data"]["status"] == "succeeded"
    finally:
        truncate_all(pg_engine)


def _iter(response):
    current = {}
    for line in response.iter_lines():
        if line == "":
            if "event" in current:
                yield current
            current = {}
        elif not line.startswith((":", "retry:")):
            name, _, value = line.partition(": ")
            current[name] = json.loads(value) if name == "data" else value
