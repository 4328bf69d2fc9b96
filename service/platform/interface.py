"""The one interface through which the control plane acts on serverless functions.

Two implementations stand behind it: the embedded emulator (`service.platform.emulator`) and AWS
Lambda (`service.platform.aws`). Everything here is plain data plus a `Protocol`, so the
decision code above (control loop, policies) can be written and tested against either one.

Invocations come in two shapes because the control loop must never block on a function:
`invoke` waits for the result, while `start_invoke` returns a handle at once and `poll` returns
the result once it has completed on the platform's clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from service.domain import lambda_limits
from service.domain.lambda_limits import MAX_MEMORY_MB, MIN_MEMORY_MB
from service.platform.clock import Clock

MAX_TIMEOUT_S = float(lambda_limits.MAX_TIMEOUT_S)

Architecture = Literal["x86_64", "arm64"]
JSONValue = Any


class ErrorKind(StrEnum):
    """How an invocation ended. Only NONE means the function returned normally."""

    NONE = "none"
    HANDLED = "handled"  # the function reported an error itself (X-Amz-Function-Error: Handled)
    UNHANDLED = "unhandled"  # the handler raised / the runtime failed
    TIMEOUT = "timeout"  # ran past its timeout; not a memory signal (docs/safety.md)
    OUT_OF_MEMORY = "out_of_memory"  # peak use exceeded memory size; raise memory and retry
    THROTTLED = "throttled"  # rejected before running (concurrency); not billed


class PlatformError(Exception):
    """A request the platform could not carry out (not an invocation outcome)."""


class FunctionNotFoundError(PlatformError):
    pass


class VariantNotFoundError(PlatformError):
    """Invoked a memory variant that `ensure_variant` has not created."""


class UpdateFailedError(PlatformError):
    """A configuration update ended in LastUpdateStatus=Failed or did not settle in time."""


def check_memory(memory_mb: int) -> int:
    """Memory sizes are whole MB in Lambda's range (docs/platform.md)."""
    if not isinstance(memory_mb, int) or isinstance(memory_mb, bool):
        raise ValueError(f"memory must be a whole number of MB, got {memory_mb!r}")
    if not MIN_MEMORY_MB <= memory_mb <= MAX_MEMORY_MB:
        raise ValueError(
            f"memory must be between {MIN_MEMORY_MB} and {MAX_MEMORY_MB} MB, got {memory_mb}"
        )
    return memory_mb


def variant_alias(memory_mb: int, architecture: Architecture | None = None) -> str:
    """The alias a memory variant is published under: one immutable version per size, on the
    function's own architecture (``mem-<MB>``) or, for a job whose architecture is "auto", on
    a named one (``mem-<MB>-<architecture>``: a version keeps the architecture it was
    published with, so both can run side by side)."""
    alias = f"mem-{check_memory(memory_mb)}"
    if architecture is None:
        return alias
    if architecture not in ("x86_64", "arm64"):
        raise ValueError(f"architecture must be x86_64 or arm64, got {architecture!r}")
    return f"{alias}-{architecture.replace('_', '-')}"


MAX_ARM64_SPEED = 4.0


def check_arm64_speed(speed: float) -> float:
    """A workload's speed on arm64 relative to x86_64: positive, at most ``MAX_ARM64_SPEED``."""
    if not 0.0 < speed <= MAX_ARM64_SPEED:
        raise ValueError(f"arm64_speed must be within (0, {MAX_ARM64_SPEED:g}], got {speed!r}")
    return speed


@dataclass(frozen=True)
class Traits:
    """How a workload uses the CPU and memory; the emulator's performance-model inputs.

    This is the body of a *code profile* (what `cescale profile` writes). `cpu_ms` and
    `peak_memory_mb` are used only when no code is run; when the emulator runs the handler it
    measures them. `io_ms=None` means: measured as the run's wall time not spent on CPU.
    `cold_cpu_ms` (no code run) is CPU work that only the first invocation in a new execution
    environment does, on top of `cpu_ms` and billed in its duration: a handler that loads and
    caches its dataset on first use. Run code shows it in its measured CPU time.
    `arm64_speed` is how fast the workload runs on arm64 relative to x86_64 (1.0: as fast;
    0.85: an invocation takes 1/0.85 times as long); init time is the same on both.
    """

    parallel_fraction: float = 0.0
    max_threads: int = 1
    io_ms: float | None = None
    init_ms: float | None = None
    cpu_ms: float | None = None
    peak_memory_mb: float | None = None
    cold_cpu_ms: float = 0.0
    arm64_speed: float = 1.0  # speed on arm64 relative to x86_64 (0.85: runs at 0.85× the speed)

    def __post_init__(self) -> None:
        check_arm64_speed(self.arm64_speed)
        if not 0.0 <= self.parallel_fraction <= 1.0:
            raise ValueError("parallel_fraction must be within [0, 1]")
        if self.max_threads < 1:
            raise ValueError("max_threads must be at least 1")
        for name in ("io_ms", "init_ms", "cpu_ms", "peak_memory_mb", "cold_cpu_ms"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative")


@dataclass(frozen=True)
class FunctionSpec:
    """A function the control plane runs.

    `handler` is an import path ``package.module:callable`` with Lambda's signature
    ``handler(event: dict, context) -> dict``; the emulator imports and runs it, the AWS
    backend deploys it as ``package.module.callable`` when it creates the function.
    `traits` or `profile` (a code profile or a measured profile file) tell the emulator how the
    workload scales; without either it measures the code and assumes single-threaded CPU work.
    `code_zip`, `role_arn` and `runtime` are needed only for the AWS backend to create a
    function that does not exist yet. `copy_of` (AWS only) names someone else's function that
    this one is a copy of: the backend creates `name` from that function's code and
    configuration and keeps it in step, so that it can publish memory variants without ever
    changing what the original's own callers run.
    """

    name: str
    handler: str | None = None
    memory_mb: int = 1024
    timeout_s: float = 60.0
    architecture: Architecture = "x86_64"
    traits: Traits | None = None
    profile: Path | None = None
    code_zip: bytes | None = field(default=None, repr=False)
    role_arn: str | None = None
    runtime: str = "python3.11"
    copy_of: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("function name must not be empty")
        check_memory(self.memory_mb)
        if not 0 < self.timeout_s <= MAX_TIMEOUT_S:
            raise ValueError(f"timeout must be within (0, {MAX_TIMEOUT_S:g}] s")
        if self.architecture not in ("x86_64", "arm64"):
            raise ValueError("architecture must be x86_64 or arm64")
        if self.handler is not None and ":" not in self.handler:
            raise ValueError("handler must look like 'package.module:callable'")


@dataclass(frozen=True)
class Report:
    """One invocation's REPORT record, as Lambda writes it to the log."""

    request_id: str
    duration_ms: float
    billed_ms: int
    memory_mb: int
    max_memory_used_mb: int
    init_ms: float | None = None  # present only on a cold start
    status: str | None = None  # newer runtimes: "timeout" / "error" on failed invocations
    error_type: str | None = None  # e.g. "Runtime.OutOfMemory"
    # CPU time the run used, init excluded (Lambda Insights' ``cpu_total_time``, which is not on
    # the REPORT line itself); None when the platform does not report it
    cpu_ms: float | None = None

    @property
    def cold(self) -> bool:
        return self.init_ms is not None


@dataclass(frozen=True)
class InvocationHandle:
    """A started invocation; pass it to `poll`. `invocation_id` is ours, not Lambda's."""

    invocation_id: str
    function: str
    memory_mb: int | None
    started_at: float


@dataclass(frozen=True)
class InvokeResult:
    """What one invocation returned and what it cost to run.

    `ambiguous` means the outcome is unknown (read timeout, 5xx after the request was sent):
    the code may have run. Such a result has no report and error UNHANDLED; reconcile it with
    `find_reports` before acting on it. `started_at`/`finished_at` are clock seconds.
    `architecture` is the one the function really ran on (read from its configuration), which
    prices the run; None when the platform could not tell.
    """

    function: str
    memory_mb: int | None
    request_id: str | None
    payload: JSONValue
    report: Report | None
    error: ErrorKind
    error_message: str | None = None
    ambiguous: bool = False
    started_at: float = 0.0
    finished_at: float = 0.0
    architecture: Architecture | None = None

    @property
    def ok(self) -> bool:
        return self.error is ErrorKind.NONE and not self.ambiguous

    @property
    def cold(self) -> bool:
        return self.report is not None and self.report.cold


Datapoint = tuple[float, float]  # (timestamp in clock seconds, value)


@dataclass(frozen=True)
class FunctionMetrics:
    """CloudWatch-shaped series, one datapoint per period that has data.

    A period with no datapoint is *unknown* (CloudWatch emits nothing when nothing was
    recorded, and data arrive late): callers must not read a missing point as zero.
    `memory_used_max` comes from REPORT records (emulator) or Lambda Insights (AWS, when enabled).
    """

    function: str
    period_s: int
    invocations: tuple[Datapoint, ...] = ()
    duration_avg: tuple[Datapoint, ...] = ()
    duration_max: tuple[Datapoint, ...] = ()
    errors: tuple[Datapoint, ...] = ()
    throttles: tuple[Datapoint, ...] = ()
    memory_used_max: tuple[Datapoint, ...] = ()


@runtime_checkable
class Platform(Protocol):
    """Everything the control plane does to functions."""

    clock: Clock

    def ensure_function(self, spec: FunctionSpec) -> None:
        """Make the function exist with this configuration (idempotent)."""
        ...

    def ensure_variant(
        self, name: str, memory_mb: int, architecture: Architecture | None = None
    ) -> str:
        """Make a memory variant exist (AWS: version + alias ``mem-<MB>``); return its alias.
        With ``architecture``, the variant runs on that architecture whatever the function's
        own is (alias ``mem-<MB>-<architecture>``, see `variant_alias`)."""
        ...

    def set_memory(self, name: str, memory_mb: int) -> None:
        """Change the function's own memory in place; returns once the update has settled.

        Every memory change starts cold: new configuration, new execution environments.
        """
        ...

    def memory_of(self, name: str) -> int:
        """The function's current in-place memory size."""
        ...

    def invoke(
        self,
        name: str,
        payload: JSONValue,
        *,
        memory_mb: int | None = None,
        architecture: Architecture | None = None,
    ) -> InvokeResult:
        """Invoke and wait. `memory_mb` selects a variant; None runs the function in place.
        `architecture` (with `memory_mb`) selects the variant published on that architecture."""
        ...

    def start_invoke(
        self,
        name: str,
        payload: JSONValue,
        *,
        memory_mb: int | None = None,
        architecture: Architecture | None = None,
    ) -> InvocationHandle:
        """Start an invocation without waiting for it."""
        ...

    def poll(self, handle: InvocationHandle) -> InvokeResult | None:
        """The result once the invocation has completed, else None. Never blocks for long."""
        ...

    def metrics(
        self,
        name: str,
        start: float,
        end: float,
        *,
        period_s: int = 60,
        memory_mb: int | None = None,
    ) -> FunctionMetrics:
        """Metric series over [start, end) (clock seconds), optionally of one variant."""
        ...

    def find_reports(
        self,
        name: str,
        start: float,
        end: float,
        *,
        request_ids: frozenset[str] | None = None,
    ) -> list[Report]:
        """REPORT records logged in [start, end), e.g. for invocations not seen synchronously."""
        ...

    def find_cpu_times(
        self, name: str, start: float, end: float, request_ids: frozenset[str]
    ) -> dict[str, float]:
        """CPU time (ms) of those of `request_ids` that ran in [start, end], by request id:
        Lambda Insights' ``cpu_total_time``, which arrives after the result (AWS). A request
        whose figure is not known (yet) is absent; ``{}`` when the platform has none."""
        ...

    def concurrency_limit(self) -> int:
        """The account's concurrent-executions limit."""
        ...

    def close(self) -> None:
        """Release worker processes, threads and connections."""
        ...
