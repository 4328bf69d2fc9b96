"""The emulator: a local stand-in for Lambda and CloudWatch (docs/platform.md).

It runs real handler code in worker processes (`runner.py`) and reports Lambda-shaped results
whose durations come from the performance model (`model.py`, `execution.py`) rather than from
this machine's wall clock. What the platform itself decides is modelled here:

- Execution environments per (function, variant): an invocation reuses an idle environment
  that finished less than `keep_alive_s` ago (warm), otherwise it starts a new one (cold: init
  runs, is reported and billed). Changing a function's memory drops its environments, so every
  memory change starts cold (docs/platform.md).
- Concurrency: at most `concurrency_limit` invocations in flight across the account; beyond
  that an invocation is throttled at once (not run, not billed).
- Time: an invocation completes `init + duration` after it starts, on the injected clock.
  `poll` reports it only once `clock.now()` has reached that time: instantly on a
  `VirtualClock` the simulation driver advances, after the modelled duration on the `WallClock`.

All randomness (noise, request ids) comes from one seeded RNG, drawn when an invocation
starts, so a simulation with a seed replays identically (up to the CPU time real code measures).
"""

from __future__ import annotations

import itertools
import math
import random
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

from service.platform import report as report_format
from service.platform.clock import Clock, WallClock
from service.platform.emulator import execution
from service.platform.emulator.model import DEFAULT_SIGMA, RUNTIME_INIT_MS
from service.platform.emulator.profiles import (
    CodeProfile,
    MeasuredProfile,
    ProfileError,
    load_profile,
)
from service.platform.emulator.runner import RunOutcome, Task, WorkerPool
from service.platform.interface import (
    Architecture,
    Datapoint,
    ErrorKind,
    FunctionMetrics,
    FunctionNotFoundError,
    FunctionSpec,
    InvocationHandle,
    InvokeResult,
    PlatformError,
    Report,
    Traits,
    VariantNotFoundError,
    check_memory,
    variant_alias,
)

DEFAULT_KEEP_ALIVE_S = 300.0
_ENVIRONMENT_IDS = itertools.count(1)
DEFAULT_CONCURRENCY_LIMIT = 1000  # Lambda's default account quota per region


@dataclass
class _Function:
    spec: FunctionSpec
    memory_mb: int
    traits: Traits
    profile: MeasuredProfile | None
    variants: set[int] = field(default_factory=set)
    # variants published on a named architecture (``variant_alias(memory, architecture)``)
    architecture_variants: set[tuple[int, Architecture]] = field(default_factory=set)


@dataclass
class _Environment:
    busy_until: float  # inf while an invocation of unknown length runs in it
    id: int = field(default_factory=lambda: next(_ENVIRONMENT_IDS))


@dataclass
class _Invocation:
    handle: InvocationHandle
    spec: FunctionSpec
    traits: Traits
    profile: MeasuredProfile | None
    memory_mb: int
    qualifier: str | None
    environment: _Environment | None
    conditions: execution.Conditions | None
    request_id: str
    future: Future[RunOutcome] | None = None
    result: InvokeResult | None = None


@dataclass(frozen=True)
class _Record:
    """One completed invocation, as CloudWatch and CloudWatch Logs would hold it."""

    qualifier: str | None
    started_at: float
    finished_at: float
    error: ErrorKind
    report: Report | None


class EmulatorPlatform:
    """`Platform` implementation backed by local worker processes and a performance model."""

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        seed: int | None = None,
        keep_alive_s: float = DEFAULT_KEEP_ALIVE_S,
        concurrency_limit: int = DEFAULT_CONCURRENCY_LIMIT,
        noise_sigma: float = DEFAULT_SIGMA,
        noise: bool = True,
        pool: WorkerPool | None = None,
        workers: int | None = None,
        slowdown: Callable[[float], float] | None = None,
        noise_key: Callable[[Any], str] | None = None,
    ) -> None:
        if keep_alive_s < 0 or concurrency_limit < 1 or noise_sigma < 0:
            raise ValueError("keep_alive_s >= 0, concurrency_limit >= 1, noise_sigma >= 0")
        self.clock: Clock = clock or WallClock()
        self.keep_alive_s = keep_alive_s
        self.noise_sigma = noise_sigma  # for code; a measured profile brings its own
        self.noise = noise  # False: every run at its median (exact, for tests and what-ifs)
        self._concurrency_limit = concurrency_limit
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._functions: dict[str, _Function] = {}
        self._environments: dict[tuple[str, str | None], list[_Environment]] = defaultdict(list)
        self._invocations: dict[str, _Invocation] = {}
        self._records: dict[str, list[_Record]] = defaultdict(list)
        self._import_ms: dict[str, float] = {}
        self._pool = pool
        self._owns_pool = pool is None
        self._workers = workers
        # clock time -> how many times slower runs starting then are (simulated drift)
        self.slowdown = slowdown
        # Common random numbers: with a key, an invocation's draws come from (seed, its
        # payload's key, how many invocations had that key before) instead of one stream, so
        # the same task draws the same noise under every policy (simulation/platform.py).
        self.noise_key = noise_key
        self._seed = seed
        self._keyed: dict[str, int] = defaultdict(int)

    # -- functions ----------------------------------------------------------------------------

    def ensure_function(self, spec: FunctionSpec) -> None:
        traits, profile = _behaviour(spec)
        with self._lock:
            current = self._functions.get(spec.name)
            if current is not None and current.memory_mb != spec.memory_mb:
                self._drop_environments(spec.name, None)
            variants = current.variants if current is not None else set()
            named = current.architecture_variants if current is not None else set()
            self._functions[spec.name] = _Function(
                spec, spec.memory_mb, traits, profile, variants, named
            )

    def ensure_variant(
        self, name: str, memory_mb: int, architecture: Architecture | None = None
    ) -> str:
        """A memory variant; with ``architecture``, one that runs on it whatever the
        function's own architecture (Lambda: a version published after UpdateFunctionCode
        with ``Architectures=[architecture]``), with environments of its own."""
        alias = variant_alias(memory_mb, architecture)
        with self._lock:
            function = self._function(name)
            if architecture is None:
                function.variants.add(memory_mb)
            else:
                function.architecture_variants.add((memory_mb, architecture))
        return alias

    def set_memory(self, name: str, memory_mb: int) -> None:
        check_memory(memory_mb)
        with self._lock:
            function = self._function(name)
            if function.memory_mb != memory_mb:
                function.memory_mb = memory_mb
                self._drop_environments(name, None)

    def memory_of(self, name: str) -> int:
        with self._lock:
            return self._function(name).memory_mb

    def concurrency_limit(self) -> int:
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
        handle = self.start_invoke(name, payload, memory_mb=memory_mb, architecture=architecture)
        while True:
            result = self.poll(handle)
            if result is not None:
                return result
            self.clock.sleep(max(0.0, self.completion_time(handle) - self.clock.now()))

    def start_invoke(
        self,
        name: str,
        payload: Any,
        *,
        memory_mb: int | None = None,
        behaviour: Traits | MeasuredProfile | None = None,
        architecture: Architecture | None = None,
    ) -> InvocationHandle:
        """Start one invocation. ``behaviour`` (the simulator's workload models) replaces the
        function's own for this invocation alone: code traits or a measured profile that say how
        long it runs and how much memory it uses, and no code runs. Environments stay those of
        the function and variant, so invocations of different work share warm environments as
        they do on Lambda."""
        with self._lock:
            function = self._function(name)
            traits, profile = function.traits, function.profile
            if isinstance(behaviour, Traits):
                traits, profile = behaviour, None
            elif behaviour is not None:
                profile = behaviour
            qualifier = None
            memory = function.memory_mb
            spec = function.spec
            if architecture is not None and memory_mb is None:
                raise ValueError("an architecture selects a memory variant: give memory_mb too")
            if memory_mb is not None:
                known = (
                    memory_mb in function.variants
                    if architecture is None
                    else (memory_mb, architecture) in function.architecture_variants
                )
                if not known:
                    raise VariantNotFoundError(
                        f"{name}: no variant {variant_alias(memory_mb, architecture)}; call "
                        "ensure_variant first"
                    )
                qualifier, memory = variant_alias(memory_mb, architecture), memory_mb
                if architecture is not None:
                    spec = replace(spec, architecture=architecture)
            now = self.clock.now()
            handle = InvocationHandle(uuid.uuid4().hex, name, memory_mb, now)
            rng = self._draws(payload)
            request_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            invocation = _Invocation(
                handle,
                spec,
                traits,
                profile,
                memory,
                qualifier,
                environment=None,
                conditions=None,
                request_id=request_id,
            )
            self._invocations[handle.invocation_id] = invocation
            if self._in_flight(now) >= self._concurrency_limit:
                invocation.result = self._throttled(invocation, now)
                return handle
            environment, cold = self._acquire_environment((name, qualifier), now)
            invocation.environment = environment
            invocation.conditions = execution.Conditions(
                memory_mb=memory,
                timeout_s=function.spec.timeout_s,
                cold=cold,
                z_run=rng.gauss(0.0, 1.0) if self.noise else 0.0,
                z_init=rng.gauss(0.0, 1.0) if self.noise else 0.0,
                sigma=self.noise_sigma,
                slowdown=self.slowdown(now) if self.slowdown is not None else 1.0,
                speed=_speed(spec.architecture, traits, profile),
            )
            if function.spec.handler is not None and behaviour is None:
                invocation.future = self.pool.submit(
                    Task(
                        handler=function.spec.handler,
                        event=payload,
                        function_name=name,
                        memory_mb=memory,
                        timeout_s=function.spec.timeout_s,
                        request_id=request_id,
                        qualifier=qualifier,
                        environment=environment.id,
                        cold=cold,
                    )
                )
            else:
                self._complete(invocation, None)
            return handle

    def _draws(self, payload: Any) -> random.Random:
        if self.noise_key is None:
            return self._rng
        key = self.noise_key(payload)
        seen = self._keyed[key]
        self._keyed[key] += 1
        return random.Random(f"{self._seed}|{key}|{seen}")

    def poll(self, handle: InvocationHandle) -> InvokeResult | None:
        with self._lock:
            invocation = self._invocation(handle)
            if invocation.result is None:
                if invocation.future is None or not invocation.future.done():
                    return None
                self._complete(invocation, invocation.future.result())
            assert invocation.result is not None
            if self.clock.now() < invocation.result.finished_at:
                return None
            del self._invocations[handle.invocation_id]
            return invocation.result

    def completion_time(self, handle: InvocationHandle) -> float:
        """When the invocation completes on the clock; waits for real code still running.

        For the simulation driver: advance a VirtualClock to the earliest completion time.
        """
        with self._lock:
            invocation = self._invocation(handle)
            future = invocation.future if invocation.result is None else None
        if future is not None:
            outcome = future.result()
            with self._lock:
                if invocation.result is None:
                    self._complete(invocation, outcome)
        assert invocation.result is not None
        return invocation.result.finished_at

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
        if period_s <= 0 or end <= start:
            raise ValueError("need period_s > 0 and end > start")
        qualifier = variant_alias(memory_mb) if memory_mb is not None else None
        buckets: dict[float, list[_Record]] = defaultdict(list)
        for record in self._visible(name):
            if start <= record.started_at < end and (
                qualifier is None or record.qualifier == qualifier
            ):
                slot = start + math.floor((record.started_at - start) / period_s) * period_s
                buckets[slot].append(record)
        series: dict[str, list[Datapoint]] = defaultdict(list)
        for slot in sorted(buckets):
            records = buckets[slot]
            ran = [r for r in records if r.error is not ErrorKind.THROTTLED]
            throttled = len(records) - len(ran)
            if ran:
                durations = [r.report.duration_ms for r in ran if r.report is not None]
                series["invocations"].append((slot, float(len(ran))))
                series["errors"].append(
                    (slot, float(sum(r.error is not ErrorKind.NONE for r in ran)))
                )
                if durations:
                    series["duration_avg"].append((slot, sum(durations) / len(durations)))
                    series["duration_max"].append((slot, max(durations)))
                    used = [r.report.max_memory_used_mb for r in ran if r.report is not None]
                    series["memory_used_max"].append((slot, float(max(used))))
            if throttled or ran:
                series["throttles"].append((slot, float(throttled)))
        return FunctionMetrics(
            function=name, period_s=period_s, **{k: tuple(v) for k, v in series.items()}
        )

    def find_reports(
        self,
        name: str,
        start: float,
        end: float,
        *,
        request_ids: frozenset[str] | None = None,
    ) -> list[Report]:
        return [
            record.report
            for record in self._visible(name)
            if record.report is not None
            and start <= record.finished_at < end
            and (request_ids is None or record.report.request_id in request_ids)
        ]

    def find_cpu_times(
        self, name: str, start: float, end: float, request_ids: frozenset[str]
    ) -> dict[str, float]:
        return {}  # every report carries its CPU time already: none is ever missing

    def log_lines(self, name: str) -> list[str]:
        """The function's REPORT lines as Lambda would log them (text format)."""
        return [
            report_format.format_text(r.report) for r in self._visible(name) if r.report is not None
        ]

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def pool(self) -> WorkerPool:
        if self._pool is None:
            self._pool = WorkerPool(self._workers)
        return self._pool

    def close(self) -> None:
        if self._pool is not None and self._owns_pool:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> EmulatorPlatform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------

    def _function(self, name: str) -> _Function:
        try:
            return self._functions[name]
        except KeyError:
            raise FunctionNotFoundError(f"function {name!r} does not exist") from None

    def _invocation(self, handle: InvocationHandle) -> _Invocation:
        try:
            return self._invocations[handle.invocation_id]
        except KeyError:
            raise PlatformError(
                f"unknown or already collected invocation {handle.invocation_id}"
            ) from None

    def _in_flight(self, now: float) -> int:
        count = 0
        for invocation in self._invocations.values():
            if invocation.result is None and invocation.future is not None:
                if invocation.future.done():
                    self._complete(invocation, invocation.future.result())
                else:
                    count += 1
                    continue
            result = invocation.result
            if result is not None and result.error is not ErrorKind.THROTTLED:
                count += result.finished_at > now
        return count

    def _acquire_environment(
        self, key: tuple[str, str | None], now: float
    ) -> tuple[_Environment, bool]:
        environments = self._environments[key]
        # An environment idle for keep_alive_s or longer has been reclaimed.
        environments[:] = [e for e in environments if now - e.busy_until < self.keep_alive_s]
        idle = [e for e in environments if e.busy_until <= now]
        if idle:
            environment = max(idle, key=lambda e: e.busy_until)
            environment.busy_until = math.inf
            return environment, False
        environment = _Environment(busy_until=math.inf)
        environments.append(environment)
        return environment, True

    def _drop_environments(self, name: str, qualifier: str | None) -> None:
        self._environments.pop((name, qualifier), None)

    def _complete(self, invocation: _Invocation, run: RunOutcome | None) -> None:
        conditions = invocation.conditions
        assert conditions is not None
        if invocation.profile is not None:
            # The measured profile decides time and memory; code, if any, decides the answer.
            outcome = execution.from_profile(invocation.profile, conditions)
            payload = run.payload if run is not None else None
            if run is not None and run.status != "ok" and outcome.error is ErrorKind.NONE:
                outcome = replace(
                    outcome,
                    error=ErrorKind.UNHANDLED,
                    error_type=run.error_type,
                    error_message=run.error_message,
                )
        elif run is not None:
            module = invocation.spec.handler.partition(":")[0] if invocation.spec.handler else ""
            if run.import_ms is not None:
                self._import_ms.setdefault(module, run.import_ms)
            init_base = RUNTIME_INIT_MS + self._import_ms.get(module, 0.0)
            outcome = execution.from_run(run, invocation.traits, conditions, init_base)
            payload = run.payload
        else:
            outcome, payload = execution.from_traits(invocation.traits, conditions), None
        if outcome.error is ErrorKind.OUT_OF_MEMORY or outcome.error is ErrorKind.TIMEOUT:
            payload = {"errorType": outcome.error_type, "errorMessage": outcome.error_message}
        started = invocation.handle.started_at
        finished = started + outcome.elapsed_s
        rounded = round(outcome.duration_ms, 2)
        report = Report(
            request_id=invocation.request_id,
            duration_ms=rounded,
            billed_ms=report_format.billed_ms(
                rounded, round(outcome.init_ms, 2) if outcome.init_ms is not None else None
            ),
            memory_mb=conditions.memory_mb,
            max_memory_used_mb=outcome.max_memory_used_mb,
            init_ms=round(outcome.init_ms, 2) if outcome.init_ms is not None else None,
            status=outcome.status,
            error_type=outcome.error_type if outcome.error is not ErrorKind.NONE else None,
            cpu_ms=round(outcome.cpu_ms, 2) if outcome.cpu_ms is not None else None,
        )
        invocation.result = InvokeResult(
            function=invocation.handle.function,
            memory_mb=conditions.memory_mb,
            request_id=invocation.request_id,
            payload=payload,
            report=report,
            error=outcome.error,
            error_message=outcome.error_message,
            started_at=started,
            finished_at=finished,
            architecture=invocation.spec.architecture,
        )
        if invocation.environment is not None:
            # A crashed or killed runtime is not reused (Lambda resets the environment).
            reusable = outcome.error in (ErrorKind.NONE, ErrorKind.UNHANDLED, ErrorKind.HANDLED)
            invocation.environment.busy_until = finished if reusable else -math.inf
        self._records[invocation.handle.function].append(
            _Record(invocation.qualifier, started, finished, outcome.error, report)
        )

    def _throttled(self, invocation: _Invocation, now: float) -> InvokeResult:
        result = InvokeResult(
            function=invocation.handle.function,
            memory_mb=invocation.memory_mb,
            request_id=invocation.request_id,
            payload=None,
            report=None,
            error=ErrorKind.THROTTLED,
            error_message="Rate Exceeded. (concurrency limit reached)",
            started_at=now,
            finished_at=now,
            architecture=invocation.spec.architecture,
        )
        self._records[invocation.handle.function].append(
            _Record(invocation.qualifier, now, now, ErrorKind.THROTTLED, None)
        )
        return result

    def _visible(self, name: str) -> list[_Record]:
        """Records of invocations that have completed by now (the future is not observable)."""
        now = self.clock.now()
        with self._lock:
            self._in_flight(now)  # complete any finished real-code runs first
            return [r for r in self._records.get(name, []) if r.finished_at <= now]


def _speed(architecture: str, traits: Traits, profile: MeasuredProfile | None) -> float:
    """How fast the workload runs on ``architecture`` relative to x86_64 (its profile's
    ``arm64_speed`` when it has a measured profile, else its traits')."""
    if architecture != "arm64":
        return 1.0
    return profile.arm64_speed if profile is not None else traits.arm64_speed


def _behaviour(spec: FunctionSpec) -> tuple[Traits, MeasuredProfile | None]:
    """The function's traits and, if it has one, its measured profile."""
    traits = spec.traits or Traits()
    profile: MeasuredProfile | None = None
    if spec.profile is not None:
        try:
            loaded = load_profile(spec.profile)
        except ProfileError as error:
            raise PlatformError(f"{spec.name}: {error}") from None
        if isinstance(loaded, CodeProfile):
            traits = spec.traits or loaded.traits
        else:
            profile = loaded
    if spec.handler is None and profile is None and traits.cpu_ms is None:
        raise PlatformError(
            f"{spec.name}: give a handler to run, a measured profile, or traits with cpu_ms"
        )
    return traits, profile
