"""The AWS backend where moto cannot go: botocore Stubber for Lambda's log tail, throttles,
update conflicts, OOM/timeout answers and metrics shapes, and a botocore event hook for a read
timeout. Sleeps and jitter are injected, so nothing here waits."""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.stub import ANY, Stubber

from service.platform import pricing
from service.platform.aws.clients import AwsClients, make_clients
from service.platform.aws.lambda_backend import AwsPlatform
from service.platform.aws.retry import Backoff, Retrier, retry_after_seconds
from service.platform.interface import (
    ErrorKind,
    FunctionNotFoundError,
    PlatformError,
    UpdateFailedError,
)

REPORT = (
    "REPORT RequestId: 11111111-2222-3333-4444-555555555555\tDuration: 395.99 ms\t"
    "Billed Duration: 662 ms\tMemory Size: 512 MB\tMax Memory Used: 301 MB\t"
    "Init Duration: 265.72 ms\t\n"
)


def _client(service: str) -> Any:
    return boto3.client(
        service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )


@dataclass
class Stubbed:
    platform: AwsPlatform
    control: Stubber
    invoke: Stubber
    cloudwatch: Stubber
    logs: Stubber
    sleeps: list[float]


@pytest.fixture
def aws() -> Iterator[Stubbed]:
    clients = AwsClients(
        _client("lambda"), _client("lambda"), _client("cloudwatch"), _client("logs")
    )
    sleeps: list[float] = []
    platform = AwsPlatform(
        clients,
        sleep=sleeps.append,
        rng=random.Random(0),
        backoff=Backoff(base_s=0.1, cap_s=2.0, max_attempts=4),
        update_poll_s=1.0,
        update_timeout_s=10.0,
    )
    stubs = Stubbed(
        platform,
        Stubber(clients.lambda_control),
        Stubber(clients.lambda_invoke),
        Stubber(clients.cloudwatch),
        Stubber(clients.logs),
        sleeps,
    )
    for stub in (stubs.control, stubs.invoke, stubs.cloudwatch, stubs.logs):
        stub.activate()
    yield stubs
    for stub in (stubs.control, stubs.invoke, stubs.cloudwatch, stubs.logs):
        stub.assert_no_pending_responses()
        stub.deactivate()
    platform.close()


def _tail(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _invoked(
    stub: Stubber, payload: Any, log: str = REPORT, function_error: str | None = None
) -> None:
    response: dict[str, Any] = {
        "StatusCode": 200,
        "Payload": json.dumps(payload).encode(),
        "LogResult": _tail(log),
        "ExecutedVersion": "$LATEST",
    }
    if function_error:
        response["FunctionError"] = function_error
    stub.add_response(
        "invoke",
        response,
        {
            "FunctionName": "f",
            "InvocationType": "RequestResponse",
            "LogType": "Tail",
            "Payload": ANY,
        },
    )


def _config(memory: int, revision: str = "r1", update: str = "Successful", **extra: Any) -> dict:
    return {
        "FunctionName": "f",
        "MemorySize": memory,
        "Timeout": 30,
        "State": "Active",
        "LastUpdateStatus": update,
        "RevisionId": revision,
        **extra,
    }


# -- invoke: reading Lambda's answer ---------------------------------------------------------


def test_the_report_comes_from_the_base64_log_tail(aws: Stubbed) -> None:
    _invoked(aws.invoke, {"score": 0.9}, "START RequestId: x\nprinted\nEND RequestId: x\n" + REPORT)
    result = aws.platform.invoke("f", {"epoch": 1})
    assert result.ok and result.payload == {"score": 0.9}
    assert result.report is not None
    assert (result.report.duration_ms, result.report.billed_ms) == (395.99, 662)
    assert (result.report.memory_mb, result.report.max_memory_used_mb) == (512, 301)
    assert result.report.init_ms == 265.72 and result.cold
    assert pricing.result_usd(result) > 0


def test_the_report_is_read_from_the_json_log_format_too(aws: Stubbed) -> None:
    record = {
        "type": "platform.report",
        "record": {
            "requestId": "j",
            "status": "success",
            "metrics": {
                "durationMs": 12.5,
                "billedDurationMs": 13,
                "memorySizeMB": 1024,
                "maxMemoryUsedMB": 88,
            },
        },
    }
    _invoked(aws.invoke, {}, json.dumps({"type": "platform.start"}) + "\n" + json.dumps(record))
    result = aws.platform.invoke("f", {})
    assert result.report is not None
    assert (result.report.request_id, result.report.memory_mb, result.report.cold) == (
        "j",
        1024,
        False,
    )


@pytest.mark.parametrize(
    ("function_error", "payload", "log", "kind"),
    [
        (
            "Unhandled",
            {"errorType": "Runtime.OutOfMemory", "errorMessage": "RequestId: x Error: ..."},
            REPORT,
            ErrorKind.OUT_OF_MEMORY,
        ),
        (
            "Unhandled",
            {"errorMessage": "RequestId: x Error: Runtime exited with error: signal: killed"},
            REPORT,
            ErrorKind.OUT_OF_MEMORY,
        ),
        (
            "Unhandled",
            {"errorMessage": "something"},
            REPORT.replace("Max Memory Used: 301 MB", "Max Memory Used: 512 MB"),
            ErrorKind.OUT_OF_MEMORY,
        ),
        (
            "Unhandled",
            {"errorMessage": "2025-01-01T00:00:00Z x Task timed out after 3.00 seconds"},
            REPORT,
            ErrorKind.TIMEOUT,
        ),
        (
            "Unhandled",
            {"errorType": "Sandbox.Timedout", "errorMessage": "x"},
            REPORT,
            ErrorKind.TIMEOUT,
        ),
        (
            "Unhandled",
            {"errorMessage": "x"},
            REPORT.replace("\t\n", "\tStatus: timeout\n"),
            ErrorKind.TIMEOUT,
        ),
        (
            "Unhandled",
            {"errorType": "KeyError", "errorMessage": "'lr'"},
            REPORT,
            ErrorKind.UNHANDLED,
        ),
        ("Handled", {"errorType": "Invalid", "errorMessage": "bad"}, REPORT, ErrorKind.HANDLED),
    ],
)
def test_function_errors_are_classified(
    aws: Stubbed, function_error: str, payload: dict, log: str, kind: ErrorKind
) -> None:
    _invoked(aws.invoke, payload, log, function_error)
    result = aws.platform.invoke("f", {})
    assert result.error is kind
    assert result.error_message == payload["errorMessage"]
    assert not result.ambiguous


def test_throttles_are_retried_honouring_retry_after(aws: Stubbed) -> None:
    aws.invoke.add_client_error(
        "invoke",
        "TooManyRequestsException",
        "Rate exceeded",
        429,
        modeled_fields={"retryAfterSeconds": "1.5", "Reason": "ConcurrentInvocationLimitExceeded"},
    )
    aws.invoke.add_client_error("invoke", "TooManyRequestsException", "Rate exceeded", 429)
    _invoked(aws.invoke, {"ok": True})
    result = aws.platform.invoke("f", {})
    assert result.ok
    assert len(aws.sleeps) == 2
    assert aws.sleeps[0] >= 1.5  # honoured the service's retryAfterSeconds
    assert 0 <= aws.sleeps[1] <= 0.2  # full jitter within base * 2**1


def test_throttles_past_the_last_attempt_give_a_throttled_result_that_costs_nothing(
    aws: Stubbed,
) -> None:
    for _ in range(4):
        aws.invoke.add_client_error("invoke", "TooManyRequestsException", "Rate exceeded", 429)
    result = aws.platform.invoke("f", {})
    assert result.error is ErrorKind.THROTTLED and result.report is None
    assert pricing.result_usd(result) == 0
    assert len(aws.sleeps) == 3


def test_a_5xx_after_sending_is_ambiguous_and_not_retried(aws: Stubbed) -> None:
    aws.invoke.add_client_error("invoke", "ServiceException", "internal", 500)
    result = aws.platform.invoke("f", {})
    assert result.ambiguous and not result.ok
    assert result.error is ErrorKind.UNHANDLED and result.report is None
    assert aws.sleeps == []


def test_invoking_a_missing_function_raises(aws: Stubbed) -> None:
    aws.invoke.add_client_error("invoke", "ResourceNotFoundException", "Function not found", 404)
    with pytest.raises(FunctionNotFoundError):
        aws.platform.invoke("f", {})


def test_a_read_timeout_is_ambiguous_and_sent_exactly_once(fake_aws_credentials: None) -> None:
    """Through the real client configuration (make_clients), not a stub: botocore's standard
    retry mode would resend an Invoke after a read timeout; ours must not."""
    clients = make_clients("us-east-1", "http://127.0.0.1:9")
    attempts: list[str] = []

    def time_out(request: Any, **_: Any) -> None:
        attempts.append(request.url)
        raise ReadTimeoutError(endpoint_url=request.url)

    clients.lambda_invoke.meta.events.register("before-send.lambda.Invoke", time_out)
    with AwsPlatform(clients, sleep=lambda _: None) as platform:
        result = platform.invoke("f", {"x": 1})
    assert result.ambiguous and result.report is None
    assert "may have run" in (result.error_message or "")
    assert len(attempts) == 1


def test_pending_invocations_complete_through_poll(aws: Stubbed) -> None:
    _invoked(aws.invoke, {"n": 1})
    handle = aws.platform.start_invoke("f", {})
    deadline = time.monotonic() + 5
    while (result := aws.platform.poll(handle)) is None:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    assert result.payload == {"n": 1} and result.started_at == handle.started_at


# -- configuration: updates, conflicts, variants ----------------------------------------------


def test_set_memory_is_conditional_retries_conflicts_and_waits_until_successful(
    aws: Stubbed,
) -> None:
    aws.control.add_response("get_function_configuration", _config(512), {"FunctionName": "f"})
    aws.control.add_response("get_function_configuration", _config(512), {"FunctionName": "f"})
    aws.control.add_client_error(
        "update_function_configuration", "ResourceConflictException", "update in progress", 409
    )
    aws.control.add_response(
        "update_function_configuration",
        _config(1024, "r2", "InProgress"),
        {"FunctionName": "f", "MemorySize": 1024, "RevisionId": "r1"},
    )
    aws.control.add_response("get_function_configuration", _config(1024, "r2", "InProgress"))
    aws.control.add_response("get_function_configuration", _config(1024, "r2"))
    aws.platform.set_memory("f", 1024)
    backoff, *polls = aws.sleeps
    assert 0 <= backoff <= 0.1  # full jitter after the conflict
    assert polls == [1.0, 1.0]  # InProgress in the update's answer, then once more when read


def test_a_changed_revision_means_read_again_and_redo(aws: Stubbed) -> None:
    aws.control.add_response("get_function_configuration", _config(512, "r1"))
    aws.control.add_response("get_function_configuration", _config(512, "r1"))
    aws.control.add_client_error(
        "update_function_configuration", "PreconditionFailedException", "revision changed", 412
    )
    aws.control.add_response("get_function_configuration", _config(512, "r9"))
    aws.control.add_response(
        "update_function_configuration",
        _config(2048, "r10"),
        {"FunctionName": "f", "MemorySize": 2048, "RevisionId": "r9"},
    )
    aws.platform.set_memory("f", 2048)


def test_a_failed_update_is_an_error(aws: Stubbed) -> None:
    aws.control.add_response("get_function_configuration", _config(512))
    aws.control.add_response("get_function_configuration", _config(512))
    aws.control.add_response("update_function_configuration", _config(640, "r2", "InProgress"))
    aws.control.add_response(
        "get_function_configuration",
        _config(512, "r3", "Failed", LastUpdateStatusReason="EniLimitExceeded"),
    )
    with pytest.raises(UpdateFailedError, match="EniLimitExceeded"):
        aws.platform.set_memory("f", 640)


def test_no_invoke_of_the_function_while_this_process_updates_it(aws: Stubbed) -> None:
    _invoked(aws.invoke, {})
    done = threading.Event()
    with aws.platform._mutating("f"):
        worker = threading.Thread(target=lambda: (aws.platform.invoke("f", {}), done.set()))
        worker.start()
        assert not done.wait(0.1)  # held back during the update
    assert done.wait(5)
    worker.join()


def _no_alias(aws: Stubbed) -> None:
    aws.control.add_client_error("get_alias", "ResourceNotFoundException", "no alias", 404)
    aws.control.add_response("get_function_configuration", _config(512))  # the function exists


def test_ensure_variant_publishes_the_size_and_points_an_alias_at_it(aws: Stubbed) -> None:
    """$LATEST of a function the service owns is resized, published and left at that size:
    nothing invokes it, and restoring it is what made two replicas race (README)."""
    _no_alias(aws)
    _no_alias(aws)  # checked again under the function's lock
    aws.control.add_response("get_function_configuration", _config(512))  # settled?
    aws.control.add_response("get_function_configuration", _config(512))  # before update
    aws.control.add_response(
        "update_function_configuration",
        _config(1024, "r2"),
        {"FunctionName": "f", "MemorySize": 1024, "RevisionId": "r1"},
    )
    aws.control.add_response(
        "publish_version",
        _config(1024, "r2", Version="7"),
        {"FunctionName": "f", "RevisionId": "r2"},
    )
    aws.control.add_response(
        "create_alias",
        {"Name": "mem-1024", "FunctionVersion": "7"},
        {"FunctionName": "f", "Name": "mem-1024", "FunctionVersion": "7"},
    )
    aws.control.add_response("get_function_configuration", _config(1024, "r2"))  # code moved?
    assert aws.platform.ensure_variant("f", 1024) == "mem-1024"
    assert aws.platform.ensure_variant("f", 1024) == "mem-1024"  # known: no call stubbed


def test_a_variant_whose_publish_lost_a_race_is_read_again_and_redone(aws: Stubbed) -> None:
    """Another controller changed the function between our update and PublishVersion: the
    conditional publish fails, and the variant is redone from a fresh read, not given up."""
    _no_alias(aws)
    _no_alias(aws)
    aws.control.add_response("get_function_configuration", _config(512))  # settled?
    aws.control.add_response("get_function_configuration", _config(512))  # before update
    aws.control.add_response(
        "update_function_configuration",
        _config(1024, "r2"),
        {"FunctionName": "f", "MemorySize": 1024, "RevisionId": "r1"},
    )
    aws.control.add_client_error(
        "publish_version",
        "PreconditionFailedException",
        "revision changed",
        412,
        expected_params={"FunctionName": "f", "RevisionId": "r2"},
    )
    aws.control.add_response("get_function_configuration", _config(2048, "r3"))  # theirs
    aws.control.add_response("get_function_configuration", _config(2048, "r3"))
    aws.control.add_response(
        "update_function_configuration",
        _config(1024, "r4"),
        {"FunctionName": "f", "MemorySize": 1024, "RevisionId": "r3"},
    )
    aws.control.add_response(
        "publish_version",
        _config(1024, "r4", Version="8"),
        {"FunctionName": "f", "RevisionId": "r4"},
    )
    aws.control.add_response(
        "create_alias",
        {"Name": "mem-1024", "FunctionVersion": "8"},
        {"FunctionName": "f", "Name": "mem-1024", "FunctionVersion": "8"},
    )
    aws.control.add_response("get_function_configuration", _config(1024, "r4"))
    assert aws.platform.ensure_variant("f", 1024) == "mem-1024"
    assert len(aws.sleeps) == 1  # one jittered pause before the redo


def test_an_alias_on_a_version_of_old_code_is_republished_and_repointed(aws: Stubbed) -> None:
    """mem-1024 exists but its version runs code $LATEST no longer has (a redeploy): a new
    version is published at 1024 MB and the alias moved to it."""
    old, new = {"CodeSha256": "old"}, {"CodeSha256": "new"}
    for _ in range(2):  # outside and under the lock
        aws.control.add_response("get_alias", {"Name": "mem-1024", "FunctionVersion": "3"})
        aws.control.add_response("get_function_configuration", _config(1024, Version="3", **old))
        aws.control.add_response("get_function_configuration", _config(512, **new))
    aws.control.add_response("get_function_configuration", _config(512, **new))
    aws.control.add_response("get_function_configuration", _config(512, **new))
    aws.control.add_response(
        "update_function_configuration",
        _config(1024, "r2", **new),
        {"FunctionName": "f", "MemorySize": 1024, "RevisionId": "r1"},
    )
    aws.control.add_response(
        "publish_version",
        _config(1024, "r2", Version="4", **new),
        {"FunctionName": "f", "RevisionId": "r2"},
    )
    aws.control.add_client_error("create_alias", "ResourceConflictException", "exists", 409)
    aws.control.add_response(
        "update_alias",
        {"Name": "mem-1024", "FunctionVersion": "4"},
        {"FunctionName": "f", "Name": "mem-1024", "FunctionVersion": "4"},
    )
    aws.control.add_response("get_function_configuration", _config(1024, "r2", **new))
    assert aws.platform.ensure_variant("f", 1024) == "mem-1024"


def test_the_concurrency_limit_comes_from_the_account_settings_once(aws: Stubbed) -> None:
    aws.control.add_response(
        "get_account_settings", {"AccountLimit": {"ConcurrentExecutions": 400}}
    )
    assert aws.platform.concurrency_limit() == 400
    assert aws.platform.concurrency_limit() == 400  # cached: no second call stubbed


def test_denied_account_settings_fall_back_to_the_configured_limit_with_one_warning(
    aws: Stubbed, caplog: pytest.LogCaptureFixture
) -> None:
    aws.platform._concurrency_fallback = 250
    aws.control.add_client_error("get_account_settings", "AccessDeniedException", "no", 403)
    with caplog.at_level("WARNING", logger="service.platform.aws.lambda_backend"):
        assert aws.platform.concurrency_limit() == 250
        assert aws.platform.concurrency_limit() == 250  # no second call stubbed
    warnings = [r for r in caplog.records if "CESCALE_AWS_CONCURRENCY_LIMIT" in r.getMessage()]
    assert len(warnings) == 1 and "AccessDeniedException" in warnings[0].getMessage()


# -- metrics and logs -------------------------------------------------------------------------


def test_metrics_ask_for_lambda_series_and_keep_missing_points_missing(aws: Stubbed) -> None:
    aws.platform.lambda_insights = True
    t0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    t2 = datetime(2025, 1, 1, 12, 2, tzinfo=UTC)

    def check(queries: list[dict]) -> None:
        ids = {q["Id"]: q["MetricStat"] for q in queries}
        assert set(ids) == {
            "invocations",
            "duration_avg",
            "duration_max",
            "errors",
            "throttles",
            "memory_used_max",
        }
        assert ids["duration_max"]["Stat"] == "Maximum"
        assert ids["memory_used_max"]["Metric"]["Namespace"] == "LambdaInsights"
        assert ids["invocations"]["Metric"]["Dimensions"] == [
            {"Name": "FunctionName", "Value": "f"},
            {"Name": "Resource", "Value": "f:mem-1024"},
        ]

    class Queries:
        def __eq__(self, other: object) -> bool:
            check(other)  # type: ignore[arg-type]
            return True

    aws.cloudwatch.add_response(
        "get_metric_data",
        {
            "MetricDataResults": [
                {"Id": "invocations", "Timestamps": [t0, t2], "Values": [3.0, 1.0]},
                {"Id": "duration_max", "Timestamps": [t2], "Values": [812.0]},
            ],
            "NextToken": "page2",
        },
        {
            "MetricDataQueries": Queries(),
            "StartTime": ANY,
            "EndTime": ANY,
            "ScanBy": "TimestampAscending",
        },
    )
    aws.cloudwatch.add_response(
        "get_metric_data",
        {"MetricDataResults": [{"Id": "memory_used_max", "Timestamps": [t2], "Values": [301.0]}]},
        {
            "MetricDataQueries": ANY,
            "StartTime": ANY,
            "EndTime": ANY,
            "ScanBy": "TimestampAscending",
            "NextToken": "page2",
        },
    )
    metrics = aws.platform.metrics("f", t0.timestamp(), t0.timestamp() + 300, memory_mb=1024)
    assert metrics.invocations == ((t0.timestamp(), 3.0), (t2.timestamp(), 1.0))
    assert metrics.duration_max == ((t2.timestamp(), 812.0),)  # 12:00 unknown, not zero
    assert metrics.memory_used_max == ((t2.timestamp(), 301.0),)
    assert metrics.errors == () and metrics.throttles == ()


def test_a_function_with_the_insights_layer_gets_memory_used_from_lambda_insights(
    aws: Stubbed,
) -> None:
    layer = "arn:aws:lambda:us-east-1:580247275435:layer:LambdaInsightsExtension:38"
    aws.control.add_response(
        "get_function_configuration", _config(512, Layers=[{"Arn": layer, "CodeSize": 1}])
    )
    aws.control.add_response("get_function_configuration", _config(512))  # layer removed
    stamp = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

    def answer(with_insights: bool) -> None:
        ids = ["invocations", "duration_avg", "duration_max", "errors", "throttles"]
        if with_insights:
            ids.append("memory_used_max")
        results = [
            {
                "Id": i,
                "Label": i,
                "Timestamps": [stamp],
                "Values": [301.0],
                "StatusCode": "Complete",
            }
            for i in ids
        ]

        class Asked:  # the request must ask for exactly these series
            def __eq__(self, queries: object) -> bool:
                return [q["Id"] for q in queries] == ids  # type: ignore[attr-defined]

        aws.cloudwatch.add_response(
            "get_metric_data",
            {"MetricDataResults": results},
            {"MetricDataQueries": Asked(), "StartTime": ANY, "EndTime": ANY, "ScanBy": ANY},
        )

    assert aws.platform.memory_of("f") == 512
    answer(with_insights=True)
    metrics = aws.platform.metrics("f", stamp.timestamp(), stamp.timestamp() + 60)
    assert metrics.memory_used_max == ((stamp.timestamp(), 301.0),)
    aws.platform.memory_of("f")
    answer(with_insights=False)
    assert (
        aws.platform.metrics("f", stamp.timestamp(), stamp.timestamp() + 60).memory_used_max == ()
    )


def test_reports_are_recovered_from_the_log_group_in_both_formats(aws: Stubbed) -> None:
    json_line = json.dumps(
        {
            "type": "platform.report",
            "record": {
                "requestId": "b",
                "metrics": {
                    "durationMs": 5.0,
                    "billedDurationMs": 5,
                    "memorySizeMB": 256,
                    "maxMemoryUsedMB": 70,
                },
            },
        }
    )
    aws.logs.add_response(
        "filter_log_events",
        {
            "events": [
                {"message": "START RequestId: a"},
                {"message": REPORT.replace("11111111-2222-3333-4444-555555555555", "a")},
                {"message": json_line},
            ]
        },
        {
            "logGroupName": "/aws/lambda/f",
            "startTime": 1_000_000,
            "endTime": 2_000_000,
            "filterPattern": ANY,
        },
    )
    reports = aws.platform.find_reports("f", 1000.0, 2000.0, request_ids=frozenset({"a", "b"}))
    assert [(r.request_id, r.memory_mb) for r in reports] == [("a", 512), ("b", 256)]


def test_a_function_that_never_logged_has_no_reports(aws: Stubbed) -> None:
    aws.logs.add_client_error(
        "filter_log_events", "ResourceNotFoundException", "log group does not exist", 400
    )
    assert aws.platform.find_reports("f", 0.0, 60.0) == []


def _performance(request_id: str, cpu_ms: float) -> dict:
    message = {
        "event_type": "performance",
        "function_name": "f",
        "request_id": request_id,
        "cpu_total_time": cpu_ms,
    }
    return {"message": json.dumps(message)}


def test_cpu_times_are_read_across_pages_and_a_throttle_is_retried(aws: Stubbed) -> None:
    aws.platform.lambda_insights = True
    request = {
        "logGroupName": "/aws/lambda-insights",
        "startTime": 1_000_000,
        "endTime": 2_000_000,
        "filterPattern": '{ ($.event_type = "performance") && ($.function_name = "f") }',
    }
    aws.logs.add_client_error("filter_log_events", "ThrottlingException", "slow down", 400)
    aws.logs.add_response(
        "filter_log_events", {"events": [_performance("a", 10.0)], "nextToken": "p2"}, request
    )
    aws.logs.add_response(
        "filter_log_events",
        {"events": [_performance("b", 20.5), _performance("z", 1.0)]},
        {**request, "nextToken": "p2"},
    )
    found = aws.platform.find_cpu_times("f", 1000.0, 2000.0, frozenset({"a", "b", "c"}))
    assert found == {"a": 10.0, "b": 20.5}
    assert len(aws.sleeps) == 1  # one backoff, for the throttle


def test_cpu_times_stop_reading_pages_once_every_request_is_found(aws: Stubbed) -> None:
    aws.platform.lambda_insights = True
    aws.logs.add_response(
        "filter_log_events", {"events": [_performance("a", 10.0)], "nextToken": "p2"}, None
    )
    # no second page stubbed: asking for it would fail the Stubber
    assert aws.platform.find_cpu_times("f", 0.0, 60.0, frozenset({"a"})) == {"a": 10.0}


def test_a_denied_read_of_the_insights_events_is_a_platform_error(aws: Stubbed) -> None:
    aws.platform.lambda_insights = True
    aws.logs.add_client_error(
        "filter_log_events", "AccessDeniedException", "not authorized: logs:FilterLogEvents", 400
    )
    with pytest.raises(PlatformError, match="Lambda Insights events of f: AccessDeniedException"):
        aws.platform.find_cpu_times("f", 0.0, 60.0, frozenset({"a"}))


# -- the backoff itself -----------------------------------------------------------------------


def test_backoff_is_capped_exponential_with_full_jitter() -> None:
    backoff = Backoff(base_s=0.5, cap_s=4.0, max_attempts=10)
    assert [backoff.ceiling(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    rng = random.Random(1)
    draws = [backoff.delay(5, rng) for _ in range(2000)]
    assert 0.0 <= min(draws) < 0.2 and 3.8 < max(draws) <= 4.0  # uniform over [0, cap]
    assert backoff.delay(0, rng, retry_after_s=10.0) == 10.0
    with pytest.raises(ValueError):
        Backoff(base_s=0.0)


def test_the_retrier_retries_only_refusals() -> None:
    sleeps: list[float] = []
    retrier = Retrier(Backoff(max_attempts=3), sleep=sleeps.append, rng=random.Random(0))
    calls: list[int] = []

    def conflict_then_ok() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ClientError(
                {"Error": {"Code": "ResourceConflictException", "Message": "busy"}}, "Update"
            )
        return "ok"

    assert retrier.call(conflict_then_ok) == "ok" and len(sleeps) == 2

    def denied() -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "Get")

    with pytest.raises(ClientError):
        retrier.call(denied)
    assert len(sleeps) == 2  # not retried
    header_only = ClientError(
        {
            "Error": {"Code": "TooManyRequestsException"},
            "ResponseMetadata": {"HTTPHeaders": {"retry-after": "3"}},
        },
        "Invoke",
    )
    assert retry_after_seconds(header_only) == 3.0
