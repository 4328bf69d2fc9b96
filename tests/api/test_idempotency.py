"""Idempotency-Key on POST /v1/jobs: retries are safe, conflicts are loud."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.api.app import create_app
from service.database import Database, commit
from service.jobs.idempotency import request_hash
from service.models import IdempotencyKey, Job
from service.models.base import utcnow
from service.spec import JobSpec
from tests.api.helpers import HPO_SPEC, assert_problem, spec
from tests.conftest import make_tenant, truncate_all


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def post(client, tenant, document, key):
    return client.post("/v1/jobs", json=document, headers=tenant.headers | {"Idempotency-Key": key})


def test_same_key_and_body_returns_the_same_job_once(client, alice, session):
    first = post(client, alice, HPO_SPEC, "k-1")
    second = post(client, alice, HPO_SPEC, "k-1")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert count(session, Job) == 1


def test_same_key_with_a_different_body_is_422(client, alice, session):
    assert post(client, alice, HPO_SPEC, "k-2").status_code == 201
    body = assert_problem(post(client, alice, spec(name="other"), "k-2"), 422)
    assert "different request body" in body["detail"]
    assert count(session, Job) == 1


def test_keys_are_per_tenant(client, alice, bob, session):
    a = post(client, alice, HPO_SPEC, "shared")
    b = post(client, bob, HPO_SPEC, "shared")
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]
    assert count(session, Job) == 2


def test_a_key_in_progress_is_409(client, alice, database):
    digest = request_hash(
        JobSpec.model_validate(HPO_SPEC).model_dump(mode="json", exclude_unset=True)
    )
    with database.session() as session:
        session.add(IdempotencyKey(tenant_id=alice.tenant_id, key="busy", request_hash=digest))
        commit(session)
    body = assert_problem(post(client, alice, HPO_SPEC, "busy"), 409)
    assert "in progress" in body["detail"]


def test_an_abandoned_claim_is_taken_over(client, alice, database, session):
    digest = request_hash(
        JobSpec.model_validate(HPO_SPEC).model_dump(mode="json", exclude_unset=True)
    )
    with database.session() as s:
        s.add(
            IdempotencyKey(
                tenant_id=alice.tenant_id,
                key="stale",
                request_hash=digest,
                locked_at=utcnow() - timedelta(minutes=10),
            )
        )
        commit(s)
    response = post(client, alice, HPO_SPEC, "stale")
    assert response.status_code == 201, response.text
    assert count(session, Job) == 1


def test_invalid_key_is_400(client, alice, session):
    assert_problem(post(client, alice, HPO_SPEC, "x" * 300), 400)
    assert count(session, Job) == 0


def test_invalid_body_with_a_key_claims_nothing(client, alice, session):
    assert_problem(post(client, alice, spec(hpo__eta=1), "k-3"), 422)
    assert count(session, IdempotencyKey) == 0
    assert post(client, alice, HPO_SPEC, "k-3").status_code == 201


def test_failed_creation_releases_the_claim(client, alice, session, monkeypatch):
    from service.jobs import service as job_service

    def broken(*_args, **_kwargs):
        raise RuntimeError("storage fell over")

    monkeypatch.setattr(job_service.JobService, "_create", broken)
    assert_problem(post(client, alice, HPO_SPEC, "k-4"), 500)
    monkeypatch.undo()
    assert count(session, IdempotencyKey) == 0
    assert post(client, alice, HPO_SPEC, "k-4").status_code == 201
    assert count(session, Job) == 1


@pytest.fixture
def live_client(pg_engine, settings):
    """An app on real, separate connections (no shared test transaction)."""
    database = Database(settings, engine=pg_engine)
    with TestClient(create_app(settings, database), raise_server_exceptions=False) as client:
        yield client, database
    truncate_all(pg_engine)


def test_concurrent_duplicates_create_exactly_one_job(live_client):
    client, database = live_client
    tenant = make_tenant(database, "racer")
    barrier = threading.Barrier(8)
    statuses: list[int] = []
    ids: set[str] = set()
    lock = threading.Lock()

    def submit():
        barrier.wait()
        response = post(client, tenant, HPO_SPEC, "race-1")
        with lock:
            statuses.append(response.status_code)
            if response.status_code == 201:
                ids.add(response.json()["id"])

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert set(statuses) <= {201, 409}, statuses
    assert 201 in statuses
    assert len(ids) == 1
    with database.session() as session:
        assert count(session, Job) == 1
    # Once the first request finished, a retry replays it.
    replay = post(client, tenant, HPO_SPEC, "race-1")
    assert replay.status_code == 201 and replay.json()["id"] in ids
