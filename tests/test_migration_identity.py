"""Migration 0005 (stages.round, tasks.worker) on both databases: rows written before it get
the round and worker numbers that used to be parsed out of their names; it downgrades and
upgrades again."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import text

from service.database import make_engine
from service.migrate import current_revision, downgrade, upgrade
from tests import postgres

NOW = "2026-12-01 00:00:00+00:00"
# (stage name, kind) -> task keys, as the workflows named them before 0005
STAGES = {
    ("power-tuning", "profiling"): ["profile-128-0", "profile-1769-0"],
    ("round-0", "round"): ["worker-000", "worker-001"],
    ("round-12", "round"): ["worker-000", "worker-017"],
    ("rung-0", "rung"): ["trial-0000"],
    ("b1-rung-2", "rung"): ["trial-0042"],
}


@pytest.fixture(params=["postgres", "sqlite"])
def scratch_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    name = f"cescale_scratch_identity_{os.getpid()}"
    postgres.recreate_database(name)
    yield postgres.url(name)
    postgres.drop_database(name)


def _seed(url: str) -> None:
    engine = make_engine(url)
    tenant, job = uuid.uuid4().hex, uuid.uuid4().hex
    try:
        with engine.begin() as c:
            c.execute(
                text("INSERT INTO tenants (id, name, created_at) VALUES (:id, 't', :now)"),
                {"id": tenant, "now": NOW},
            )
            c.execute(
                text(
                    "INSERT INTO jobs (id, tenant_id, name, kind, status, policy, spec, "
                    "deadline_s, created_at, updated_at, version) VALUES (:id, :tenant, 'j', "
                    "'training', 'running', 'static', '{}', 60, :now, :now, 1)"
                ),
                {"id": job, "tenant": tenant, "now": NOW},
            )
            for position, ((name, kind), keys) in enumerate(STAGES.items()):
                stage = uuid.uuid4().hex
                c.execute(
                    text(
                        "INSERT INTO stages (id, job_id, position, name, kind, status, "
                        "created_at) VALUES (:id, :job, :position, :name, :kind, 'running', :now)"
                    ),
                    {
                        "id": stage,
                        "job": job,
                        "position": position,
                        "name": name,
                        "kind": kind,
                        "now": NOW,
                    },
                )
                for key in keys:
                    c.execute(
                        text(
                            "INSERT INTO tasks (id, job_id, stage_id, key, shape, status, params, "
                            "attempts, function_name, created_at, updated_at) VALUES (:id, :job, "
                            ":stage, :key, 'worker', 'pending', '{}', 0, 'f', :now, :now)"
                        ),
                        {"id": uuid.uuid4().hex, "job": job, "stage": stage, "key": key}
                        | {"now": NOW},
                    )
    finally:
        engine.dispose()


def _identity(url: str) -> tuple[dict, dict]:
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            rounds = dict(c.execute(text("SELECT name, round FROM stages")).all())
            workers = {
                (stage, key): worker
                for stage, key, worker in c.execute(
                    text(
                        "SELECT stages.name, tasks.key, tasks.worker FROM tasks "
                        "JOIN stages ON stages.id = tasks.stage_id"
                    )
                )
            }
            return rounds, workers
    finally:
        engine.dispose()


def test_backfill_gives_old_rows_their_round_and_worker(scratch_url):
    upgrade(scratch_url, "0004")
    _seed(scratch_url)
    upgrade(scratch_url, "0005")
    assert current_revision(scratch_url) == "0005"
    rounds, workers = _identity(scratch_url)
    assert rounds == {
        "power-tuning": None,
        "round-0": 0,
        "round-12": 12,
        "rung-0": 0,
        "b1-rung-2": 2,
    }
    assert workers == {
        ("power-tuning", "profile-128-0"): None,
        ("power-tuning", "profile-1769-0"): None,
        ("round-0", "worker-000"): 0,
        ("round-0", "worker-001"): 1,
        ("round-12", "worker-000"): 0,
        ("round-12", "worker-017"): 17,
        ("rung-0", "trial-0000"): None,
        ("b1-rung-2", "trial-0042"): None,
    }
    downgrade(scratch_url, "0004")
    assert current_revision(scratch_url) == "0004"
    upgrade(scratch_url)
    assert _identity(scratch_url)[0]["round-12"] == 12
