"""The hourly usage rollup is kept by database triggers: it always equals the ledger, through
inserts, intents that get their bill later, and rewritten bills — on Postgres and SQLite — and
/v1/usage gives the same figures from it as from the ledger."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from service.database import Database, commit
from service.migrate import upgrade
from service.models import Invocation, Tenant, UsageHour
from service.settings import Settings
from service.usage.service import UsageService
from tests.api.ledger_seed import seed_job

T0 = datetime(2026, 11, 30, 9, 50, tzinfo=UTC)  # stages cross the 10:00 hour


def ledger_and_rollup(session) -> tuple[tuple, tuple]:
    billed = Invocation.compute_cost_usd.is_not(None) & Invocation.finished_at.is_not(None)
    ledger = session.execute(
        select(
            func.sum(Invocation.compute_cost_usd),
            func.sum(Invocation.request_cost_usd),
            func.sum(Invocation.memory_mb * Invocation.billed_ms),
            func.count(Invocation.id),
        ).where(billed)
    ).one()
    rollup = session.execute(
        select(
            func.sum(UsageHour.compute_usd),
            func.sum(UsageHour.request_usd),
            func.sum(UsageHour.mb_ms),
            func.sum(UsageHour.invocations),
        )
    ).one()
    return tuple(int(v or 0) for v in ledger), tuple(int(v or 0) for v in rollup)


def exercise(database: Database, tenant_id: uuid.UUID) -> None:
    with database.session() as session:
        seeded = seed_job(
            session, tenant_id, T0, [(512, [2000] * 3)] * 12 + [(1024, [900, 950])] * 4
        )
        commit(session)
        ledger, rollup = ledger_and_rollup(session)
        assert ledger == rollup and rollup[3] == 44
        # an intent (no bill) then its result; then a bill rewritten to another size and hour
        invocation = session.scalars(
            select(Invocation).where(Invocation.job_id == seeded.job_id).limit(1)
        ).one()
        intent = Invocation(
            job_id=seeded.job_id,
            stage_id=invocation.stage_id,
            task_id=invocation.task_id,
            attempt=2,
            function_name="cescale-mlp",
            memory_mb=2048,
            state="intent",
        )
        session.add(intent)
        commit(session)
        assert ledger_and_rollup(session)[1][3] == 44
        intent.state = "done"
        intent.billed_ms = 700
        intent.compute_cost_usd = Decimal("0.000023333380")
        intent.request_cost_usd = Decimal("0.0000002")
        intent.finished_at = T0 + timedelta(minutes=5)
        commit(session)
        invocation.memory_mb = 1536
        invocation.finished_at = invocation.finished_at + timedelta(hours=3)
        invocation.max_memory_used_mb = 99  # not a billed column
        commit(session)
        ledger, rollup = ledger_and_rollup(session)
        assert ledger == rollup and rollup[3] == 45


def totals(usage) -> tuple:
    return (
        sum(p.compute_usd for p in usage.points),
        sum(p.requests_usd for p in usage.points),
        sum(p.mb_ms for p in usage.points),
        sum(p.invocations for p in usage.points),
        sum(p.static_compute_usd for p in usage.points).quantize(Decimal("1e-9")),
    )


def compare_paths(database: Database, tenant_id: uuid.UUID) -> None:
    with database.session() as session:
        tenant = session.get(Tenant, tenant_id)
        service = UsageService(session)
        kwargs = {"group_by": "policy", "cursor": None, "limit": 1000}
        start, end = T0 - timedelta(minutes=7), T0 + timedelta(hours=5, minutes=13)
        # 1 h steps: whole hours from the rollup, the ragged edges from the ledger
        hourly = service.usage(tenant, start=start, end=end, step="1h", **kwargs)
        # 20 min steps cannot use the rollup: all from the ledger
        raw = service.usage(tenant, start=start, end=end, step="20m", **kwargs)
        assert totals(hourly) == totals(raw)
        assert totals(hourly)[3] == 45
        for hour in hourly.points:
            inside = [p for p in raw.points if hour.at <= p.at < hour.at + timedelta(hours=1)]
            assert hour.invocations == sum(p.invocations for p in inside)


def test_rollup_equals_the_ledger_on_postgres(database, alice):
    exercise(database, alice.tenant_id)
    compare_paths(database, alice.tenant_id)


def test_rollup_equals_the_ledger_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'rollup.db'}"
    upgrade(url)
    database = Database(Settings(database_url=url, state_dir=tmp_path, controller_enabled=False))
    try:
        with database.session() as session:
            tenant = Tenant(name="lite")
            session.add(tenant)
            commit(session)
            tenant_id = tenant.id
        exercise(database, tenant_id)
        compare_paths(database, tenant_id)
    finally:
        database.dispose()


@pytest.mark.parametrize("dialect", ["postgres", "sqlite"])
def test_migration_backfills_the_rollup(dialect, tmp_path, pg_url):
    """Invocations billed before migration 0004 are in the rollup after it."""
    from service.migrate import downgrade
    from tests import postgres

    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'backfill.db'}"
    else:
        name = f"cescale_backfill_{uuid.uuid4().hex[:8]}"
        postgres.recreate_database(name)
        url = postgres.url(name)
    upgrade(url)
    database = Database(Settings(database_url=url, state_dir=tmp_path, controller_enabled=False))
    try:
        with database.session() as session:
            tenant = Tenant(name="old")
            session.add(tenant)
            commit(session)
            tenant_id = tenant.id
            # written at the head schema (the ORM knows only that one), then taken back to the
            # 0003 schema, which drops usage_hours and keeps the ledger: the invocations are
            # then ones billed before 0004
            seed_job(session, tenant_id, T0, [(512, [1000, 1100]), (1024, [500])])
            commit(session)
        database.dispose()
        downgrade(url, "0003")
        upgrade(url)
        with database.session() as session:
            ledger, rollup = ledger_and_rollup(session)
            assert ledger == rollup and rollup[3] == 3
    finally:
        database.dispose()
        if dialect == "postgres":
            postgres.drop_database(url.rsplit("/", 1)[1])
