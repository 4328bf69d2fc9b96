"""The emulator with real code: measurement, OOM kills, environments, throttling, clocks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from service.platform.clock import VirtualClock, WallClock
from service.platform.emulator.backend import EmulatorPlatform
from service.platform.emulator.model import duration_ms
from service.platform.emulator.runner import WorkerPool
from service.platform.interface import (
    ErrorKind,
    FunctionNotFoundError,
    FunctionSpec,
    PlatformError,
    Traits,
)

HANDLERS = "tests.platform.handlers"
PROFILES = Path(__file__).parents[2] / "service/platform/profiles"


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    with WorkerPool(2) as shared:
        yield shared


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(1000.0)


@pytest.fixture
def emulator(clock: VirtualClock, pool: WorkerPool) -> EmulatorPlatform:
    return EmulatorPlatform(clock, seed=3, noise=False, pool=pool)


def _code(name: str, handler: str, memory_mb: int = 1769, **kw: object) -> FunctionSpec:
    return FunctionSpec(name, handler=f"{HANDLERS}:{handler}", memory_mb=memory_mb, **kw)


def _modelled(cpu_ms: float, memory_mb: int, p: float = 0.0, threads: int = 1) -> FunctionSpec:
    return FunctionSpec(
        "model",
        memory_mb=memory_mb,
        traits=Traits(
            parallel_fraction=p,
            max_threads=threads,
            cpu_ms=cpu_ms,
            io_ms=0.0,
            init_ms=200.0,
            peak_memory_mb=100.0,
        ),
    )


def test_duration_is_the_measured_cpu_time_scaled_by_the_cpu_share(
    emulator: EmulatorPlatform,
) -> None:
    emulator.ensure_function(_code("cpu", "cpu_loop"))
    emulator.ensure_variant("cpu", 442)  # a quarter of a vCPU
    at_one_vcpu = emulator.invoke("cpu", {"cpu_ms": 150})
    at_quarter = emulator.invoke("cpu", {"cpu_ms": 150}, memory_mb=442)
    assert at_one_vcpu.report is not None and at_quarter.report is not None
    assert at_one_vcpu.report.duration_ms == pytest.approx(150, rel=0.25)
    ratio = at_quarter.report.duration_ms / at_one_vcpu.report.duration_ms
    assert ratio == pytest.approx(1769 / 442, rel=0.15)


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or not Path("/proc/thread-self/schedstat").exists(),
    reason="needs Linux CPU affinity and scheduler statistics",
)
def test_waiting_for_a_busy_host_cpu_is_not_counted_as_io(clock: VirtualClock) -> None:
    # The worker shares one CPU with a busy loop, so its 150 ms of CPU take ~300 ms of wall
    # time. Lambda's CPU share is the function's own: the duration must stay ~150 ms.
    saved = os.sched_getaffinity(0)
    cpu = min(saved)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        os.sched_setaffinity(hog.pid, {cpu})
        os.sched_setaffinity(0, {cpu})  # the worker process inherits it
        try:
            pool = WorkerPool(1)
        finally:
            os.sched_setaffinity(0, saved)
        with pool, EmulatorPlatform(clock, noise=False, pool=pool) as emulator:
            emulator.ensure_function(_code("cpu", "cpu_loop"))
            emulator.invoke("cpu", {"cpu_ms": 5})  # cold start: imports out of the way
            result = emulator.invoke("cpu", {"cpu_ms": 150})
    finally:
        hog.kill()
        hog.wait()
    assert result.ok and result.report is not None
    assert result.report.duration_ms == pytest.approx(150, rel=0.2)


def test_time_not_spent_on_cpu_is_io_and_does_not_scale(emulator: EmulatorPlatform) -> None:
    emulator.ensure_function(_code("io", "sleep", memory_mb=128))
    result = emulator.invoke("io", {"seconds": 0.2})
    assert result.report is not None
    # 200 ms of waiting stays ~200 ms even at 0.07 vCPU; only the little CPU is scaled.
    assert 190 <= result.report.duration_ms <= 400


def test_a_modelled_workload_follows_amdahls_law_exactly(emulator: EmulatorPlatform) -> None:
    emulator.ensure_function(_modelled(1000.0, 3538, p=0.8, threads=4))
    emulator.invoke("model", {})  # cold
    warm = emulator.invoke("model", {})
    assert warm.report is not None
    assert warm.report.duration_ms == pytest.approx(duration_ms(1000.0, 0.0, 3538, 0.8, 4))
    assert warm.report.duration_ms == pytest.approx(200 + 800 / 2)


def test_peak_memory_is_measured_and_includes_the_runtime(emulator: EmulatorPlatform) -> None:
    emulator.ensure_function(_code("mem", "allocate", memory_mb=512))
    small = emulator.invoke("mem", {"mb": 1})
    big = emulator.invoke("mem", {"mb": 150})
    assert small.report is not None and big.report is not None
    assert 5 <= small.report.max_memory_used_mb < 80  # Python's own footprint counts
    assert big.report.max_memory_used_mb >= small.report.max_memory_used_mb + 140


def test_exceeding_memory_kills_only_that_invocation_and_the_pool_recovers(
    emulator: EmulatorPlatform, pool: WorkerPool
) -> None:
    emulator.ensure_function(_code("hog", "allocate", memory_mb=256))
    replaced = pool.replaced
    killed = emulator.invoke("hog", {"mb": 400, "hold_s": 1.0})
    assert killed.error is ErrorKind.OUT_OF_MEMORY
    assert killed.report is not None and killed.report.max_memory_used_mb == 256
    assert killed.report.error_type == "Runtime.OutOfMemory"
    assert pool.replaced == replaced + 1
    after = emulator.invoke("hog", {"mb": 50})
    assert after.ok
    assert after.report is not None and after.report.cold  # the killed environment is gone


def test_errors_and_broken_handlers_are_unhandled_not_crashes(emulator: EmulatorPlatform) -> None:
    emulator.ensure_function(_code("bad", "fail"))
    result = emulator.invoke("bad", {"message": "nope"})
    assert result.error is ErrorKind.UNHANDLED and result.error_message == "nope"
    emulator.ensure_function(FunctionSpec("missing", handler=f"{HANDLERS}:no_such_handler"))
    broken = emulator.invoke("missing", {})
    assert broken.error is ErrorKind.UNHANDLED
    assert broken.payload["errorType"] == "Runtime.ImportModuleError"
    with pytest.raises(FunctionNotFoundError):
        emulator.invoke("never-created", {})


def test_first_invocation_is_cold_then_warm_until_the_keep_alive_runs_out(
    clock: VirtualClock, pool: WorkerPool
) -> None:
    emulator = EmulatorPlatform(clock, seed=1, keep_alive_s=300.0, noise=False, pool=pool)
    emulator.ensure_function(_modelled(100.0, 1769))
    first = emulator.invoke("model", {})
    second = emulator.invoke("model", {})
    assert first.report is not None and first.report.init_ms == pytest.approx(200.0)
    assert second.report is not None and second.report.init_ms is None
    # init is reported, billed, and delays completion
    assert first.report.billed_ms == 300
    assert first.finished_at - first.started_at == pytest.approx(0.3)
    clock.advance(299.0)
    assert not emulator.invoke("model", {}).cold
    clock.advance(300.0)
    assert emulator.invoke("model", {}).cold


def test_every_memory_change_starts_cold(emulator: EmulatorPlatform) -> None:
    emulator.ensure_function(_modelled(100.0, 1024))
    emulator.invoke("model", {})
    assert not emulator.invoke("model", {}).cold
    emulator.set_memory("model", 2048)
    changed = emulator.invoke("model", {})
    assert changed.cold and changed.report is not None and changed.report.memory_mb == 2048
    emulator.set_memory("model", 2048)  # no change, no new environments
    assert not emulator.invoke("model", {}).cold


def test_variants_keep_their_own_warm_environments(emulator: EmulatorPlatform) -> None:
    emulator.ensure_function(_modelled(100.0, 1024))
    emulator.ensure_variant("model", 512)
    assert emulator.invoke("model", {}, memory_mb=512).cold
    assert not emulator.invoke("model", {}, memory_mb=512).cold
    emulator.set_memory("model", 2048)  # in-place change leaves the variant alone
    assert not emulator.invoke("model", {}, memory_mb=512).cold


def test_concurrent_invocations_each_need_an_environment(emulator: EmulatorPlatform) -> None:
    emulator.ensure_function(_modelled(100.0, 1769))
    handles = [emulator.start_invoke("model", {}) for _ in range(3)]
    results = []
    for handle in handles:
        emulator.clock.sleep(max(0.0, emulator.completion_time(handle) - emulator.clock.now()))
        results.append(emulator.poll(handle))
    assert all(r is not None and r.cold for r in results)
    assert not emulator.invoke("model", {}).cold


def test_beyond_the_concurrency_limit_invocations_are_throttled_and_free(
    clock: VirtualClock, pool: WorkerPool
) -> None:
    emulator = EmulatorPlatform(clock, seed=1, concurrency_limit=2, pool=pool)
    emulator.ensure_function(_modelled(100.0, 1769))
    running = [emulator.start_invoke("model", {}) for _ in range(2)]
    throttled = emulator.poll(emulator.start_invoke("model", {}))
    assert throttled is not None and throttled.error is ErrorKind.THROTTLED
    assert throttled.report is None
    assert emulator.concurrency_limit() == 2
    clock.advance(10.0)
    assert all(emulator.poll(h) is not None for h in running)
    assert emulator.invoke("model", {}).ok  # capacity is back
    metrics = emulator.metrics("model", 1000.0, 1100.0, period_s=60)
    assert metrics.throttles == ((1000.0, 1.0),)
    assert metrics.invocations == ((1000.0, 3.0),)


def test_on_a_virtual_clock_a_result_appears_only_when_its_time_has_come(
    clock: VirtualClock, emulator: EmulatorPlatform
) -> None:
    emulator.ensure_function(_modelled(1000.0, 1769))
    handle = emulator.start_invoke("model", {})
    finish = emulator.completion_time(handle)
    assert finish == pytest.approx(clock.now() + 1.2)  # 200 ms init + 1000 ms run
    assert emulator.poll(handle) is None
    clock.set(finish - 0.001)
    assert emulator.poll(handle) is None
    assert emulator.metrics("model", 0.0, 5000.0).invocations == ()  # not finished: not visible
    clock.set(finish)
    result = emulator.poll(handle)
    assert result is not None and result.finished_at == pytest.approx(finish)


def test_on_the_wall_clock_a_result_appears_after_its_modelled_duration(
    pool: WorkerPool,
) -> None:
    emulator = EmulatorPlatform(WallClock(), seed=1, noise=False, pool=pool)
    emulator.ensure_function(
        FunctionSpec("wall", memory_mb=1769, traits=Traits(cpu_ms=150.0, io_ms=0.0, init_ms=0.0))
    )
    started = time.monotonic()
    handle = emulator.start_invoke("wall", {})
    assert emulator.poll(handle) is None
    result = emulator.invoke("wall", {})  # the synchronous form waits it out
    assert time.monotonic() - started >= 0.15
    assert result.ok
    assert emulator.poll(handle) is not None


def test_the_same_seed_replays_the_same_noise(clock: VirtualClock, pool: WorkerPool) -> None:
    def durations(seed: int) -> list[float]:
        emulator = EmulatorPlatform(VirtualClock(0.0), seed=seed, pool=pool)
        emulator.ensure_function(_modelled(500.0, 1024))
        return [emulator.invoke("model", {}).report.duration_ms for _ in range(5)]

    assert durations(7) == durations(7)
    assert durations(7) != durations(8)
    assert len(set(durations(7))) == 5  # there is noise


def test_a_measured_profile_drives_time_memory_and_oom(emulator: EmulatorPlatform) -> None:
    path = PROFILES / "image-recognition.json"
    emulator.ensure_function(FunctionSpec("img", memory_mb=1024, profile=path))
    cold = emulator.invoke("img", {})
    warm = emulator.invoke("img", {})
    assert cold.report is not None and cold.report.init_ms == pytest.approx(900.0)
    assert warm.report is not None and warm.report.duration_ms == pytest.approx(932.0)
    assert warm.report.max_memory_used_mb == 592
    emulator.set_memory("img", 384)
    oom = emulator.invoke("img", {})
    assert oom.error is ErrorKind.OUT_OF_MEMORY


def test_with_code_and_a_measured_profile_the_code_answers_and_the_profile_times(
    emulator: EmulatorPlatform,
) -> None:
    path = PROFILES / "image-recognition.json"
    emulator.ensure_function(_code("both", "echo", memory_mb=1024, profile=path))
    emulator.invoke("both", {"q": 1})
    warm = emulator.invoke("both", {"q": 2})
    assert warm.payload == {"echo": {"q": 2}, "memory_limit_in_mb": 1024}
    assert warm.report is not None and warm.report.duration_ms == pytest.approx(932.0)


def test_a_function_needs_code_a_profile_or_a_cpu_time(emulator: EmulatorPlatform) -> None:
    with pytest.raises(PlatformError, match="give a handler"):
        emulator.ensure_function(FunctionSpec("empty"))
    with pytest.raises(PlatformError, match="no such file"):
        emulator.ensure_function(FunctionSpec("nofile", profile=Path("/nonexistent.json")))


def test_a_cold_start_runs_the_handlers_first_use_work_and_a_warm_one_does_not(
    emulator: EmulatorPlatform,
) -> None:
    """A new environment is a process that has run nothing: what the handler loads on first use
    is measured (and billed) in the cold invocation, as on Lambda, however many environments
    the pool's processes have served before."""
    emulator.ensure_function(_code("first", "first_use", memory_mb=1769))
    load = {"load_cpu_ms": 150}
    cold = emulator.invoke("first", load)
    warm = emulator.invoke("first", load)
    assert cold.report.cold and cold.payload["first"]
    assert not warm.report.cold and not warm.payload["first"]
    assert cold.report.duration_ms > warm.report.duration_ms + 100
    for size in (1024, 2048):  # new variants: new environments, fresh processes again
        emulator.ensure_variant("first", size)
        again = emulator.invoke("first", load, memory_mb=size)
        assert again.report.cold and again.payload["first"]
        assert not emulator.invoke("first", load, memory_mb=size).payload["first"]
    # BLAS pools of one thread: their spinning must not count as the function's CPU
    assert cold.payload["blas_threads"] == "1"


def test_a_per_invocation_behaviour_runs_no_code_and_shares_the_functions_environments(
    emulator: EmulatorPlatform, clock: VirtualClock
) -> None:
    def run(traits: Traits):
        handle = emulator.start_invoke("sim", {}, behaviour=traits)
        clock.sleep(emulator.completion_time(handle) - clock.now())
        return emulator.poll(handle)

    emulator.ensure_function(_code("sim", "fail"))  # its code would raise: it must not run
    small = Traits(cpu_ms=100.0, io_ms=0.0, init_ms=200.0, peak_memory_mb=50.0, cold_cpu_ms=50.0)
    large = Traits(cpu_ms=400.0, io_ms=0.0, init_ms=200.0, peak_memory_mb=50.0, cold_cpu_ms=50.0)
    cold = run(small)
    assert cold is not None and cold.ok and cold.report.cold
    # cold: its first-use CPU counts, at this size's CPU share (1,769 MB: one vCPU)
    assert cold.report.duration_ms == pytest.approx(150.0)
    warm = run(large)
    assert warm is not None and warm.ok and not warm.report.cold  # other work, same environment
    assert warm.report.duration_ms == pytest.approx(400.0)


def test_the_cpu_time_reported_is_the_work_not_the_throttled_wall_time(
    emulator: EmulatorPlatform,
) -> None:
    # Lambda Insights' cpu_total_time: the CPU a run used. At a quarter of a vCPU the same work
    # takes four times as long, and uses the same CPU; the rest of the duration is its I/O.
    spec = _modelled(400.0, 1769)
    emulator.ensure_function(
        FunctionSpec("mixed", memory_mb=1769, traits=replace(spec.traits, io_ms=300.0))
    )
    emulator.ensure_variant("mixed", 442)
    emulator.invoke("mixed", {})
    emulator.invoke("mixed", {}, memory_mb=442)
    full = emulator.invoke("mixed", {})
    quarter = emulator.invoke("mixed", {}, memory_mb=442)
    assert full.report is not None and quarter.report is not None
    assert full.report.cpu_ms == pytest.approx(400.0, rel=1e-3)
    assert quarter.report.cpu_ms == pytest.approx(400.0, rel=1e-3)
    assert quarter.report.duration_ms - quarter.report.cpu_ms * 1769 / 442 == pytest.approx(
        300.0, abs=1.0
    )


def test_code_reports_the_cpu_it_measured_and_a_profile_its_cpu_part(
    emulator: EmulatorPlatform,
) -> None:
    emulator.ensure_function(_code("io", "sleep", memory_mb=1769))
    emulator.invoke("io", {"seconds": 0.01})
    waited = emulator.invoke("io", {"seconds": 0.2})
    assert waited.report is not None and waited.report.cpu_ms is not None
    assert waited.report.cpu_ms < 0.5 * waited.report.duration_ms  # sleeping is not CPU
    # An I/O-heavy measured profile: its duration falls only 2.2x from 128 MB to 1 GB, so most
    # of it is not CPU; what is must account for the slope below one vCPU.
    emulator.ensure_function(FunctionSpec("etl", memory_mb=512, profile=PROFILES / "s3-etl.json"))
    emulator.ensure_variant("etl", 256)
    emulator.invoke("etl", {})
    emulator.invoke("etl", {}, memory_mb=256)
    at_512 = emulator.invoke("etl", {})
    at_256 = emulator.invoke("etl", {}, memory_mb=256)
    assert at_512.report is not None and at_256.report is not None
    assert at_512.report.cpu_ms is not None and at_256.report.cpu_ms is not None
    assert at_512.report.cpu_ms < 0.3 * at_512.report.duration_ms
    slope = at_256.report.duration_ms - at_512.report.duration_ms
    implied = at_512.report.cpu_ms * (1769 / 256 - 1769 / 512)
    assert implied == pytest.approx(slope, rel=0.25)
