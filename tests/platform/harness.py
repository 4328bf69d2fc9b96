"""One test harness per backend, so that one contract suite runs against both.

The emulator runs the real handlers in `handlers.py`. Moto's Lambda (without Docker) runs no
code: it returns canned payloads from its lambda-simple queue and no log tail. So the AWS
harness *primes* each invocation with what real Lambda would answer: the payload through moto's
queue, and the `X-Amz-Function-Error` / `X-Amz-Log-Result` headers (which moto lacks) added to
moto's HTTP response before botocore parses it. Metrics and log lines, which Lambda would write
to CloudWatch, are put into moto's CloudWatch and CloudWatch Logs by `record`.
"""

from __future__ import annotations

import base64
import io
import json
import time
import uuid
import zipfile
from collections import deque
from datetime import UTC, datetime
from typing import Any

from botocore.stub import Stubber

from service.platform.aws.clients import make_clients
from service.platform.aws.lambda_backend import AwsPlatform
from service.platform.clock import VirtualClock
from service.platform.emulator.backend import EmulatorPlatform
from service.platform.interface import FunctionSpec, InvocationHandle, InvokeResult
from service.platform.report import format_text
from tests.platform.conftest import REGION, MotoServer

HANDLERS = "tests.platform.handlers"


class EmulatorHarness:
    name = "emulator"

    def __init__(self) -> None:
        self.clock = VirtualClock(1_800_000_000.0)
        self.platform = EmulatorPlatform(self.clock, seed=11, workers=2)

    def spec(self, handler: str, memory_mb: int = 512, timeout_s: float = 30.0) -> FunctionSpec:
        return FunctionSpec(
            f"fn-{uuid.uuid4().hex[:8]}",
            handler=f"{HANDLERS}:{handler}",
            memory_mb=memory_mb,
            timeout_s=timeout_s,
        )

    # What Lambda would answer: the emulator produces it by running the handler.
    def expect_echo(self, event: Any, memory_mb: int) -> None:
        pass

    def expect_error(self, message: str, memory_mb: int) -> None:
        pass

    def expect_oom(self, memory_mb: int) -> None:
        pass

    def expect_timeout(self, memory_mb: int, timeout_s: float) -> None:
        pass

    def record(self, results: list[InvokeResult]) -> None:
        pass  # the emulator keeps its own metrics and logs

    def wait_for(self, handle: InvocationHandle) -> InvokeResult:
        while (result := self.platform.poll(handle)) is None:
            self.clock.set(max(self.clock.now(), self.platform.completion_time(handle)))
        return result

    def account_settings(self, limit: int) -> Any:
        return _Nothing()

    def close(self) -> None:
        self.platform.close()


class AwsHarness:
    name = "aws"

    def __init__(self, moto: MotoServer) -> None:
        self.moto = moto
        self.clients = make_clients(REGION, moto.endpoint)
        self.platform = AwsPlatform(self.clients, sleep=lambda _: None, update_poll_s=0.01)
        self._headers: deque[dict[str, str]] = deque()
        self.clients.lambda_invoke.meta.events.register(
            "before-parse.lambda.Invoke", self._add_headers
        )
        iam = _client("iam", moto)
        try:
            self.role_arn = iam.create_role(RoleName="cescale-test", AssumeRolePolicyDocument="{}")[
                "Role"
            ]["Arn"]
        except iam.exceptions.EntityAlreadyExistsException:
            self.role_arn = iam.get_role(RoleName="cescale-test")["Role"]["Arn"]
        self._cloudwatch = _client("cloudwatch", moto)
        self._logs = _client("logs", moto)

    def spec(self, handler: str, memory_mb: int = 512, timeout_s: float = 30.0) -> FunctionSpec:
        return FunctionSpec(
            f"fn-{uuid.uuid4().hex[:8]}",
            handler=f"{HANDLERS}:{handler}",
            memory_mb=memory_mb,
            timeout_s=timeout_s,
            code_zip=_ZIP,
            role_arn=self.role_arn,
        )

    def expect_echo(self, event: Any, memory_mb: int) -> None:
        self._prime({"echo": event, "memory_limit_in_mb": memory_mb}, None, _tail(memory_mb, 41))

    def expect_error(self, message: str, memory_mb: int) -> None:
        payload = {"errorMessage": message, "errorType": "ValueError", "stackTrace": []}
        log = f"[ERROR] ValueError: {message}\n" + _tail(memory_mb, 43, status="error")
        self._prime(payload, "Unhandled", log)

    def expect_oom(self, memory_mb: int) -> None:
        payload = {
            "errorType": "Runtime.OutOfMemory",
            "errorMessage": "RequestId: x Error: Runtime exited with error: signal: killed",
        }
        log = "Error: Runtime exited with error: signal: killed\n" + _tail(
            memory_mb, memory_mb, status="error", error_type="Runtime.OutOfMemory"
        )
        self._prime(payload, "Unhandled", log)

    def expect_timeout(self, memory_mb: int, timeout_s: float) -> None:
        message = f"Task timed out after {timeout_s:.2f} seconds"
        payload = {"errorType": "Sandbox.Timedout", "errorMessage": f"RequestId: x {message}"}
        log = f"{message}\n" + _tail(memory_mb, 45, duration=timeout_s * 1000, status="timeout")
        self._prime(payload, "Unhandled", log)

    def record(self, results: list[InvokeResult]) -> None:
        """Write what Lambda would have written to CloudWatch and CloudWatch Logs."""
        for result in results:
            stamp = datetime.fromtimestamp(result.started_at, UTC)
            dims = [{"Name": "FunctionName", "Value": result.function}]
            data = [
                {"MetricName": "Invocations", "Value": 1.0, "Unit": "Count"},
                {"MetricName": "Errors", "Value": float(not result.ok), "Unit": "Count"},
                {"MetricName": "Throttles", "Value": 0.0, "Unit": "Count"},
            ]
            if result.report is not None:
                data.append(
                    {
                        "MetricName": "Duration",
                        "Value": result.report.duration_ms,
                        "Unit": "Milliseconds",
                    }
                )
            self._cloudwatch.put_metric_data(
                Namespace="AWS/Lambda",
                MetricData=[{**d, "Dimensions": dims, "Timestamp": stamp} for d in data],
            )
            if result.report is not None:
                group = f"/aws/lambda/{result.function}"
                try:
                    self._logs.create_log_group(logGroupName=group)
                    self._logs.create_log_stream(logGroupName=group, logStreamName="s")
                except self._logs.exceptions.ResourceAlreadyExistsException:
                    pass
                self._logs.put_log_events(
                    logGroupName=group,
                    logStreamName="s",
                    logEvents=[
                        {
                            "timestamp": int(result.finished_at * 1000),
                            "message": format_text(result.report),
                        }
                    ],
                )

    def wait_for(self, handle: InvocationHandle) -> InvokeResult:
        deadline = time.monotonic() + 10
        while (result := self.platform.poll(handle)) is None:
            assert time.monotonic() < deadline, "invocation did not complete"
            time.sleep(0.005)
        return result

    def account_settings(self, limit: int) -> Stubber:
        """Moto has no GetAccountSettings: stub that one call on the control client."""
        stubber = Stubber(self.clients.lambda_control)
        stubber.add_response(
            "get_account_settings",
            {"AccountLimit": {"ConcurrentExecutions": limit}, "AccountUsage": {}},
        )
        return stubber

    def close(self) -> None:
        self.platform.close()

    def _prime(self, payload: Any, function_error: str | None, log: str) -> None:
        self.moto.post(
            "/moto-api/static/lambda-simple/response",
            {"results": [json.dumps(payload)], "region": REGION},
        )
        headers = {"x-amz-log-result": base64.b64encode(log.encode()).decode()}
        if function_error:
            headers["x-amz-function-error"] = function_error
        self._headers.append(headers)

    def _add_headers(self, response_dict: dict[str, Any], **_: Any) -> None:
        if self._headers and response_dict["status_code"] == 200:
            for key, value in self._headers.popleft().items():
                response_dict["headers"][key] = value


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _client(service: str, moto: MotoServer) -> Any:
    import boto3

    return boto3.client(service, region_name=REGION, endpoint_url=moto.endpoint)


def _tail(
    memory_mb: int,
    used_mb: int,
    *,
    duration: float = 12.34,
    status: str | None = None,
    error_type: str | None = None,
) -> str:
    from service.platform.interface import Report
    from service.platform.report import billed_ms

    request_id = str(uuid.uuid4())
    report = Report(
        request_id, duration, billed_ms(duration), memory_mb, used_mb, None, status, error_type
    )
    return f"START RequestId: {request_id} Version: $LATEST\nEND RequestId: {request_id}\n" + (
        format_text(report) + "\n"
    )


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "tests/platform/handlers.py", "def echo(event, context):\n    return event\n"
        )
    return buffer.getvalue()


_ZIP = _zip()
