"""Liveness and readiness."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.api.app import create_app
from service.database import Database
from service.migrate import head_revision
from service.settings import Settings
from tests.api.helpers import assert_problem


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_when_migrated(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "migration": head_revision()}


def test_readyz_is_503_before_migrations(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}", controller_enabled=False)
    with TestClient(create_app(settings, Database(settings))) as client:
        body = assert_problem(client.get("/readyz"), 503)
    assert "cescale db upgrade" in body["detail"]


def test_readyz_is_503_when_database_unreachable():
    settings = Settings(
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none", controller_enabled=False
    )
    with TestClient(create_app(settings, Database(settings))) as client:
        assert_problem(client.get("/readyz"), 503)
        assert client.get("/healthz").status_code == 200
