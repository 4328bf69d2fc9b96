"""From a workload's behaviour to one invocation's outcome at a memory size. Pure functions.

Three sources of behaviour, one shape of answer (`Execution`):

- `from_run`: real code was run by a worker; its measured CPU time, non-CPU wall time and peak
  memory go through the performance model (`model.py`).
- `from_traits`: no code, a code profile's fixed `cpu_ms` / `peak_memory_mb`.
- `from_profile`: no model of the code at all, a measured Lambda profile's curve.

Noise comes in as standard-normal draws (`z_run`, `z_init`) chosen by the caller, so these
functions stay deterministic and the caller's seeded RNG decides reproducibility.
An out-of-memory run is reported with Max Memory Used equal to the memory size, as Lambda does,
and a run that would outlast its timeout is cut at the timeout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from service.platform.emulator.model import (
    RUNTIME_INIT_MS,
    duration_ms,
    noise_factor,
)
from service.platform.emulator.profiles import MeasuredProfile
from service.platform.emulator.runner import RunOutcome
from service.platform.interface import ErrorKind, Traits

# Resident memory of a bare Python runtime, for code profiles that give no footprint.
PYTHON_BASELINE_MB = 40.0


@dataclass(frozen=True)
class Execution:
    duration_ms: float
    init_ms: float | None
    max_memory_used_mb: int
    error: ErrorKind
    error_type: str | None = None
    error_message: str | None = None
    # CPU time the run used (what Lambda Insights reports as cpu_total_time): its CPU work at
    # one vCPU, scaled by the run's noise and slowdown like its duration; None if unknown
    cpu_ms: float | None = None

    @property
    def status(self) -> str | None:
        """The REPORT line's Status field (absent on success)."""
        if self.error is ErrorKind.NONE:
            return None
        return "timeout" if self.error is ErrorKind.TIMEOUT else "error"

    @property
    def elapsed_s(self) -> float:
        """Wall time from request to response: init (if cold) plus duration."""
        return ((self.init_ms or 0.0) + self.duration_ms) / 1000.0


@dataclass(frozen=True)
class Conditions:
    """What the platform decided about this invocation, independent of the workload."""

    memory_mb: int
    timeout_s: float
    cold: bool
    z_run: float
    z_init: float
    sigma: float
    # Environmental drift at the invocation's start (a noisy neighbour, a slower data source):
    # the run takes this many times its modelled duration. 1.0 unless a simulation sets one.
    slowdown: float = 1.0
    # The speed of the architecture the invocation runs on, relative to x86_64 (a workload's
    # ``arm64_speed`` on arm64, else 1.0): the run takes 1/speed times its modelled duration.
    speed: float = 1.0

    @property
    def time_factor(self) -> float:
        """What the modelled run time is multiplied by: drift over the architecture's speed."""
        return self.slowdown / self.speed


def from_run(
    run: RunOutcome, traits: Traits, conditions: Conditions, init_base_ms: float
) -> Execution:
    """Formula 2 on a real run: the run's CPU time scaled to the memory size, plus its I/O."""
    # I/O: wall time neither on a CPU nor waiting for one of this (shared) machine's CPUs.
    measured_io = max(0.0, run.wall_ms - run.cpu_ms - run.wait_ms)
    io = traits.io_ms if traits.io_ms is not None else measured_io
    modelled = duration_ms(
        run.cpu_ms, io, conditions.memory_mb, traits.parallel_fraction, traits.max_threads
    )
    init = _init(traits.init_ms if traits.init_ms is not None else init_base_ms, conditions)
    if run.status == "timeout":
        return _timed_out(init, run.peak_rss_mb, conditions)
    error = {
        "ok": ErrorKind.NONE,
        "error": ErrorKind.UNHANDLED,
        "crash": ErrorKind.UNHANDLED,
        "oom": ErrorKind.OUT_OF_MEMORY,
    }[run.status]
    factor = noise_factor(conditions.z_run, conditions.sigma) * conditions.time_factor
    return _settle(
        modelled * factor,
        init,
        run.peak_rss_mb,
        error,
        conditions,
        run.error_type,
        run.error_message,
        cpu_ms=run.cpu_ms * factor,
    )


def from_traits(traits: Traits, conditions: Conditions) -> Execution:
    """Formula 2 on a code profile's fixed CPU time and footprint (no code is run)."""
    if traits.cpu_ms is None:
        raise ValueError("traits without cpu_ms need code to measure")
    cpu_ms = traits.cpu_ms + (traits.cold_cpu_ms if conditions.cold else 0.0)
    modelled = duration_ms(
        cpu_ms,
        traits.io_ms or 0.0,
        conditions.memory_mb,
        traits.parallel_fraction,
        traits.max_threads,
    )
    peak = traits.peak_memory_mb if traits.peak_memory_mb is not None else PYTHON_BASELINE_MB
    init = _init(traits.init_ms if traits.init_ms is not None else RUNTIME_INIT_MS, conditions)
    factor = noise_factor(conditions.z_run, conditions.sigma) * conditions.time_factor
    run = modelled * factor
    if peak > conditions.memory_mb:
        # Killed on reaching the limit; assume memory grows steadily over the run.
        return _out_of_memory(run * conditions.memory_mb / peak, init, conditions)
    return _settle(run, init, peak, ErrorKind.NONE, conditions, cpu_ms=cpu_ms * factor)


def from_profile(profile: MeasuredProfile, conditions: Conditions) -> Execution:
    """A measured profile's median at this size times log-normal noise of its own spread."""
    curve = profile.curve
    memory = conditions.memory_mb
    factor = noise_factor(conditions.z_run, curve.sigma(memory)) * conditions.time_factor
    run = curve.p50_ms(memory) * factor
    cold_ms = profile.cold_start_ms if profile.cold_start_ms is not None else RUNTIME_INIT_MS
    init = None
    if conditions.cold:
        init = cold_ms * noise_factor(conditions.z_init, curve.sigma(memory))
    if curve.out_of_memory(memory):
        return _out_of_memory(run * memory / curve.footprint_mb, init, conditions)
    return _settle(
        run,
        init,
        curve.mem_used_mb(memory),
        ErrorKind.NONE,
        conditions,
        cpu_ms=curve.cpu_ms(memory) * factor,
    )


def _init(base_ms: float, conditions: Conditions) -> float | None:
    if not conditions.cold:
        return None
    return base_ms * noise_factor(conditions.z_init, conditions.sigma)


def _settle(
    run_ms: float,
    init_ms: float | None,
    peak_mb: float,
    error: ErrorKind,
    conditions: Conditions,
    error_type: str | None = None,
    error_message: str | None = None,
    cpu_ms: float | None = None,
) -> Execution:
    if error is ErrorKind.OUT_OF_MEMORY:
        return _out_of_memory(run_ms, init_ms, conditions)
    if run_ms > conditions.timeout_s * 1000.0:
        return _timed_out(init_ms, peak_mb, conditions)
    used = min(conditions.memory_mb, max(1, math.ceil(peak_mb)))
    return Execution(run_ms, init_ms, used, error, error_type, error_message, cpu_ms)


def _out_of_memory(run_ms: float, init_ms: float | None, conditions: Conditions) -> Execution:
    run_ms = min(run_ms, conditions.timeout_s * 1000.0)
    return Execution(
        run_ms,
        init_ms,
        conditions.memory_mb,
        ErrorKind.OUT_OF_MEMORY,
        "Runtime.OutOfMemory",
        "Error: Runtime exited with error: signal: killed",
    )


def _timed_out(init_ms: float | None, peak_mb: float, conditions: Conditions) -> Execution:
    used = min(conditions.memory_mb, max(1, math.ceil(peak_mb)))
    return Execution(
        conditions.timeout_s * 1000.0,
        init_ms,
        used,
        ErrorKind.TIMEOUT,
        "Sandbox.Timedout",
        f"Task timed out after {conditions.timeout_s:.2f} seconds",
    )
