"""CPU time per invocation from Lambda Insights, which the REPORT line does not carry.

A function with AWS's LambdaInsightsExtension layer writes one log event per invocation to the
account's shared log group ``/aws/lambda-insights``: a JSON message in embedded metric format
with ``"event_type": "performance"``, the ``function_name``, the ``request_id`` and
``cpu_total_time`` (ms of CPU, user plus system), among others. It arrives seconds to minutes
after the invocation returned, so the loop asks for it later (``control/cloudwatch.py``).

The group holds every Insights function's events, so the request filters them by function
name on the server; each message is checked again here (an endpoint that ignores the pattern
must not hand over another function's runs), and anything that is not such an event is skipped.
"""

from __future__ import annotations

import json
import math
from typing import Any

from botocore.exceptions import ClientError

from service.platform.aws.retry import error_code

LOG_GROUP = "/aws/lambda-insights"


def filter_pattern(function: str) -> str:
    """The JSON filter pattern of one function's performance events."""
    name = json.dumps(function)  # a function name has no quote, but never build a broken one
    return f'{{ ($.event_type = "performance") && ($.function_name = {name}) }}'


def parse_event(message: str, function: str) -> tuple[str, float] | None:
    """(request id, CPU ms) of one of `function`'s performance events; None for anything else:
    another function's event, a message that is not JSON, a missing or unusable figure."""
    try:
        event = json.loads(message)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    if event.get("event_type") != "performance" or event.get("function_name") != function:
        return None
    request_id, cpu_ms = event.get("request_id"), event.get("cpu_total_time")
    if not isinstance(request_id, str) or not request_id:
        return None
    if isinstance(cpu_ms, bool) or not isinstance(cpu_ms, int | float):
        return None
    if not math.isfinite(cpu_ms) or cpu_ms < 0:
        return None
    return request_id, float(cpu_ms)


def find_cpu_times(
    logs: Any, function: str, start: float, end: float, request_ids: frozenset[str]
) -> dict[str, float]:
    """``{request id: cpu_total_time ms}`` of those of `request_ids` whose event was logged in
    [start, end] (clock seconds); a request without one yet is absent. No log group means no
    Insights function has logged yet: none found, not an error."""
    if not request_ids:
        return {}
    request = {
        "logGroupName": LOG_GROUP,
        "startTime": int(start * 1000),
        "endTime": int(end * 1000),
        "filterPattern": filter_pattern(function),
    }
    found: dict[str, float] = {}
    try:
        for page in logs.get_paginator("filter_log_events").paginate(**request):
            for event in page.get("events", []):
                parsed = parse_event(event.get("message", ""), function)
                if parsed is not None and parsed[0] in request_ids:
                    found[parsed[0]] = parsed[1]
            if len(found) == len(request_ids):
                break  # every one asked for is in: spare the remaining pages
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return {}
        raise
    return found
