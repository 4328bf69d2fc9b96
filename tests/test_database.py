"""The commit guard, and the exact money type."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select, type_coerce

from service.database import StrayCommitError, commit
from service.models import Invocation, Job, Stage, Task, Tenant
from service.models.base import Money


def test_a_stray_commit_raises(session):
    session.add(Tenant(name="sneaky"))
    with pytest.raises(StrayCommitError):
        session.commit()


def test_the_planned_commit_goes_through(session):
    session.add(Tenant(name="planned"))
    commit(session)
    assert session.scalar(select(Tenant.name).where(Tenant.name == "planned")) == "planned"


def test_money_round_trips_picodollars():
    money = Money()
    for value in ["0.000000002083", "123.456789012345", "0"]:
        stored = money.process_bind_param(Decimal(value), None)
        assert isinstance(stored, int)
        assert money.process_result_value(stored, None) == Decimal(value)


def test_a_thousand_tiny_bills_sum_exactly(session):
    tenant = Tenant(name="ledger")
    session.add(tenant)
    session.flush()
    job = Job(tenant_id=tenant.id, name="j", kind="hpo", policy="static", spec={}, deadline_s=1)
    session.add(job)
    session.flush()
    stage = Stage(job_id=job.id, position=0, name="s", kind="rung")
    session.add(stage)
    session.flush()
    task = Task(job_id=job.id, stage_id=stage.id, key="t", function_name="f")
    session.add(task)
    session.flush()
    bill = Decimal("0.000000002083375")  # 128 MB for 1 ms, in picodollars is not an integer
    rounded = Decimal("0.000000002083")
    session.add_all(
        Invocation(
            job_id=job.id,
            stage_id=stage.id,
            task_id=task.id,
            attempt=i,
            function_name="f",
            memory_mb=128,
            state="done",
            compute_cost_usd=bill,
        )
        for i in range(1000)
    )
    session.flush()
    total = session.scalar(
        select(type_coerce(func.sum(Invocation.compute_cost_usd), Money)).where(
            Invocation.job_id == job.id
        )
    )
    assert total == rounded * 1000


def test_no_statement_of_the_service_runs_past_its_timeout(pg_url):
    # The service's Database bounds every Postgres statement and lock wait, so a database call
    # cannot block a loop tick or a request without end.
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from service.database import Database
    from service.settings import Settings

    settings = Settings(database_url=pg_url, db_statement_timeout_s=0.2, controller_enabled=False)
    database = Database(settings)
    try:
        with database.session() as session:
            assert session.scalar(text("SHOW statement_timeout")) == "200ms"
            assert session.scalar(text("SHOW lock_timeout")) == "200ms"
            with pytest.raises(OperationalError, match="statement timeout"):
                session.execute(text("SELECT pg_sleep(30)"))
    finally:
        database.dispose()
