"""The schema comes only from Alembic: it round-trips, and it matches the models."""

from __future__ import annotations

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from service.database import make_engine
from service.migrate import current_revision, downgrade, head_revision, upgrade
from service.models import Base
from tests import postgres

TABLES = {
    "tenants",
    "api_keys",
    "jobs",
    "stages",
    "tasks",
    "invocations",
    "allocations",
    "observations",
    "idempotency_keys",
    "predictor_states",
    "curve_priors",
    "dashboards",
    "usage_hours",
    "webhooks",
    "webhook_deliveries",
}


@pytest.fixture(params=["postgres", "sqlite"])
def scratch_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    name = f"cescale_scratch_{os.getpid()}"
    postgres.recreate_database(name)
    yield postgres.url(name)
    postgres.drop_database(name)


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(scratch_url):
    upgrade(scratch_url)
    assert current_revision(scratch_url) == head_revision()
    assert tables(scratch_url) == TABLES
    downgrade(scratch_url, "base")
    assert current_revision(scratch_url) is None
    assert tables(scratch_url) == set()
    upgrade(scratch_url)
    assert tables(scratch_url) == TABLES


def test_models_match_migrations(scratch_url):
    upgrade(scratch_url)
    engine = make_engine(scratch_url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(
                MigrationContext.configure(connection, opts={"compare_type": True}),
                Base.metadata,
            )
    finally:
        engine.dispose()
    assert diff == []


def test_sqlite_enforces_foreign_keys(tmp_path):
    import uuid

    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm import Session

    from service.models import ApiKey

    url = f"sqlite:///{tmp_path / 'fk.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        with Session(engine) as session, pytest.raises(IntegrityError):
            session.add(ApiKey(tenant_id=uuid.uuid4(), display_prefix="x", key_hash="y" * 64))
            session.flush()
    finally:
        engine.dispose()
