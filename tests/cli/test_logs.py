"""The logging configuration every cescale process gets from the CLI entry point."""

from __future__ import annotations

import json
import logging
import re

import pytest

from service import logs


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_text_lines_carry_utc_time_level_and_logger_for_ours_and_uvicorns(restore_logging, capsys):
    logs.configure("info", "text")
    logging.getLogger("service.control.service").info("job %s succeeded", "abc")
    logging.getLogger("uvicorn.access").info("left to the service's own access log")
    logging.getLogger("service.api.requests").info("GET / 200 1.0ms request_id=abc")
    logging.getLogger("service.x").debug("below the level")
    logging.getLogger("apscheduler.scheduler").warning("skipped: maximum number of instances")
    logging.getLogger("httpx").info("HTTP Request: GET ...")
    lines = capsys.readouterr().err.splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert re.fullmatch(stamp + r" INFO    service\.control\.service: job abc succeeded", lines[0])
    assert re.fullmatch(
        stamp + r" INFO    service\.api\.requests: GET / 200 1\.0ms request_id=abc", lines[1]
    )
    assert len(lines) == 2  # debug below the level; APScheduler and httpx chatter quieted


def test_json_lines_and_level_changes_keep_the_format(restore_logging, capsys):
    logs.configure("warning", "json")
    assert logs.configure("debug") == "debug"  # `serve --log-level debug` after the callback
    logging.getLogger("service.x").debug("now visible", extra={"job_id": "j1"})
    (line,) = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert record["level"] == "DEBUG" and record["logger"] == "service.x"
    assert record["message"] == "now visible" and record["job_id"] == "j1"
    assert record["time"].endswith("+00:00")


def test_bad_log_settings_are_a_clear_error(monkeypatch):
    from typer.testing import CliRunner

    from service.cli.main import app
    from service.settings import get_settings

    monkeypatch.setenv("CESCALE_LOG_FORMAT", "xml")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["db", "status"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "CESCALE_LOG_FORMAT" in result.output
