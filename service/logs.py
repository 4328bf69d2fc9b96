"""Logging for the processes `cescale` starts: one format for the service's own lines and
uvicorn's, with time (UTC), level and logger; JSON lines with ``CESCALE_LOG_FORMAT=json``.

The CLI entry point configures it once (``--log-level``/``CESCALE_LOG_LEVEL``,
``--log-format``/``CESCALE_LOG_FORMAT``); ``serve`` hands uvicorn no logging config of its own,
so uvicorn's loggers propagate to the same root handler.
"""

from __future__ import annotations

import logging
import logging.config
import time
from typing import Any, Literal

LogFormat = Literal["text", "json"]
LEVELS = ("critical", "error", "warning", "info", "debug")

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# In JSON, a line logged while a request is handled has its ``request_id`` field.
# Libraries whose INFO lines are chatter (per request, or alembic's on every in-memory database
# a simulation migrates); they speak up from WARNING on.
QUIET = ("alembic", "botocore", "boto3", "urllib3", "s3transfer", "httpx", "httpcore", "matplotlib")
# APScheduler warns on every skipped overlapping tick; the loop reports its own overruns.
SILENT = ("apscheduler",)


class UtcFormatter(logging.Formatter):
    """ISO 8601 UTC timestamps with milliseconds: 2026-12-03T09:40:45.960Z."""

    converter = time.gmtime

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


def logging_config(level: str = "info", fmt: LogFormat = "text") -> dict[str, Any]:
    """The dictConfig of a cescale process."""
    name = level.upper()
    if fmt == "json":
        formatter: dict[str, Any] = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",
        }
    else:
        formatter = {"()": UtcFormatter, "fmt": TEXT_FORMAT}
    loggers: dict[str, Any] = {
        # uvicorn's loggers: no handlers of their own, so one line per event, in our format
        **{
            logger: {"level": name, "handlers": [], "propagate": True}
            for logger in ("uvicorn", "uvicorn.error", "uvicorn.asgi")
        },
        # the service's own access log (service.api.requests) carries the request id instead
        "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
        **{logger: {"level": max(name, "WARNING", key=_rank)} for logger in QUIET},
        **{logger: {"level": max(name, "ERROR", key=_rank)} for logger in SILENT},
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "filters": {"request_id": {"()": "service.api.request_id.RequestIdFilter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": name, "handlers": ["stderr"]},
        "loggers": loggers,
    }


_current: dict[str, Any] = {"level": "info", "fmt": "text"}


def configure(level: str | None = None, fmt: LogFormat | None = None) -> str:
    """(Re)configure logging; what is not given stays as last configured. Returns the level."""
    _current["level"] = (level or _current["level"]).lower()
    _current["fmt"] = fmt or _current["fmt"]
    logging.config.dictConfig(logging_config(_current["level"], _current["fmt"]))
    logging.captureWarnings(True)
    return _current["level"]


def _rank(level: str) -> int:
    return logging.getLevelNamesMapping()[level]
