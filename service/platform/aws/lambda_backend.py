"""The AWS backend: the `Platform` interface over Lambda, CloudWatch and CloudWatch Logs.

Two ways to run a function at a memory size (docs/platform.md):

- **Variants**: `ensure_variant` publishes an immutable version at that memory and points alias
  ``mem-<MB>`` at it; invoking with `memory_mb` calls the alias. Sizes then run side by side and
  switching size needs no update at all.
- **In place**: `set_memory` calls `UpdateFunctionConfiguration`, conditional on the
  `RevisionId` it read, and returns only once `LastUpdateStatus` is `Successful`. While this
  process updates a function it does not invoke that function's unqualified version: an invoke
  during an update may run the old configuration.

Refusals (throttles, update conflicts) are retried with backoff (`retry.py`). An Invoke whose
outcome is unknown (read timeout, connection dropped or 5xx after the request was sent) is not
retried: it is returned as an ambiguous result to reconcile from the logs, because a retry
could run the code twice.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
)

from service.platform.aws import logs as aws_logs
from service.platform.aws import metrics as aws_metrics
from service.platform.aws.clients import AwsClients, make_clients
from service.platform.aws.outcome import classify, decode_payload, error_details
from service.platform.aws.retry import (
    Backoff,
    Retrier,
    error_code,
    http_status,
    is_conflict,
    is_throttle,
)
from service.platform.clock import Clock, WallClock
from service.platform.interface import (
    Architecture,
    ErrorKind,
    FunctionMetrics,
    FunctionNotFoundError,
    FunctionSpec,
    InvocationHandle,
    InvokeResult,
    PlatformError,
    Report,
    UpdateFailedError,
    VariantNotFoundError,
    check_memory,
    variant_alias,
)
from service.platform.report import decode_log_result, parse_log

NOT_FOUND = "ResourceNotFoundException"
PRECONDITION_FAILED = "PreconditionFailedException"
# arn:aws:lambda:<region>:580247275435:layer:LambdaInsightsExtension[-Arm64]:<version>
INSIGHTS_LAYER = ":layer:LambdaInsightsExtension"
LATEST = "$LATEST"

log = logging.getLogger(__name__)


class AwsPlatform:
    """`Platform` implementation for AWS Lambda (boto3)."""

    def __init__(
        self,
        clients: AwsClients,
        *,
        clock: Clock | None = None,
        lambda_insights: bool = False,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        update_timeout_s: float = 300.0,
        update_poll_s: float = 1.0,
        max_concurrent_invokes: int = 32,
        restore_latest: bool = True,
    ) -> None:
        self.clients = clients
        self.clock: Clock = clock or WallClock()
        self.lambda_insights = lambda_insights
        self.retrier = Retrier(backoff, sleep=sleep, rng=rng)
        self._sleep = sleep
        self._update_polls = max(1, math.ceil(update_timeout_s / update_poll_s))
        self._update_poll_s = update_poll_s
        self._restore_latest = restore_latest
        self._executor = ThreadPoolExecutor(max_concurrent_invokes, thread_name_prefix="invoke")
        self._pending: dict[str, Future[InvokeResult]] = {}
        self._lock = threading.Lock()
        self._function_locks: dict[str, threading.Lock] = {}
        self._updating: dict[str, int] = {}
        self._settled = threading.Condition(self._lock)
        self._concurrency_limit: int | None = None
        self._variants: set[tuple[str, str]] = set()
        self._memory: dict[str, int] = {}  # last in-place memory seen, for reports-less results
        self._insights: set[str] = set()  # functions seen with the Lambda Insights extension
        # (function, version) -> the architecture it runs on, which prices its invocations
        self._architectures: dict[tuple[str, str], Architecture] = {}

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> AwsPlatform:
        return cls(make_clients(settings.aws_region, settings.aws_endpoint_url), **options)

    # -- functions ----------------------------------------------------------------------------

    def ensure_function(self, spec: FunctionSpec) -> None:
        with self._mutating(spec.name):
            try:
                config = self._control(
                    lambda: self._lambda.get_function_configuration(FunctionName=spec.name)
                )
            except ClientError as error:
                if error_code(error) != NOT_FOUND:
                    raise self._error("read", spec.name, error) from error
                self._create(spec)
                return
            config = self._wait_settled(spec.name, config)
            updates: dict[str, Any] = {}
            if config.get("MemorySize") != spec.memory_mb:
                updates["MemorySize"] = spec.memory_mb
            if config.get("Timeout") != math.ceil(spec.timeout_s):
                updates["Timeout"] = math.ceil(spec.timeout_s)
            if updates:
                self._update(spec.name, updates)

    def ensure_variant(self, name: str, memory_mb: int) -> str:
        alias = variant_alias(memory_mb)
        if self._alias_exists(name, alias):
            with self._lock:
                self._variants.add((name, alias))
            return alias
        with self._mutating(name):
            if self._alias_exists(name, alias):
                return alias
            original: int | None = None
            for _ in range(self.retrier.backoff.max_attempts):
                config = self._wait_settled(name)
                if original is None:
                    original = int(config["MemorySize"])
                if config["MemorySize"] != memory_mb:
                    config = self._update(name, {"MemorySize": memory_mb})
                version = self._publish(name, config)
                if version is not None and version.get("MemorySize") == memory_mb:
                    break
                # Another controller changed the function between our update and the publish
                # (PreconditionFailed on RevisionId): read again and redo.
            else:
                raise UpdateFailedError(
                    f"{name}: kept changing while publishing {memory_mb} MB; gave up"
                )
            assert version is not None
            try:
                self._control(
                    lambda: self._lambda.create_alias(
                        FunctionName=name, Name=alias, FunctionVersion=version["Version"]
                    ),
                    retry_on=is_throttle,
                )
            except ClientError as error:
                # Conflict: someone created the same alias meanwhile, which is what we want.
                if not is_conflict(error):
                    raise self._error("create alias for", name, error) from error
            if self._restore_latest and original != memory_mb:
                self._update(name, {"MemorySize": original})
        with self._lock:
            self._variants.add((name, alias))
        return alias

    def set_memory(self, name: str, memory_mb: int) -> None:
        check_memory(memory_mb)
        with self._mutating(name):
            config = self._wait_settled(name)
            if config.get("MemorySize") != memory_mb:
                self._update(name, {"MemorySize": memory_mb})

    def memory_of(self, name: str) -> int:
        memory = int(self._configuration(name)["MemorySize"])
        with self._lock:
            self._memory[name] = memory
        return memory

    def concurrency_limit(self) -> int:
        if self._concurrency_limit is None:
            try:
                settings = self._control(lambda: self._lambda.get_account_settings())
            except ClientError as error:
                raise self._error("read account settings for", "the account", error) from error
            self._concurrency_limit = int(settings["AccountLimit"]["ConcurrentExecutions"])
        return self._concurrency_limit

    # -- invocations --------------------------------------------------------------------------

    def invoke(self, name: str, payload: Any, *, memory_mb: int | None = None) -> InvokeResult:
        return self._invoke(name, payload, memory_mb, self.clock.now())

    def start_invoke(
        self, name: str, payload: Any, *, memory_mb: int | None = None
    ) -> InvocationHandle:
        if memory_mb is not None:
            self._known_variant(name, memory_mb)  # fail here, as the emulator does (cached)
        handle = InvocationHandle(uuid.uuid4().hex, name, memory_mb, self.clock.now())
        future = self._executor.submit(self._invoke, name, payload, memory_mb, handle.started_at)
        with self._lock:
            self._pending[handle.invocation_id] = future
        return handle

    def poll(self, handle: InvocationHandle) -> InvokeResult | None:
        with self._lock:
            future = self._pending.get(handle.invocation_id)
            if future is None:
                raise PlatformError(
                    f"unknown or already collected invocation {handle.invocation_id}"
                )
            if not future.done():
                return None
            del self._pending[handle.invocation_id]
        return future.result()

    # -- observations -------------------------------------------------------------------------

    def metrics(
        self,
        name: str,
        start: float,
        end: float,
        *,
        period_s: int = 60,
        memory_mb: int | None = None,
    ) -> FunctionMetrics:
        qualifier = variant_alias(memory_mb) if memory_mb is not None else None
        try:
            return self.retrier.call(
                lambda: aws_metrics.fetch_metrics(
                    self.clients.cloudwatch,
                    name,
                    start,
                    end,
                    period_s=period_s,
                    qualifier=qualifier,
                    insights=self.lambda_insights or name in self._insights,
                ),
                retry_on=is_throttle,
            )
        except ClientError as error:
            raise self._error("read metrics of", name, error) from error

    def find_reports(
        self,
        name: str,
        start: float,
        end: float,
        *,
        request_ids: frozenset[str] | None = None,
    ) -> list[Report]:
        try:
            return self.retrier.call(
                lambda: aws_logs.find_reports(
                    self.clients.logs, name, start, end, request_ids=request_ids
                ),
                retry_on=is_throttle,
            )
        except ClientError as error:
            raise self._error("read logs of", name, error) from error

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> AwsPlatform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals: invoke --------------------------------------------------------------------

    @property
    def _lambda(self) -> Any:
        return self.clients.lambda_control

    def _invoke(
        self, name: str, payload: Any, memory_mb: int | None, started_at: float
    ) -> InvokeResult:
        request: dict[str, Any] = {
            "FunctionName": name,
            "InvocationType": "RequestResponse",
            "LogType": "Tail",
            "Payload": json.dumps(payload).encode("utf-8"),
        }
        if memory_mb is not None:
            request["Qualifier"] = self._known_variant(name, memory_mb)
        else:
            self._wait_until_not_updating(name)  # never invoke mid-update (docs/safety.md)
        attempts = self.retrier.backoff.max_attempts
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self.clients.lambda_invoke.invoke(**request)
            except ClientError as error:
                status = http_status(error)
                if (
                    is_throttle(error)
                    or is_conflict(error)
                    or error_code(error) in ("ResourceNotReadyException",)
                ):
                    if not last:
                        self.retrier.wait(attempt, error)
                        continue
                    if is_throttle(error):
                        return self._unrun(name, memory_mb, started_at, ErrorKind.THROTTLED, error)
                    raise self._error("invoke", name, error) from error
                if error_code(error) == NOT_FOUND:
                    if memory_mb is not None:
                        raise VariantNotFoundError(
                            f"{name}: no variant {variant_alias(memory_mb)}; call ensure_variant"
                        ) from error
                    raise FunctionNotFoundError(f"function {name!r} does not exist") from error
                if status >= 500:
                    return self._ambiguous(name, memory_mb, started_at, str(error))
                raise self._error("invoke", name, error) from error
            except (EndpointConnectionError, ConnectTimeoutError) as error:
                # Never connected, so never sent: safe to try again.
                if last:
                    raise PlatformError(f"cannot reach Lambda to invoke {name}: {error}") from error
                self.retrier.wait(attempt)
                continue
            except HTTPClientError as error:  # read timeout, connection closed after sending
                return self._ambiguous(name, memory_mb, started_at, str(error))
            return self._result(name, memory_mb, started_at, response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _result(
        self, name: str, memory_mb: int | None, started_at: float, response: dict[str, Any]
    ) -> InvokeResult:
        log_text = decode_log_result(response.get("LogResult"))
        report = parse_log(log_text)
        body = response.get("Payload")
        if body is not None and not isinstance(body, bytes | bytearray):
            body = body.read()  # a StreamingBody from a real response
        payload = decode_payload(body)
        function_error = response.get("FunctionError")
        error = classify(function_error, payload, log_text, report)
        _, message = error_details(payload) if function_error else (None, None)
        request_id = response.get("ResponseMetadata", {}).get("RequestId") or (
            report.request_id if report else None
        )
        architecture = self._architecture(
            name, response.get("ExecutedVersion") or self._qualifier(memory_mb)
        )
        if memory_mb is None and report is None:
            with self._lock:
                memory_mb = self._memory.get(name)
        return InvokeResult(
            function=name,
            memory_mb=report.memory_mb if report else memory_mb,
            request_id=request_id,
            payload=payload,
            report=report,
            error=error,
            error_message=message,
            started_at=started_at,
            finished_at=self.clock.now(),
            architecture=architecture,
        )

    def _unrun(
        self,
        name: str,
        memory_mb: int | None,
        started_at: float,
        kind: ErrorKind,
        error: ClientError,
    ) -> InvokeResult:
        if memory_mb is None:
            with self._lock:
                memory_mb = self._memory.get(name)
        return InvokeResult(
            function=name,
            memory_mb=memory_mb,
            request_id=error.response.get("ResponseMetadata", {}).get("RequestId"),
            payload=None,
            report=None,
            error=kind,
            error_message=str(error),
            started_at=started_at,
            finished_at=self.clock.now(),
        )

    def _ambiguous(
        self, name: str, memory_mb: int | None, started_at: float, message: str
    ) -> InvokeResult:
        return InvokeResult(
            function=name,
            memory_mb=memory_mb,
            request_id=None,
            payload=None,
            report=None,
            error=ErrorKind.UNHANDLED,
            error_message=f"outcome unknown, the function may have run: {message}",
            ambiguous=True,
            started_at=started_at,
            finished_at=self.clock.now(),
            architecture=self._architecture(name, self._qualifier(memory_mb)),
        )

    @staticmethod
    def _qualifier(memory_mb: int | None) -> str:
        return variant_alias(memory_mb) if memory_mb is not None else LATEST

    def _architecture(self, name: str, qualifier: str) -> Architecture | None:
        """The architecture `qualifier` (a version, alias or $LATEST) of the function really
        runs on, which prices its invocations: read once per version from its configuration.
        None, with a warning, if the configuration cannot be read."""
        with self._lock:
            known = self._architectures.get((name, qualifier))
        if known is not None:
            return known
        try:
            config = self._control(
                lambda: self._lambda.get_function_configuration(
                    FunctionName=name, Qualifier=qualifier
                )
            )
        except (ClientError, BotoCoreError) as error:
            log.warning(
                "could not read the architecture of %s:%s (%s); its invocations are priced "
                "at the architecture the job spec names",
                name,
                qualifier,
                error,
            )
            return None
        # A configuration without `Architectures` is on Lambda's default, x86_64.
        return self._remember_architecture(name, config, qualifier) or "x86_64"

    def _remember_architecture(
        self, name: str, config: dict[str, Any], qualifier: str | None = None
    ) -> Architecture | None:
        """Cache a configuration's architecture under its version (immutable once published;
        $LATEST is refreshed by every read), never under an alias, which can move."""
        architectures = config.get("Architectures")
        if not architectures:
            return None
        architecture: Architecture = "arm64" if architectures[0] == "arm64" else "x86_64"
        version = str(config.get("Version") or qualifier or LATEST)
        with self._lock:
            self._architectures[(name, version)] = architecture
        return architecture

    # -- internals: configuration -------------------------------------------------------------

    def _control(
        self, call: Callable[[], Any], *, retry_on: Callable[[ClientError], bool] | None = None
    ) -> Any:
        if retry_on is None:
            return self.retrier.call(call)
        return self.retrier.call(call, retry_on=retry_on)

    def _configuration(self, name: str) -> dict[str, Any]:
        try:
            config = self._control(
                lambda: self._lambda.get_function_configuration(FunctionName=name)
            )
        except ClientError as error:
            if error_code(error) == NOT_FOUND:
                raise FunctionNotFoundError(f"function {name!r} does not exist") from error
            raise self._error("read", name, error) from error
        self._remember_insights(name, config)
        self._remember_architecture(name, config)
        return config

    def _remember_insights(self, name: str, config: dict[str, Any]) -> None:
        """Lambda Insights is on when the function has AWS's LambdaInsightsExtension layer;
        its `used_memory_max` is then read with the metrics, without being asked to."""
        layers = config.get("Layers") or []
        enabled = any(INSIGHTS_LAYER in str(layer.get("Arn", "")) for layer in layers)
        with self._lock:
            if enabled:
                self._insights.add(name)
            else:
                self._insights.discard(name)

    def _wait_settled(self, name: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
        """Poll until no create/update is in progress; raise if the last one failed."""
        for _ in range(self._update_polls):
            config = config or self._configuration(name)
            state = config.get("State", "Active")
            update = config.get("LastUpdateStatus", "Successful")
            if state == "Failed" or update == "Failed":
                reason = config.get("LastUpdateStatusReason") or config.get("StateReason")
                raise UpdateFailedError(f"{name}: configuration update failed: {reason}")
            if state != "Pending" and update != "InProgress":
                self._remember_insights(name, config)
                self._remember_architecture(name, config)
                if "MemorySize" in config:
                    with self._lock:
                        self._memory[name] = int(config["MemorySize"])
                return config
            self._sleep(self._update_poll_s)
            config = None
        raise UpdateFailedError(f"{name}: configuration update did not settle in time")

    def _update(self, name: str, updates: dict[str, Any]) -> dict[str, Any]:
        """A conditional UpdateFunctionConfiguration that waits until it has settled."""
        for _ in range(self.retrier.backoff.max_attempts):
            config = self._wait_settled(name)
            request = {"FunctionName": name, **updates}
            if config.get("RevisionId"):
                request["RevisionId"] = config["RevisionId"]
            try:
                updated = self._control(
                    lambda request=request: self._lambda.update_function_configuration(**request)
                )
            except ClientError as error:
                if error_code(error) == PRECONDITION_FAILED:
                    continue  # changed since we read it: read again and redo
                raise self._error("update", name, error) from error
            return self._wait_settled(name, updated)
        raise UpdateFailedError(f"{name}: kept changing underneath our update; gave up")

    def _publish(self, name: str, config: dict[str, Any]) -> dict[str, Any] | None:
        """Publish exactly the configuration read (conditional on its RevisionId); None if the
        function changed since."""
        publish: dict[str, Any] = {"FunctionName": name}
        if config.get("RevisionId"):
            publish["RevisionId"] = config["RevisionId"]
        try:
            return self._control(lambda: self._lambda.publish_version(**publish))
        except ClientError as error:
            if error_code(error) == PRECONDITION_FAILED:
                return None
            raise self._error("publish a version of", name, error) from error

    def _create(self, spec: FunctionSpec) -> None:
        if spec.code_zip is None or spec.role_arn is None or spec.handler is None:
            raise FunctionNotFoundError(
                f"function {spec.name!r} does not exist; deploy it, or give code_zip, "
                "role_arn and handler so that it can be created"
            )
        module, _, attribute = spec.handler.partition(":")
        request = {
            "FunctionName": spec.name,
            "Runtime": spec.runtime,
            "Role": spec.role_arn,
            "Handler": f"{module}.{attribute}",  # Lambda's Python handler: module.function
            "Code": {"ZipFile": spec.code_zip},
            "MemorySize": spec.memory_mb,
            "Timeout": math.ceil(spec.timeout_s),
            "Architectures": [spec.architecture],
            "Publish": False,
        }
        try:
            created = self._control(lambda: self._lambda.create_function(**request))
        except ClientError as error:
            raise self._error("create", spec.name, error) from error
        self._wait_settled(spec.name, created)

    def _known_variant(self, name: str, memory_mb: int) -> str:
        """The variant's alias, checked once per process (Lambda would fall back to nothing;
        an unknown qualifier must be an error, not a run at some other size)."""
        alias = variant_alias(memory_mb)
        with self._lock:
            if (name, alias) in self._variants:
                return alias
        if not self._alias_exists(name, alias):
            raise VariantNotFoundError(f"{name}: no variant {alias}; call ensure_variant first")
        with self._lock:
            self._variants.add((name, alias))
        return alias

    def _alias_exists(self, name: str, alias: str) -> bool:
        try:
            self._control(lambda: self._lambda.get_alias(FunctionName=name, Name=alias))
            return True
        except ClientError as error:
            if error_code(error) == NOT_FOUND:
                self._configuration(name)  # a missing function is an error, not a missing alias
                return False
            raise self._error("read alias of", name, error) from error

    @contextmanager
    def _mutating(self, name: str) -> Iterator[None]:
        """Serialise this process's changes to one function; hold its invokes meanwhile."""
        with self._lock:
            lock = self._function_locks.setdefault(name, threading.Lock())
        with lock:
            with self._lock:
                self._updating[name] = self._updating.get(name, 0) + 1
            try:
                yield
            finally:
                with self._lock:
                    self._updating[name] -= 1
                    if not self._updating[name]:
                        del self._updating[name]
                    self._settled.notify_all()

    def _wait_until_not_updating(self, name: str) -> None:
        with self._lock:
            self._settled.wait_for(lambda: name not in self._updating)

    @staticmethod
    def _error(action: str, name: str, error: ClientError) -> PlatformError:
        return PlatformError(f"could not {action} {name}: {error_code(error)}: {error}")
