"""Lambda's REPORT record: building it, and reading it back from either log format.

Text format (the default), one line per invocation, tab separated::

    REPORT RequestId: 3f5c…  Duration: 395.99 ms  Billed Duration: 396 ms  Memory Size: 512 MB
    Max Memory Used: 301 MB  Init Duration: 265.72 ms

(`Init Duration` only on a cold start; newer runtimes append ``Status: timeout`` or
``Status: error  Error Type: Runtime.OutOfMemory`` on failed invocations.)

JSON format (function `LoggingConfig.LogFormat = JSON`), one object per line::

    {"time": "…", "type": "platform.report",
     "record": {"requestId": "…", "status": "success",
                "metrics": {"durationMs": 395.99, "billedDurationMs": 396, "memorySizeMB": 512,
                            "maxMemoryUsedMB": 301, "initDurationMs": 265.72}}}

Source: AWS Lambda developer guide, "Monitoring and troubleshooting" / "Telemetry API schema
reference" (platform.report), and docs/platform.md.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re

from service.platform.interface import Report

_TEXT = re.compile(
    r"REPORT\s+RequestId:\s*(?P<request_id>\S+)"
    r"\s+Duration:\s*(?P<duration>[\d.]+)\s*ms"
    r"\s+Billed Duration:\s*(?P<billed>[\d.]+)\s*ms"
    r"\s+Memory Size:\s*(?P<memory>\d+)\s*MB"
    r"\s+Max Memory Used:\s*(?P<used>\d+)\s*MB"
    r"(?:\s+Init Duration:\s*(?P<init>[\d.]+)\s*ms)?"
    r"(?:.*?Status:\s*(?P<status>\w+))?"
    r"(?:.*?Error Type:\s*(?P<error_type>[\w.]+))?"
)


def billed_ms(duration_ms: float, init_ms: float | None = None) -> int:
    """Billed duration: duration plus init, rounded up to the next 1 ms (docs/platform.md).

    The rounding is done on a value rounded to 1 µs first, so that float noise such as
    100.00000000001 does not bill an extra millisecond.
    """
    total = duration_ms + (init_ms or 0.0)
    return max(1, math.ceil(round(total, 3)))


def format_text(report: Report) -> str:
    """The text REPORT line as Lambda writes it (used by the emulator's log)."""
    parts = [
        f"REPORT RequestId: {report.request_id}",
        f"Duration: {report.duration_ms:.2f} ms",
        f"Billed Duration: {report.billed_ms} ms",
        f"Memory Size: {report.memory_mb} MB",
        f"Max Memory Used: {report.max_memory_used_mb} MB",
    ]
    if report.init_ms is not None:
        parts.append(f"Init Duration: {report.init_ms:.2f} ms")
    if report.status is not None:
        parts.append(f"Status: {report.status}")
    if report.error_type is not None:
        parts.append(f"Error Type: {report.error_type}")
    return "\t".join(parts) + "\t"


def parse_line(line: str) -> Report | None:
    """A REPORT record from one log line in either format, or None if the line holds none."""
    stripped = line.strip()
    if stripped.startswith("{"):
        return _parse_json(stripped)
    match = _TEXT.search(stripped)
    if match is None:
        return None
    init = match.group("init")
    return Report(
        request_id=match.group("request_id"),
        duration_ms=float(match.group("duration")),
        billed_ms=int(float(match.group("billed"))),
        memory_mb=int(match.group("memory")),
        max_memory_used_mb=int(match.group("used")),
        init_ms=float(init) if init is not None else None,
        status=match.group("status"),
        error_type=match.group("error_type"),
    )


def parse_log(text: str) -> Report | None:
    """The last REPORT record in a log excerpt (the tail of an invocation's log)."""
    found = None
    for line in text.splitlines():
        report = parse_line(line)
        if report is not None:
            found = report
    return found


def decode_log_result(log_result: str | None) -> str:
    """The base64 `LogResult` of a synchronous Invoke with LogType='Tail', as text."""
    if not log_result:
        return ""
    try:
        return base64.b64decode(log_result).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return ""


def _parse_json(line: str) -> Report | None:
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(event, dict) or event.get("type") != "platform.report":
        return None
    record = event.get("record") or {}
    metrics = record.get("metrics") or {}
    try:
        init = metrics.get("initDurationMs")
        status = record.get("status")
        return Report(
            request_id=str(record["requestId"]),
            duration_ms=float(metrics["durationMs"]),
            billed_ms=int(float(metrics["billedDurationMs"])),
            memory_mb=int(metrics["memorySizeMB"]),
            max_memory_used_mb=int(metrics["maxMemoryUsedMB"]),
            init_ms=float(init) if init is not None else None,
            status=None if status in (None, "success") else str(status),
            error_type=record.get("errorType"),
        )
    except (KeyError, TypeError, ValueError):
        return None
