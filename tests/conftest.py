"""Shared fixtures: a real Postgres migrated with Alembic, one rolled-back transaction per test.

Tests that need several real connections (concurrency) use ``pg_engine`` directly and clean up
with ``truncate_all``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from service.api.app import create_app
from service.database import Database, make_engine
from service.migrate import upgrade
from service.models import Base
from service.settings import Settings
from service.tenants.service import TenantService
from tests import postgres

TEST_DB = f"cescale_test_{os.getpid()}"


def pytest_configure(config: pytest.Config) -> None:
    problem = postgres.ensure_running()
    if problem:
        pytest.exit(f"cannot run the tests: {problem}", returncode=3)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    postgres.recreate_database(TEST_DB)
    url = postgres.url(TEST_DB)
    upgrade(url)  # the schema comes from the migrations, as in production
    yield url
    postgres.drop_database(TEST_DB)


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(pg_url: str, tmp_path) -> Settings:
    return Settings(database_url=pg_url, state_dir=tmp_path / ".cescale", controller_enabled=False)


@pytest.fixture
def database(pg_engine: Engine, settings: Settings) -> Iterator[Database]:
    """A Database whose sessions all join one outer transaction, rolled back after the test."""
    connection = pg_engine.connect()
    outer = connection.begin()
    db = Database(settings, engine=pg_engine)
    db.sessionmaker = sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    yield db
    outer.rollback()
    connection.close()


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    with database.session() as session:
        yield session


@pytest.fixture
def client(database: Database, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, database)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


class TenantKey:
    def __init__(self, tenant_id: uuid.UUID, name: str, api_key: str) -> None:
        self.tenant_id = tenant_id
        self.name = name
        self.api_key = api_key

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def make_tenant(database: Database, name: str) -> TenantKey:
    from service.database import commit

    with database.session() as session:
        issued = TenantService(session).create(name)
        commit(session)
        return TenantKey(issued.tenant.id, name, issued.api_key)


@pytest.fixture
def alice(database: Database) -> TenantKey:
    return make_tenant(database, "alice")


@pytest.fixture
def bob(database: Database) -> TenantKey:
    return make_tenant(database, "bob")


def truncate_all(engine: Engine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in reversed(Base.metadata.sorted_tables))
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} CASCADE"))
