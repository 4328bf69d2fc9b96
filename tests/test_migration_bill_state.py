"""Migration 0003 (invocations.bill_state) on both databases: existing rows get a bill state,
ambiguous ones are billed their request and wait for reconciliation; it downgrades and
upgrades again without losing a row."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import text

from service.database import make_engine
from service.migrate import current_revision, downgrade, upgrade
from tests import postgres


@pytest.fixture(params=["postgres", "sqlite"])
def scratch_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    name = f"cescale_scratch_bill_{os.getpid()}"
    postgres.recreate_database(name)
    yield postgres.url(name)
    postgres.drop_database(name)


def _seed(url: str) -> dict[str, str]:
    """A job with one done and one ambiguous invocation, written at revision 0002."""
    ids = {k: uuid.uuid4().hex for k in ("tenant", "job", "stage", "task", "done", "ambiguous")}
    engine = make_engine(url)
    try:
        with engine.begin() as c:
            now = "2026-12-01 00:00:00+00:00"
            c.execute(
                text("INSERT INTO tenants (id, name, created_at) VALUES (:id, 't', :now)"),
                {"id": ids["tenant"], "now": now},
            )
            c.execute(
                text(
                    "INSERT INTO jobs (id, tenant_id, name, kind, status, policy, spec, "
                    "deadline_s, created_at, updated_at, version) VALUES (:id, :tenant, 'j', "
                    "'hpo', 'running', 'static', '{}', 60, :now, :now, 1)"
                ),
                {"id": ids["job"], "tenant": ids["tenant"], "now": now},
            )
            c.execute(
                text(
                    "INSERT INTO stages (id, job_id, position, name, kind, status, created_at) "
                    "VALUES (:id, :job, 0, 'rung-0', 'rung', 'running', :now)"
                ),
                {"id": ids["stage"], "job": ids["job"], "now": now},
            )
            c.execute(
                text(
                    "INSERT INTO tasks (id, job_id, stage_id, key, shape, status, params, "
                    "attempts, function_name, created_at, updated_at) VALUES (:id, :job, "
                    ":stage, 'trial-0', 'default', 'running', '{}', 2, 'f', :now, :now)"
                ),
                {"id": ids["task"], "job": ids["job"], "stage": ids["stage"], "now": now},
            )
            for attempt, (key, state, compute) in enumerate(
                [("ambiguous", "ambiguous", None), ("done", "done", 8_000_000)], start=1
            ):
                c.execute(
                    text(
                        "INSERT INTO invocations (id, job_id, stage_id, task_id, attempt, "
                        "function_name, memory_mb, architecture, state, compute_cost_usd, "
                        "request_cost_usd, created_at) VALUES (:id, :job, :stage, :task, "
                        ":attempt, 'f', 512, 'x86_64', :state, :compute, :request, :now)"
                    ),
                    {
                        "id": ids[key],
                        "job": ids["job"],
                        "stage": ids["stage"],
                        "task": ids["task"],
                        "attempt": attempt,
                        "state": state,
                        "compute": compute,
                        "request": None if compute is None else 200_000,
                        "now": now,
                    },
                )
    finally:
        engine.dispose()
    return ids


def _bills(url: str) -> dict[str, tuple]:
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            rows = c.execute(
                text(
                    "SELECT state, bill_state, compute_cost_usd, request_cost_usd FROM invocations"
                )
            )
            return {row[0]: tuple(row[1:]) for row in rows}
    finally:
        engine.dispose()


def test_existing_rows_get_their_bill_state_and_the_migration_round_trips(scratch_url):
    upgrade(scratch_url, "0002")
    _seed(scratch_url)
    upgrade(scratch_url, "0003")
    assert current_revision(scratch_url) == "0003"
    assert _bills(scratch_url) == {
        "done": ("final", 8_000_000, 200_000),
        "ambiguous": ("pending", 0, 200_000),  # its request is counted, its duration to come
    }
    downgrade(scratch_url, "0002")
    assert current_revision(scratch_url) == "0002"
    engine = make_engine(scratch_url)
    try:
        with engine.connect() as c:
            count = c.execute(text("SELECT count(*) FROM invocations")).scalar_one()
            costs = dict(c.execute(text("SELECT state, compute_cost_usd FROM invocations")).all())
    finally:
        engine.dispose()
    assert count == 2 and costs == {"done": 8_000_000, "ambiguous": None}
    upgrade(scratch_url)
    assert _bills(scratch_url)["ambiguous"] == ("pending", 0, 200_000)
