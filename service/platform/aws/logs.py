"""REPORT records from CloudWatch Logs, for invocations whose response we did not see.

An asynchronous invocation, or a synchronous one that ended in a read timeout, still writes its
REPORT line to the function's log group ``/aws/lambda/<function>``. Both log formats are
matched (text ``REPORT RequestId: …`` and JSON ``platform.report``) and parsed by `report.py`.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from service.platform.aws.retry import error_code
from service.platform.interface import Report
from service.platform.report import parse_line

FILTER_PATTERN = '?"REPORT RequestId" ?"platform.report"'


def log_group(function: str) -> str:
    return f"/aws/lambda/{function}"


def find_reports(
    logs: Any,
    function: str,
    start: float,
    end: float,
    *,
    request_ids: frozenset[str] | None = None,
) -> list[Report]:
    request = {
        "logGroupName": log_group(function),
        "startTime": int(start * 1000),
        "endTime": int(end * 1000),
        "filterPattern": FILTER_PATTERN,
    }
    reports: list[Report] = []
    try:
        for page in logs.get_paginator("filter_log_events").paginate(**request):
            for event in page.get("events", []):
                report = parse_line(event.get("message", ""))
                if report is not None and (request_ids is None or report.request_id in request_ids):
                    reports.append(report)
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return []  # no log group yet: the function has never logged
        raise
    return reports
