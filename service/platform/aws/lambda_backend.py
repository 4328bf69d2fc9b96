"""The AWS backend: the `Platform` interface over Lambda, CloudWatch and CloudWatch Logs.

Two ways to run a function at a memory size (docs/platform.md):

- **Variants**: `ensure_variant` publishes an immutable version at that memory and points alias
  ``mem-<MB>`` at it; invoking with `memory_mb` calls the alias. Sizes then run side by side and
  switching size needs no update at all. Only on functions the service owns (built-ins from
  `cescale deploy`; for a user's function, a copy: `sync_copy`), because publishing resizes
  `$LATEST`; every published version is checked for its size and code (service/platform/README.md).
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

import base64
import hashlib
import json
import logging
import math
import random
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
)

from service.platform.aws import insights as aws_insights
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
    is_refusal,
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

log = logging.getLogger(__name__)

COPY_DOWNLOAD_TIMEOUT_S = 120.0
MAX_ZIP_BYTES = 50 * 2**20  # Lambda's limit on a zip uploaded directly (ZipFile)
# Configuration a version carries besides memory: a variant must match $LATEST in all of these.
_FINGERPRINT = (
    "CodeSha256",
    "Handler",
    "Runtime",
    "Role",
    "Timeout",
    "Environment",
    "Layers",
    "Architectures",
    "ImageConfigResponse",
    "EphemeralStorage",
)
# What a copy of a user's function takes from it (UpdateFunctionConfiguration's fields).
_COPIED = ("Handler", "Runtime", "Role", "Timeout", "MemorySize")


@dataclass(frozen=True)
class FunctionCode:
    """A function's code as CreateFunction takes it: ``{"ZipFile": bytes}`` or
    ``{"ImageUri": uri}``; `sha256` (hex) of what Lambda will report, if known."""

    code: dict[str, Any]
    architecture: str = "x86_64"
    package_type: str = "Zip"
    sha256: str | None = None

    def matches(self, config: dict[str, Any]) -> bool:
        """Whether the function already runs this code on this architecture."""
        if (config.get("Architectures") or ["x86_64"]) != [self.architecture]:
            return False
        sha = self.sha256
        if sha is None and "ZipFile" in self.code:
            sha = base64.b64encode(hashlib.sha256(self.code["ZipFile"]).digest()).decode()
        if sha is None:  # an image by tag: only Lambda knows its digest; update to be sure
            return False
        return config.get("CodeSha256") == sha


def variant_memory(alias: str) -> int | None:
    """The memory of a variant alias ``mem-<MB>``; None for any other alias (an
    architecture's variant ``mem-<MB>-<architecture>`` too: see `variant_of`)."""
    prefix, _, size = alias.partition("-")
    if prefix != "mem" or not size.isdigit():
        return None
    return int(size)


def variant_of(alias: str) -> tuple[int, Architecture | None] | None:
    """(memory, architecture) of a variant alias: ``mem-<MB>`` (the function's own
    architecture, None) or ``mem-<MB>-<architecture>``; None for any other alias."""
    memory = variant_memory(alias)
    if memory is not None:
        return memory, None
    for architecture in ("x86_64", "arm64"):
        suffix = "-" + architecture.replace("_", "-")
        if alias.endswith(suffix):
            memory = variant_memory(alias.removesuffix(suffix))
            if memory is not None:
                return memory, architecture  # type: ignore[return-value]
    return None


def fingerprint(config: dict[str, Any], but: tuple[str, ...] = ()) -> str:
    """Everything a version runs except its memory size (and the fields in ``but``)."""

    def normal(key: str) -> Any:
        value = config.get(key)
        if key == "Layers":
            return sorted(str(layer.get("Arn")) for layer in value or [])
        if key == "Environment":
            return (value or {}).get("Variables") or {}
        return value

    return json.dumps(
        {key: normal(key) for key in _FINGERPRINT if key not in but}, sort_keys=True, default=str
    )


def copied_config(source: dict[str, Any]) -> dict[str, Any]:
    """The configuration a copy of `source` (GetFunction's Configuration) is created with."""
    config = {key: source[key] for key in _COPIED if source.get(key) is not None}
    if config.get("Runtime") is None:
        config.pop("Runtime", None)  # container images have none
    variables = (source.get("Environment") or {}).get("Variables")
    if variables:
        config["Environment"] = {"Variables": variables}
    layers = [layer["Arn"] for layer in source.get("Layers") or [] if layer.get("Arn")]
    if layers:
        config["Layers"] = layers
    if source.get("EphemeralStorage"):
        config["EphemeralStorage"] = {"Size": source["EphemeralStorage"]["Size"]}
    image = (source.get("ImageConfigResponse") or {}).get("ImageConfig")
    if image:
        config["ImageConfig"] = image
    return config


def config_changes(current: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """The UpdateFunctionConfiguration fields of `wanted` that `current` does not have yet
    (MemorySize excepted: the service sets it per variant)."""
    changes: dict[str, Any] = {}
    for key, value in wanted.items():
        if key == "MemorySize":
            continue
        have = current.get(key)
        if key == "Environment":
            have = {"Variables": (have or {}).get("Variables") or {}}
        elif key == "Layers":
            have = [layer.get("Arn") for layer in have or []]
        elif key == "ImageConfig":
            have = (current.get("ImageConfigResponse") or {}).get("ImageConfig")
        elif key == "EphemeralStorage":
            have = {"Size": (have or {}).get("Size")}
        if have != value:
            changes[key] = value
    return changes


def _already_exists(error: ClientError) -> bool:
    return is_conflict(error) and "exist" in str(error)


def _retry_create(error: ClientError) -> bool:
    """Refusals, and IAM's eventual consistency: a role created moments ago is not yet
    assumable by Lambda ("The role defined for the function cannot be assumed by Lambda")."""
    if _already_exists(error):
        return False
    return is_refusal(error) or (
        error_code(error) == "InvalidParameterValueException" and "assumed" in str(error)
    )


def _qualified(source: str) -> bool:
    """Whether a function name or ARN ends with a qualifier (version or alias)."""
    return source.split(":function:")[-1].count(":") == 1


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
        concurrency_fallback: int = 1000,
    ) -> None:
        self.clients = clients
        self.clock: Clock = clock or WallClock()
        self.lambda_insights = lambda_insights
        self.retrier = Retrier(backoff, sleep=sleep, rng=rng)
        self._sleep = sleep
        self._update_polls = max(1, math.ceil(update_timeout_s / update_poll_s))
        self._update_poll_s = update_poll_s
        self._concurrency_fallback = concurrency_fallback
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
        options.setdefault("concurrency_fallback", settings.aws_concurrency_limit)
        return cls(make_clients(settings.aws_region, settings.aws_endpoint_url), **options)

    # -- functions ----------------------------------------------------------------------------

    def ensure_function(self, spec: FunctionSpec) -> None:
        if spec.copy_of is not None:
            self.sync_copy(spec.copy_of, spec.name, timeout_s=spec.timeout_s)
            return
        try:
            self._configuration(spec.name)
        except FunctionNotFoundError:
            self._create(spec)
            return
        with self._mutating(spec.name):
            config = self._wait_settled(spec.name)
            architectures = config.get("Architectures") or ["x86_64"]
            if architectures != [spec.architecture]:
                raise PlatformError(
                    f"{spec.name} runs on {architectures[0]} but the job asks for "
                    f"{spec.architecture}: redeploy it with "
                    f"`cescale deploy --architecture {spec.architecture}`"
                )
            updates: dict[str, Any] = {}
            if config.get("MemorySize") != spec.memory_mb:
                updates["MemorySize"] = spec.memory_mb
            if config.get("Timeout") != math.ceil(spec.timeout_s):
                updates["Timeout"] = math.ceil(spec.timeout_s)
            if updates:
                self._update(spec.name, updates)

    def ensure_variant(
        self, name: str, memory_mb: int, architecture: Architecture | None = None
    ) -> str:
        """Alias ``mem-<MB>`` → a version with exactly that memory and $LATEST's code and
        configuration. Only for functions the service owns (built-ins, copies): publishing a
        version resizes $LATEST, which no one invokes on them (service/platform/README.md).

        With ``architecture``: alias ``mem-<MB>-<architecture>`` → a version on that
        architecture, with $LATEST's code and configuration otherwise. Lambda changes a
        function's architecture only with its code (UpdateFunctionCode with
        ``Architectures``): $LATEST is moved to it with its own code, published, and moved
        back (``_publish_on``). The code must run on both (pure Python, or a package built
        for both)."""
        alias = variant_alias(memory_mb, architecture)
        with self._lock:
            if (name, alias) in self._variants:
                return alias
        if not self._variant_current(name, alias, memory_mb, architecture):
            with self._mutating(name):
                if not self._variant_current(name, alias, memory_mb, architecture):
                    if architecture is None:
                        self._publish_variant(name, alias, memory_mb)
                    else:
                        self._publish_on(name, alias, memory_mb, architecture)
        with self._lock:
            self._variants.add((name, alias))
        return alias

    def refresh_variants(self, name: str) -> list[str]:
        """Re-publish every ``mem-<MB>`` alias of `name` whose version no longer has $LATEST's
        code and configuration (after a code update): an alias never keeps running old code.
        Returns the aliases re-pointed."""
        moved = []
        with self._mutating(name):
            for alias in self._list_aliases(name):
                variant = variant_of(alias["Name"])
                if variant is None:
                    continue
                memory_mb, architecture = variant
                if not self._variant_current(name, alias["Name"], memory_mb, architecture):
                    if architecture is None:
                        self._publish_variant(name, alias["Name"], memory_mb)
                    else:
                        self._publish_on(name, alias["Name"], memory_mb, architecture)
                    moved.append(alias["Name"])
        return moved

    def put_function(
        self,
        name: str,
        code: FunctionCode,
        config: dict[str, Any],
        *,
        initial: dict[str, Any] | None = None,
    ) -> tuple[str, list[str]]:
        """Create `name`, or bring its code and configuration to these; waits until settled
        and re-publishes its variants after a change. Returns what was done ("created",
        "updated" or "unchanged") and the variant aliases re-pointed. `config` holds
        CreateFunction's configuration fields (Role, Handler, Runtime, Environment, ...)
        except Code and Architectures; `initial` fields are set only on creation."""
        with self._mutating(name):
            try:
                current = self._configuration(name)
            except FunctionNotFoundError:
                if self._create_function(name, code, {**(initial or {}), **config}):
                    return "created", []
                current = self._configuration(name)  # another replica created it meanwhile
            current = self._wait_settled(name, current)
            changed = False
            if not code.matches(current):
                request = {"FunctionName": name, **code.code, "Architectures": [code.architecture]}
                if current.get("RevisionId"):
                    request["RevisionId"] = current["RevisionId"]
                try:
                    updated = self._control(lambda: self._lambda.update_function_code(**request))
                except ClientError as error:
                    raise self._error("update the code of", name, error) from error
                current = self._wait_settled(name, updated)
                changed = True
            updates = config_changes(current, config)
            if updates:
                current = self._update(name, updates)
                changed = True
        if not changed:
            return "unchanged", []
        return "updated", self.refresh_variants(name)

    def _create_function(self, name: str, code: FunctionCode, config: dict[str, Any]) -> bool:
        """CreateFunction, waiting until active; False if it exists already (a race)."""
        request = {
            "FunctionName": name,
            "Code": code.code,
            "Architectures": [code.architecture],
            "PackageType": code.package_type,
            "Publish": False,
            **config,
        }
        try:
            created = self._control(
                lambda: self._lambda.create_function(**request), retry_on=_retry_create
            )
        except ClientError as error:
            if _already_exists(error):
                return False
            raise self._error("create", name, error) from error
        self._wait_settled(name, created)
        return True

    def sync_copy(
        self, source: str, name: str, *, timeout_s: float | None = None
    ) -> tuple[str, list[str]]:
        """Make `name` a copy of the user's function `source` (name, ``name:qualifier`` or
        ARN): same code (from GetFunction's code location or image), handler, runtime, role,
        environment and layers. Re-copied, and its variants re-published, when the source
        changed. Returns what `put_function` did."""
        function, _, qualifier = source.rpartition(":") if _qualified(source) else (source, "", "")
        request: dict[str, Any] = {"FunctionName": function}
        if qualifier:
            request["Qualifier"] = qualifier
        try:
            found = self._control(lambda: self._lambda.get_function(**request))
        except ClientError as error:
            if error_code(error) == NOT_FOUND:
                raise FunctionNotFoundError(f"function {source!r} does not exist") from error
            raise self._error("read", source, error) from error
        config = found["Configuration"]
        code = self._source_code(source, config, found.get("Code") or {})
        wanted = copied_config(config)
        if timeout_s is not None:
            wanted["Timeout"] = math.ceil(timeout_s)
        return self.put_function(name, code, wanted)

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
        """The account's concurrency limit (GetAccountSettings, read once). When that call is
        denied or missing (a role without lambda:GetAccountSettings, an emulator without it),
        the configured fallback, with one warning."""
        if self._concurrency_limit is None:
            try:
                settings = self._control(lambda: self._lambda.get_account_settings())
                limit = int(settings["AccountLimit"]["ConcurrentExecutions"])
            except (ClientError, KeyError, TypeError, ValueError) as error:
                reason = (
                    f"{error_code(error)}: {str(error).splitlines()[0][:200]}"
                    if isinstance(error, ClientError)
                    else repr(error)
                )
                log.warning(
                    "could not read the Lambda account settings (%s); planning with a "
                    "concurrency limit of %d (CESCALE_AWS_CONCURRENCY_LIMIT)",
                    reason,
                    self._concurrency_fallback,
                )
                limit = self._concurrency_fallback
            self._concurrency_limit = limit
        return self._concurrency_limit

    # -- invocations --------------------------------------------------------------------------

    def invoke(
        self,
        name: str,
        payload: Any,
        *,
        memory_mb: int | None = None,
        architecture: Architecture | None = None,
    ) -> InvokeResult:
        return self._invoke(name, payload, memory_mb, self.clock.now(), architecture)

    def start_invoke(
        self,
        name: str,
        payload: Any,
        *,
        memory_mb: int | None = None,
        architecture: Architecture | None = None,
    ) -> InvocationHandle:
        if architecture is not None and memory_mb is None:
            raise ValueError("an architecture selects a memory variant: give memory_mb too")
        if memory_mb is not None:
            # fail here, as the emulator does (cached)
            self._known_variant(name, memory_mb, architecture)
        handle = InvocationHandle(uuid.uuid4().hex, name, memory_mb, self.clock.now())
        future = self._executor.submit(
            self._invoke, name, payload, memory_mb, handle.started_at, architecture
        )
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

    def find_cpu_times(
        self, name: str, start: float, end: float, request_ids: frozenset[str]
    ) -> dict[str, float]:
        """CPU time by request id from Lambda Insights' events in ``/aws/lambda-insights``
        (``insights.py``); ``{}`` without a call for a function without Insights, which writes
        none (the extension's layer, as last read, or ``lambda_insights``)."""
        with self._lock:
            insights = self.lambda_insights or name in self._insights
        if not insights or not request_ids:
            return {}
        try:
            return self.retrier.call(
                lambda: aws_insights.find_cpu_times(
                    self.clients.logs, name, start, end, frozenset(request_ids)
                ),
                retry_on=is_throttle,
            )
        except ClientError as error:
            raise self._error("read the Lambda Insights events of", name, error) from error

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
        self,
        name: str,
        payload: Any,
        memory_mb: int | None,
        started_at: float,
        architecture: Architecture | None = None,
    ) -> InvokeResult:
        request: dict[str, Any] = {
            "FunctionName": name,
            "InvocationType": "RequestResponse",
            "LogType": "Tail",
            "Payload": json.dumps(payload).encode("utf-8"),
        }
        if memory_mb is not None:
            request["Qualifier"] = self._known_variant(name, memory_mb, architecture)
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
                        alias = variant_alias(memory_mb, architecture)
                        raise VariantNotFoundError(
                            f"{name}: no variant {alias}; call ensure_variant"
                        ) from error
                    raise FunctionNotFoundError(f"function {name!r} does not exist") from error
                if status >= 500:
                    return self._ambiguous(name, memory_mb, started_at, str(error), architecture)
                raise self._error("invoke", name, error) from error
            except (EndpointConnectionError, ConnectTimeoutError) as error:
                # Never connected, so never sent: safe to try again.
                if last:
                    raise PlatformError(f"cannot reach Lambda to invoke {name}: {error}") from error
                self.retrier.wait(attempt)
                continue
            except HTTPClientError as error:  # read timeout, connection closed after sending
                return self._ambiguous(name, memory_mb, started_at, str(error), architecture)
            return self._result(name, memory_mb, started_at, response, architecture)
        raise AssertionError("unreachable")  # pragma: no cover

    def _result(
        self,
        name: str,
        memory_mb: int | None,
        started_at: float,
        response: dict[str, Any],
        architecture_asked: Architecture | None = None,
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
            name, response.get("ExecutedVersion") or self._qualifier(memory_mb, architecture_asked)
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
        self,
        name: str,
        memory_mb: int | None,
        started_at: float,
        message: str,
        architecture_asked: Architecture | None = None,
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
            architecture=self._architecture(name, self._qualifier(memory_mb, architecture_asked)),
        )

    @staticmethod
    def _qualifier(memory_mb: int | None, architecture: Architecture | None = None) -> str:
        return variant_alias(memory_mb, architecture) if memory_mb is not None else LATEST

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

    def _configuration(self, name: str, *, qualifier: str | None = None) -> dict[str, Any]:
        request = {"FunctionName": name}
        if qualifier is not None:
            request["Qualifier"] = qualifier
        try:
            config = self._control(lambda: self._lambda.get_function_configuration(**request))
        except ClientError as error:
            if error_code(error) == NOT_FOUND:
                raise FunctionNotFoundError(f"function {name!r} does not exist") from error
            raise self._error("read", name, error) from error
        if qualifier is None:
            self._remember_insights(name, config)
        self._remember_architecture(name, config, qualifier)
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
                f"function {spec.name!r} does not exist; run `cescale deploy` to create the "
                "built-in functions"
            )
        module, _, attribute = spec.handler.partition(":")
        self.put_function(
            spec.name,
            FunctionCode({"ZipFile": spec.code_zip}, spec.architecture),
            {
                "Runtime": spec.runtime,
                "Role": spec.role_arn,
                "Handler": f"{module}.{attribute}",  # Lambda's Python handler: module.function
            },
            initial={"MemorySize": spec.memory_mb, "Timeout": math.ceil(spec.timeout_s)},
        )

    def _source_code(
        self, source: str, config: dict[str, Any], code: dict[str, Any]
    ) -> FunctionCode:
        architecture = (config.get("Architectures") or ["x86_64"])[0]
        if config.get("PackageType") == "Image":
            image = code.get("ResolvedImageUri") or code.get("ImageUri")
            if not image:
                raise PlatformError(f"{source}: GetFunction returned no image URI to copy")
            return FunctionCode({"ImageUri": image}, architecture, "Image", config["CodeSha256"])
        location = code.get("Location")
        if not location:
            raise PlatformError(f"{source}: GetFunction returned no code location to copy")
        try:
            with urllib.request.urlopen(location, timeout=COPY_DOWNLOAD_TIMEOUT_S) as response:
                data = response.read(MAX_ZIP_BYTES + 1)
        except OSError as error:
            raise PlatformError(f"could not download the code of {source}: {error}") from error
        if len(data) > MAX_ZIP_BYTES:
            raise PlatformError(
                f"the code of {source} is larger than the {MAX_ZIP_BYTES // 2**20} MB "
                "a direct upload takes; package it as a container image to run it with cescale"
            )
        return FunctionCode({"ZipFile": data}, architecture, "Zip", config["CodeSha256"])

    def _variant_current(
        self, name: str, alias: str, memory_mb: int, architecture: Architecture | None = None
    ) -> bool:
        """Alias exists and its version has this memory and $LATEST's code and configuration
        (with ``architecture``: runs on it, and has $LATEST's code and all else)."""
        try:
            target = self._control(lambda: self._lambda.get_alias(FunctionName=name, Name=alias))
        except ClientError as error:
            if error_code(error) == NOT_FOUND:
                self._configuration(name)  # a missing function is an error, not a missing alias
                return False
            raise self._error("read alias of", name, error) from error
        version = self._configuration(name, qualifier=target["FunctionVersion"])
        latest = self._configuration(name)
        if architecture is not None:
            on = (version.get("Architectures") or ["x86_64"]) == [architecture]
            return (
                on
                and int(version["MemorySize"]) == memory_mb
                and fingerprint(version, but=("Architectures",))
                == fingerprint(latest, but=("Architectures",))
            )
        return int(version["MemorySize"]) == memory_mb and fingerprint(version) == fingerprint(
            latest
        )

    def _publish_variant(self, name: str, alias: str, memory_mb: int) -> None:
        """Set $LATEST to `memory_mb`, publish it (conditional on the RevisionId read), check
        the version has exactly that memory, point the alias at it, then check $LATEST's code
        did not change meanwhile (a concurrent deploy lists aliases only after its code
        update, so it either sees this alias or we see its code). Redone on any mismatch."""
        for attempt in range(self.retrier.backoff.max_attempts):
            config = self._wait_settled(name)
            if config["MemorySize"] != memory_mb:
                config = self._update(name, {"MemorySize": memory_mb})
            version = self._publish(name, config)
            if (
                version is not None
                and version.get("MemorySize") == memory_mb
                and fingerprint(version) == fingerprint(config)
            ):
                self._point_alias(name, alias, version["Version"])
                if fingerprint(self._configuration(name)) == fingerprint(version):
                    return
            # Another controller or a deploy changed the function between our update and the
            # publish, or the code moved on: read again and redo, after a jittered pause.
            self.retrier.wait(attempt)
        raise UpdateFailedError(f"{name}: kept changing while publishing {memory_mb} MB; gave up")

    def _publish_on(
        self, name: str, alias: str, memory_mb: int, architecture: Architecture
    ) -> None:
        """Publish `memory_mb` on `architecture` under `alias`: UpdateFunctionCode moves
        $LATEST to that architecture with its own code (read back with GetFunction: Lambda
        takes ``Architectures`` only with code), the version is published as any variant
        (`_publish_variant`), and $LATEST moves back to the architecture it had, whatever
        happened. Every version is immutable: the function's other variants keep running
        meanwhile. The caller holds `_mutating(name)`."""
        config = self._wait_settled(name)
        home = (config.get("Architectures") or ["x86_64"])[0]
        if home == architecture:
            self._publish_variant(name, alias, memory_mb)
            return
        try:
            found = self._control(lambda: self._lambda.get_function(FunctionName=name))
        except ClientError as error:
            raise self._error("read the code of", name, error) from error
        code = self._source_code(name, found["Configuration"], found.get("Code") or {})
        self._put_code(name, replace(code, architecture=architecture))
        try:
            self._publish_variant(name, alias, memory_mb)
        finally:
            self._put_code(name, replace(code, architecture=home))

    def _put_code(self, name: str, code: FunctionCode) -> dict[str, Any]:
        """UpdateFunctionCode with ``Architectures`` (conditional on the RevisionId read), then
        wait until it has settled."""
        current = self._wait_settled(name)
        request = {"FunctionName": name, **code.code, "Architectures": [code.architecture]}
        if current.get("RevisionId"):
            request["RevisionId"] = current["RevisionId"]
        try:
            updated = self._control(lambda: self._lambda.update_function_code(**request))
        except ClientError as error:
            raise self._error(f"move to {code.architecture} the code of", name, error) from error
        return self._wait_settled(name, updated)

    def _point_alias(self, name: str, alias: str, version: str) -> None:
        try:
            self._control(
                lambda: self._lambda.create_alias(
                    FunctionName=name, Name=alias, FunctionVersion=version
                ),
                retry_on=is_throttle,
            )
            return
        except ClientError as error:
            # Lambda says ResourceConflictException; moto says ConflictException
            if not (is_conflict(error) or error_code(error) == "ConflictException"):
                raise self._error("create alias for", name, error) from error
        try:  # it exists: re-point it (another controller's version at this size is as good)
            self._control(
                lambda: self._lambda.update_alias(
                    FunctionName=name, Name=alias, FunctionVersion=version
                )
            )
        except ClientError as error:
            raise self._error("update alias of", name, error) from error

    def _list_aliases(self, name: str) -> list[dict[str, Any]]:
        aliases: list[dict[str, Any]] = []
        request: dict[str, Any] = {"FunctionName": name}
        while True:
            try:
                page = self._control(lambda: self._lambda.list_aliases(**request))
            except ClientError as error:
                if error_code(error) == NOT_FOUND:
                    raise FunctionNotFoundError(f"function {name!r} does not exist") from error
                raise self._error("list aliases of", name, error) from error
            aliases += page.get("Aliases", [])
            if not page.get("NextMarker"):
                return aliases
            request["Marker"] = page["NextMarker"]

    def _known_variant(
        self, name: str, memory_mb: int, architecture: Architecture | None = None
    ) -> str:
        """The variant's alias, checked once per process (Lambda would fall back to nothing;
        an unknown qualifier must be an error, not a run at some other size)."""
        alias = variant_alias(memory_mb, architecture)
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
