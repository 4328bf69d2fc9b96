"""Settings of the AWS backend: the store Lambda must reach, the concurrency fallback."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from service.cli.main import app
from service.settings import Settings, get_settings


def test_the_aws_backend_refuses_a_file_store_naming_the_fix(tmp_path) -> None:
    with pytest.raises(ValidationError, match=r"CESCALE_STORE_URL=s3://bucket/prefix"):
        Settings(backend="aws", state_dir=tmp_path)  # default store: file://<state_dir>/store
    with pytest.raises(ValidationError, match=r"CESCALE_STORE_URL=s3://bucket/prefix"):
        Settings(backend="aws", store_url="file:///tmp/store")
    assert Settings(backend="aws", store_url="s3://b/p/").resolved_store_url == "s3://b/p"
    assert Settings(backend="emulator", store_url="file:///tmp/s").store_url  # fine there


def test_every_command_stops_with_one_line_instead_of_a_traceback(monkeypatch) -> None:
    monkeypatch.setenv("CESCALE_BACKEND", "aws")
    monkeypatch.delenv("CESCALE_STORE_URL", raising=False)
    get_settings.cache_clear()
    try:
        for command in (["controller"], ["serve"], ["deploy"]):
            result = CliRunner().invoke(app, command)
            assert result.exit_code == 2
            lines = result.output.strip().splitlines()
            assert len(lines) == 1, result.output
            assert lines[0].startswith("error: CESCALE_BACKEND=aws needs a checkpoint store")
            assert "CESCALE_STORE_URL=s3://bucket/prefix" in lines[0]
            assert "Traceback" not in result.output
    finally:
        get_settings.cache_clear()


def test_the_concurrency_fallback_and_role_are_settings(monkeypatch) -> None:
    monkeypatch.setenv("CESCALE_AWS_CONCURRENCY_LIMIT", "40")
    monkeypatch.setenv("CESCALE_AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/cescale")
    settings = Settings()
    assert settings.aws_concurrency_limit == 40
    assert settings.aws_role_arn == "arn:aws:iam::123456789012:role/cescale"
    assert Settings(aws_concurrency_limit=1000).aws_concurrency_limit == 1000
    with pytest.raises(ValidationError):
        Settings(aws_concurrency_limit=0)
