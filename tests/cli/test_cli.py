"""The command line: migrations, tenants and the first-run bootstrap."""

from __future__ import annotations

import json
import stat

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.api.app import create_app
from service.cli.main import app
from service.database import Database
from service.migrate import head_revision
from service.settings import Settings, get_settings
from tests.api.helpers import HPO_SPEC

runner = CliRunner()


@pytest.fixture
def env(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("CESCALE_DATABASE_URL", url)
    monkeypatch.setenv("CESCALE_STATE_DIR", str(tmp_path / ".cescale"))
    get_settings.cache_clear()
    yield Settings(database_url=url, state_dir=tmp_path / ".cescale", controller_enabled=False)
    get_settings.cache_clear()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_db_upgrade_then_status(env):
    result = run("db", "upgrade")
    assert result.exit_code == 0, result.output
    status = run("db", "status")
    head = head_revision()
    assert f"current: {head}" in status.output and f"head: {head}" in status.output


def test_tenants_create_json_gives_a_working_key(env):
    run("db", "upgrade")
    result = run("tenants", "create", "acme", "--json")
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert set(created) == {"tenant_id", "name", "api_key"}
    assert created["name"] == "acme" and created["api_key"].startswith("cesk_")

    with TestClient(create_app(env, Database(env))) as client:
        headers = {"Authorization": f"Bearer {created['api_key']}"}
        assert client.post("/v1/jobs", json=HPO_SPEC, headers=headers).status_code == 201


def test_duplicate_and_invalid_tenant_names_fail_cleanly(env):
    run("db", "upgrade")
    assert run("tenants", "create", "acme").exit_code == 0
    again = run("tenants", "create", "acme")
    assert again.exit_code == 2 and "already exists" in again.output
    bad = run("tenants", "create", "has space")
    assert bad.exit_code == 2 and "invalid tenant name" in bad.output


def test_revoked_and_disabled(env):
    run("db", "upgrade")
    key = json.loads(run("tenants", "create", "acme", "--json").output)["api_key"]
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(env, Database(env))) as client:
        assert run("tenants", "disable", "acme").exit_code == 0
        assert client.get("/v1/jobs", headers=headers).status_code == 403
        assert run("tenants", "enable", "acme").exit_code == 0
        assert client.get("/v1/jobs", headers=headers).status_code == 200
        assert "revoked 1 key" in run("tenants", "revoke-keys", "acme").output
        assert client.get("/v1/jobs", headers=headers).status_code == 401
        fresh = json.loads(run("tenants", "issue-key", "acme", "--json").output)["api_key"]
        fresh_headers = {"Authorization": f"Bearer {fresh}"}
        assert client.get("/v1/jobs", headers=fresh_headers).status_code == 200


def test_commands_on_an_unmigrated_database_explain_what_to_do(env):
    result = run("tenants", "list")
    assert result.exit_code == 1
    assert "cescale db upgrade" in result.output


def test_bootstrap_creates_default_tenant_once_and_writes_key_0600(env):
    run("db", "upgrade")
    first = run("bootstrap", "--port", "8123")
    assert first.exit_code == 0, first.output
    key_file = env.api_key_file
    key = key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key in first.output  # shown once ...
    assert "curl -sS -X POST http://127.0.0.1:8123/v1/jobs" in first.output
    assert "examples/hpo-digits.json" in first.output

    second = run("bootstrap")
    assert second.exit_code == 0
    assert key not in second.output  # ... and only once
    assert key_file.read_text().strip() == key
    tenants = json.loads(run("tenants", "list", "--json").output)
    assert [t["name"] for t in tenants] == ["default"]
