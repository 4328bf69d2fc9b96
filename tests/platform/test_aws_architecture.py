"""The AWS backend prices by the architecture the function really runs on, and a result without
a REPORT line is billed its request and left to reconcile (botocore Stubber)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from botocore.stub import ANY

from service.platform import pricing
from service.platform.interface import ErrorKind
from tests.platform.test_aws_stubbed import REPORT, Stubbed, _tail, aws  # noqa: F401 (fixture)


def _invoked(stubbed: Stubbed, log: str, version: str, qualifier: str | None = None) -> None:
    expected: dict[str, Any] = {
        "FunctionName": "f",
        "InvocationType": "RequestResponse",
        "LogType": "Tail",
        "Payload": ANY,
    }
    if qualifier is not None:
        expected["Qualifier"] = qualifier
    stubbed.invoke.add_response(
        "invoke",
        {
            "StatusCode": 200,
            "Payload": json.dumps({"ok": True}).encode(),
            "LogResult": _tail(log),
            "ExecutedVersion": version,
            "ResponseMetadata": {"RequestId": "req-1", "HTTPStatusCode": 200},
        },
        expected,
    )


def _configuration(stubbed: Stubbed, version: str, architecture: str) -> None:
    stubbed.control.add_response(
        "get_function_configuration",
        {"FunctionName": "f", "Version": version, "Architectures": [architecture]},
        {"FunctionName": "f", "Qualifier": version},
    )


def test_the_architecture_is_read_once_per_version_and_prices_the_run(aws: Stubbed) -> None:  # noqa: F811
    _invoked(aws, REPORT, "7")
    _configuration(aws, "7", "arm64")
    _invoked(aws, REPORT, "7")  # the same version again: no second read
    first = aws.platform.invoke("f", {})
    again = aws.platform.invoke("f", {})
    assert first.architecture == again.architecture == "arm64"
    bill = pricing.bill(first, "x86_64")  # the spec's claim loses to the function's own
    assert bill.reported
    assert bill.compute_usd == Decimal(512) / 1024 * Decimal("0.662") * Decimal("0.0000133334")
    assert bill.request_usd == Decimal("0.0000002")

    _invoked(aws, REPORT, "8")  # a new version may run on another architecture
    _configuration(aws, "8", "x86_64")
    assert aws.platform.invoke("f", {}).architecture == "x86_64"


def test_a_truncated_log_tail_is_billed_its_request_and_left_to_reconcile(aws: Stubbed) -> None:  # noqa: F811
    _invoked(aws, "START RequestId: req-1 Version: 3\n[a long log, cut here]", "3")
    _configuration(aws, "3", "arm64")
    result = aws.platform.invoke("f", {})
    assert result.ok and result.report is None and result.request_id == "req-1"
    bill = pricing.bill(result)
    assert not bill.reported
    assert (bill.compute_usd, bill.request_usd) == (Decimal(0), pricing.REQUEST_USD)


def test_an_unreadable_configuration_leaves_the_architecture_unknown(aws: Stubbed) -> None:  # noqa: F811
    _invoked(aws, REPORT, "4")
    aws.control.add_client_error(
        "get_function_configuration", "AccessDeniedException", http_status_code=403
    )
    result = aws.platform.invoke("f", {})
    assert result.architecture is None
    assert pricing.bill(result, "arm64").compute_usd == pricing.compute_usd(result.report, "arm64")


def test_a_throttled_invocation_costs_nothing_and_is_final(aws: Stubbed) -> None:  # noqa: F811
    for _ in range(4):
        aws.invoke.add_client_error("invoke", "TooManyRequestsException", http_status_code=429)
    result = aws.platform.invoke("f", {})
    assert result.error is ErrorKind.THROTTLED
    bill = pricing.bill(result)
    assert bill.reported and bill.total_usd == 0
