"""Reading a synchronous Invoke response: what happened, and how it ended. Pure functions.

Lambda answers a failed run with HTTP 200 and `X-Amz-Function-Error` (`FunctionError`):
"Handled" or "Unhandled". Timeouts and out-of-memory kills are both "Unhandled" and must be
told apart from ordinary exceptions, because they mean different things to the controller
(docs/safety.md: raise memory after OOM, never after a timeout). The signs, strongest first:

- OOM: error type `Runtime.OutOfMemory` (payload or REPORT `Error Type`), or the log line
  "Error: Runtime exited with error: signal: killed";
- timeout: error type `Sandbox.Timedout`, REPORT `Status: timeout`, or "Task timed out after";
- OOM, weaker: an unhandled error whose REPORT shows Max Memory Used equal to Memory Size.
"""

from __future__ import annotations

import json
from typing import Any

from service.platform.interface import ErrorKind, Report

OOM_MARKERS = ("Runtime.OutOfMemory", "signal: killed")
TIMEOUT_MARKERS = ("Task timed out after", "Sandbox.Timedout")


def decode_payload(raw: bytes | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return raw.decode("utf-8", errors="replace")


def error_details(payload: Any) -> tuple[str | None, str | None]:
    """(errorType, errorMessage) of Lambda's error payload, if it is one."""
    if isinstance(payload, dict):
        error_type = payload.get("errorType")
        message = payload.get("errorMessage")
        return (
            str(error_type) if error_type is not None else None,
            str(message) if message is not None else None,
        )
    return None, None


def classify(
    function_error: str | None, payload: Any, log_text: str, report: Report | None
) -> ErrorKind:
    if not function_error:
        return ErrorKind.NONE
    error_type, message = error_details(payload)
    evidence = " ".join(
        part
        for part in (log_text, error_type, message, report.error_type if report else None)
        if part
    )
    if any(marker in evidence for marker in OOM_MARKERS):
        return ErrorKind.OUT_OF_MEMORY
    if any(marker in evidence for marker in TIMEOUT_MARKERS) or (
        report is not None and report.status == "timeout"
    ):
        return ErrorKind.TIMEOUT
    if report is not None and report.max_memory_used_mb >= report.memory_mb:
        return ErrorKind.OUT_OF_MEMORY
    if function_error == "Handled":
        return ErrorKind.HANDLED
    return ErrorKind.UNHANDLED
