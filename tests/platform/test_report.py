"""REPORT records: Lambda's text and JSON log formats, and the base64 log tail."""

from __future__ import annotations

import base64
import json

from service.platform.interface import Report
from service.platform.report import decode_log_result, format_text, parse_line, parse_log

DESIGN_EXAMPLE = (
    "REPORT RequestId: 3f5c1c2a-1111-2222-3333-444455556666\tDuration: 395.99 ms\t"
    "Billed Duration: 396 ms\tMemory Size: 512 MB\tMax Memory Used: 301 MB\t"
    "Init Duration: 265.72 ms\t"
)


def test_text_report_with_init_is_a_cold_start() -> None:
    report = parse_line(DESIGN_EXAMPLE)
    assert report == Report(
        "3f5c1c2a-1111-2222-3333-444455556666", 395.99, 396, 512, 301, 265.72, None, None
    )
    assert report is not None and report.cold


def test_text_report_without_init_is_warm() -> None:
    line = (
        "REPORT RequestId: abc Duration: 12.01 ms Billed Duration: 13 ms "
        "Memory Size: 128 MB Max Memory Used: 41 MB"
    )
    report = parse_line(line)
    assert report is not None
    assert (report.duration_ms, report.billed_ms, report.init_ms) == (12.01, 13, None)
    assert not report.cold


def test_text_report_of_a_failed_invocation_keeps_status_and_error_type() -> None:
    timeout = parse_line(
        "REPORT RequestId: t\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 60 MB\tStatus: timeout"
    )
    assert timeout is not None and timeout.status == "timeout"
    oom = parse_line(
        "REPORT RequestId: o\tDuration: 800.00 ms\tBilled Duration: 800 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 128 MB\tInit Duration: 100.00 ms\tStatus: error\t"
        "Error Type: Runtime.OutOfMemory"
    )
    assert oom is not None
    assert (oom.status, oom.error_type, oom.init_ms) == ("error", "Runtime.OutOfMemory", 100.0)


def test_json_log_format_platform_report() -> None:
    line = json.dumps(
        {
            "time": "2025-01-01T00:00:00.000Z",
            "type": "platform.report",
            "record": {
                "requestId": "j1",
                "status": "success",
                "metrics": {
                    "durationMs": 395.99,
                    "billedDurationMs": 396,
                    "memorySizeMB": 512,
                    "maxMemoryUsedMB": 301,
                    "initDurationMs": 265.72,
                },
            },
        }
    )
    assert parse_line(line) == Report("j1", 395.99, 396, 512, 301, 265.72, None, None)
    timed_out = json.loads(line)
    timed_out["record"]["status"] = "timeout"
    del timed_out["record"]["metrics"]["initDurationMs"]
    report = parse_line(json.dumps(timed_out))
    assert report is not None and report.status == "timeout" and report.init_ms is None


def test_lines_that_are_not_reports_give_none() -> None:
    assert parse_line("START RequestId: abc Version: $LATEST") is None
    assert parse_line('{"type": "platform.start", "record": {}}') is None
    assert parse_line('{"type": "platform.report", "record": {"requestId": "x"}}') is None
    assert parse_line("{not json") is None
    assert parse_line("REPORT RequestId: x Duration: oops") is None


def test_log_tail_is_base64_and_the_last_report_wins() -> None:
    tail = "\n".join(
        [
            "START RequestId: a Version: $LATEST",
            "some print output",
            "END RequestId: a",
            DESIGN_EXAMPLE,
            "",
        ]
    )
    encoded = base64.b64encode(tail.encode()).decode()
    assert decode_log_result(encoded) == tail
    report = parse_log(decode_log_result(encoded))
    assert report is not None and report.duration_ms == 395.99
    assert decode_log_result(None) == "" and decode_log_result("***") == ""
    assert parse_log("no report here") is None


def test_format_text_round_trips() -> None:
    for report in [
        Report("a", 395.99, 396, 512, 301, 265.72),
        Report("b", 12.5, 13, 128, 41),
        Report("c", 500.0, 500, 128, 128, None, "error", "Runtime.OutOfMemory"),
    ]:
        assert parse_line(format_text(report)) == report
