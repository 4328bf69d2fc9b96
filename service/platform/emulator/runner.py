"""A small reusable pool of worker processes that run real function code under a memory limit.

Each worker is one execution environment at a time. While a task runs, the parent samples the
worker's resident memory (/proc/<pid>/status VmRSS) every few milliseconds and kills the worker
the moment it exceeds the invocation's memory size, as Lambda kills a function that runs out of
memory; the worker also reports its exact high-water mark (VmHWM) afterwards, which catches a
spike shorter than the sampling interval. A killed or crashed worker is replaced, so the pool
recovers. Linux only for the enforcement (/proc); elsewhere the post-hoc peak is all there is.
New workers are forked by a template process (`forkserver.py`) where Linux allows it, else
started as new interpreters.

Memory is enforced by watching, not by RLIMIT_AS: address-space limits count reserved virtual
memory (thread stacks, allocator arenas, BLAS buffers) that Lambda does not count, and would
kill ordinary numpy code far below its real footprint.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import Any, Literal

from service.platform.emulator.forkserver import ForkServer, ForkServerError

Status = Literal["ok", "error", "oom", "timeout", "crash"]

_BOOT = (
    "import sys, json; sys.path[:] = json.loads(sys.argv[1]); "
    "from service.platform.emulator.worker import main; main(int(sys.argv[2]), int(sys.argv[3]))"
)
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# A worker measures CPU time on one reference vCPU (formula 2 in model.py): its BLAS and OpenMP
# pools get one thread. Left at their default (one per host core), they spin while they wait
# for work, and that spinning counts as CPU time: on a shared 2-core host an MLP trial on digits
# measured 84-730 ms of CPU with the default pools against 6 ms with one thread, so the emulator
# billed 14-100x the work. A function's parallel speed-up comes from its traits
# (parallel_fraction, max_threads), not from the host's cores.
SINGLE_THREAD_ENV = dict.fromkeys(
    (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "BLIS_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
        "NUMEXPR_NUM_THREADS",
    ),
    "1",
)


@dataclass(frozen=True)
class Task:
    handler: str
    event: Any
    function_name: str
    memory_mb: int
    timeout_s: float
    request_id: str
    qualifier: str | None = None
    # The modelled execution environment the task runs in, and whether that environment is
    # new (a cold start): a cold task runs in a worker process that has run nothing yet, so its
    # imports and whatever the handler loads on first use (a dataset) are measured, as on Lambda;
    # a warm task goes to the worker that last ran its environment when that one is idle.
    environment: int | None = None
    cold: bool = False


@dataclass(frozen=True)
class RunOutcome:
    """What running the code once measured. `cpu_ms` is CPU time on this machine; `wait_ms`
    the part of `wall_ms` spent waiting for one of its CPUs (contention, not the function's)."""

    status: Status
    payload: Any
    cpu_ms: float
    wall_ms: float
    peak_rss_mb: float
    wait_ms: float = 0.0
    import_ms: float | None = None
    error_type: str | None = None
    error_message: str | None = None


class _Forked:
    """A worker the fork server forked: the part of ``subprocess.Popen`` the pool uses. It is
    the server's child, so the server reaps it."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self.server = server
        self.pid = pid
        self.returncode: int | None = None
        self._reaped = False

    def poll(self) -> int | None:
        if self._reaped:
            return self.returncode
        try:
            with open(f"/proc/{self.pid}/stat") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            state = "X"
        return self.wait() if state in ("Z", "X") else None

    def wait(self, timeout: float | None = None) -> int | None:
        if not self._reaped:
            try:
                self.returncode = self.server.wait(self.pid, timeout)
            except TimeoutError as error:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0.0) from error
            except ForkServerError:
                self.returncode = None
            self._reaped = True
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if not self._reaped:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.send_signal(signal.SIGKILL)


class _Worker:
    def __init__(self, server: ForkServer | None = None, preload: list[str] | None = None) -> None:
        task_read, task_write = os.pipe()
        reply_read, reply_write = os.pipe()
        try:
            self.process: subprocess.Popen[bytes] | _Forked = (
                _Forked(server, server.fork(task_read, reply_write, preload or []))
                if server is not None
                else subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        _BOOT,
                        json.dumps(sys.path),
                        str(task_read),
                        str(reply_write),
                    ],
                    pass_fds=(task_read, reply_write),
                    close_fds=True,
                    env=os.environ | SINGLE_THREAD_ENV,
                )
            )
        except BaseException:
            os.close(task_write)
            os.close(reply_read)
            raise
        finally:
            os.close(task_read)
            os.close(reply_write)
        self.tasks = Connection(task_write, readable=False)
        self.replies = Connection(reply_read, writable=False)
        hello = self.replies.recv()
        self.baseline_mb: float = hello["peak_rss_mb"]
        self.used = False  # has run a task: no longer a fresh environment
        self.environment: int | None = None  # the modelled environment it last ran

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mb(self) -> float | None:
        """Current resident memory, or None when the process is gone."""
        try:
            with open(f"/proc/{self.pid}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024.0
        except (OSError, ValueError, IndexError):
            return None if self.process.poll() is not None else 0.0
        return 0.0

    def cpu_ms(self) -> float:
        """CPU time (user + system) of the process so far, from /proc/<pid>/stat."""
        try:
            with open(f"/proc/{self.pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) * 1000.0 / _CLOCK_TICKS
        except (OSError, ValueError, IndexError):
            return 0.0

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.tasks.close()
        self.replies.close()

    def stop(self) -> None:
        try:
            self.tasks.send(None)
            self.process.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        self.tasks.close()
        self.replies.close()


class WorkerPool:
    """Runs tasks in at most `size` reusable worker processes; `submit` returns a Future."""

    def __init__(
        self,
        size: int | None = None,
        *,
        sample_interval_s: float = 0.002,
        fork_server: bool = True,
    ) -> None:
        self.size = size or max(1, os.cpu_count() or 1)
        self._sample = sample_interval_s
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._started = 0
        self._closed = False
        self._executor = ThreadPoolExecutor(self.size, thread_name_prefix="emulator-worker")
        self.replaced = 0  # workers replaced after a kill or crash (observable for tests)
        # Workers are forked from a template process (forkserver.py) where the platform allows
        # it; the handler modules a worker has imported once are preloaded there, and the
        # import time measured that once stands for every later cold start of the module.
        self._server: ForkServer | None = None
        self._import_ms: dict[str, float] = {}
        if fork_server and sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, ForkServerError):
                self._server = ForkServer(os.environ | SINGLE_THREAD_ENV)

    def submit(self, task: Task) -> Future[RunOutcome]:
        if self._closed:
            raise RuntimeError("worker pool is closed")
        return self._executor.submit(self.run, task)

    def run(self, task: Task) -> RunOutcome:
        worker = self._acquire(task)
        worker.used, worker.environment = True, task.environment
        try:
            outcome, healthy = self._run_on(worker, task)
        except BaseException:
            self._discard(worker)
            raise
        if healthy:
            self._idle.put(worker)
        else:
            self._discard(worker)
        if outcome.import_ms is not None:
            module = task.handler.partition(":")[0]
            measured = self._import_ms.setdefault(module, outcome.import_ms)
            outcome = replace(outcome, import_ms=measured)
        return outcome

    def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)
        while True:
            try:
                self._idle.get_nowait().stop()
            except queue.Empty:
                break
        if self._server is not None:
            self._server.close()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _acquire(self, task: Task | None = None) -> _Worker:
        worker = self._take_idle(task)
        if worker is None:
            with self._lock:
                spawn = self._started < self.size
                if spawn:
                    self._started += 1
            if spawn:
                return self._spawn()
            worker = self._idle.get()
        if task is not None and task.cold and worker.used:
            # A new environment needs a fresh process: start one beside the used worker if the
            # pool has room (the used one stays warm for its environment), else replace it.
            with self._lock:
                room = self._started < self.size
                self._started += 1
            if room:
                self._idle.put(worker)
            else:
                self._discard(worker, replaced=False)
            return self._spawn()
        return worker

    def _spawn(self) -> _Worker:
        try:
            server = self._server
            if server is not None:
                try:
                    return _Worker(server, sorted(self._import_ms))
                except ForkServerError:
                    # Gone, or unsafe to fork (a preloaded module started a thread): plain
                    # processes from now on.
                    self._server = None
                    server.close()
            return _Worker()
        except BaseException:
            with self._lock:
                self._started -= 1
            raise

    def _take_idle(self, task: Task | None) -> _Worker | None:
        """An idle worker: for a cold task one that has run nothing, for a warm one the worker
        that last ran its environment, else any."""
        idle: list[_Worker] = []
        while True:
            try:
                idle.append(self._idle.get_nowait())
            except queue.Empty:
                break
        if not idle:
            return None
        chosen = idle[0]
        if task is not None:
            for worker in idle:
                if (task.cold and not worker.used) or (
                    not task.cold
                    and task.environment is not None
                    and worker.environment == task.environment
                ):
                    chosen = worker
                    break
        for worker in idle:
            if worker is not chosen:
                self._idle.put(worker)
        return chosen

    def _discard(self, worker: _Worker, *, replaced: bool = True) -> None:
        worker.kill()
        with self._lock:
            self._started -= 1
            self.replaced += replaced

    def _run_on(self, worker: _Worker, task: Task) -> tuple[RunOutcome, bool]:
        limit = float(task.memory_mb)
        cpu_start = worker.cpu_ms()
        started = time.monotonic()
        deadline = started + task.timeout_s
        peak = 0.0
        worker.tasks.send(
            {
                "handler": task.handler,
                "event": task.event,
                "function_name": task.function_name,
                "memory_mb": task.memory_mb,
                "timeout_s": task.timeout_s,
                "request_id": task.request_id,
                "qualifier": task.qualifier,
            }
        )
        while True:
            # Sample fast at first (short runs, fast allocations), then ease off so that a
            # long training run does not cost the parent a /proc read every 2 ms; a spike
            # between samples is still caught afterwards through the worker's VmHWM.
            slow = time.monotonic() - started > 0.5
            if worker.replies.poll(self._sample * 5 if slow else self._sample):
                try:
                    reply = worker.replies.recv()
                except (EOFError, OSError):
                    return self._crashed(worker, started, peak), False
                return self._finished(reply, limit), True
            rss = worker.rss_mb()
            if rss is None:
                return self._crashed(worker, started, peak), False
            peak = max(peak, rss)
            if rss > limit:
                cpu = worker.cpu_ms() - cpu_start
                return (
                    RunOutcome(
                        "oom",
                        _error_payload("Runtime.OutOfMemory", "Runtime exited: signal: killed"),
                        cpu_ms=cpu,
                        wall_ms=(time.monotonic() - started) * 1000.0,
                        peak_rss_mb=limit,
                        error_type="Runtime.OutOfMemory",
                        error_message="Error: Runtime exited with error: signal: killed",
                    ),
                    False,
                )
            if time.monotonic() > deadline:
                cpu = worker.cpu_ms() - cpu_start
                message = f"Task timed out after {task.timeout_s:.2f} seconds"
                return (
                    RunOutcome(
                        "timeout",
                        _error_payload("Sandbox.Timedout", message),
                        cpu_ms=cpu,
                        wall_ms=task.timeout_s * 1000.0,
                        peak_rss_mb=peak,
                        error_type="Sandbox.Timedout",
                        error_message=message,
                    ),
                    False,
                )

    @staticmethod
    def _finished(reply: dict[str, Any], limit: float) -> RunOutcome:
        status: Status = reply["status"]
        peak = float(reply["peak_rss_mb"])
        if status in ("ok", "error") and peak > limit:
            # A spike between two samples: Lambda would have killed it.
            return RunOutcome(
                "oom",
                _error_payload("Runtime.OutOfMemory", "Runtime exited: signal: killed"),
                cpu_ms=reply["cpu_ms"],
                wall_ms=reply["wall_ms"],
                wait_ms=reply.get("wait_ms", 0.0),
                peak_rss_mb=limit,
                import_ms=reply.get("import_ms"),
                error_type="Runtime.OutOfMemory",
                error_message="Error: Runtime exited with error: signal: killed",
            )
        return RunOutcome(
            status,
            reply.get("payload"),
            cpu_ms=reply["cpu_ms"],
            wall_ms=reply["wall_ms"],
            wait_ms=reply.get("wait_ms", 0.0),
            peak_rss_mb=peak,
            import_ms=reply.get("import_ms"),
            error_type=reply.get("error_type"),
            error_message=reply.get("error_message"),
        )

    @staticmethod
    def _crashed(worker: _Worker, started: float, peak: float) -> RunOutcome:
        code = worker.process.wait()
        message = f"Error: Runtime exited with error: exit status {code}"
        return RunOutcome(
            "crash",
            _error_payload("Runtime.ExitError", message),
            cpu_ms=0.0,
            wall_ms=(time.monotonic() - started) * 1000.0,
            peak_rss_mb=peak,
            error_type="Runtime.ExitError",
            error_message=message,
        )


def _error_payload(error_type: str, message: str) -> dict[str, str]:
    return {"errorType": error_type, "errorMessage": message}
