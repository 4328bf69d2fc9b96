"""The process that runs function code for the emulator (one Lambda execution environment).

It is forked by the fork server (`forkserver.py`) or, where that is unavailable, started by
`runner.WorkerPool` as a plain ``python -c`` child; either way it holds nothing but this module
and the handler: its resident memory then stands in for the Lambda runtime's own footprint,
which Lambda's "Max Memory Used" includes. Keep the imports here minimal.

Protocol: the parent sends one task dict per invocation over a pipe and reads one reply dict.
Peak memory is the process's high-water mark of resident memory (VmHWM), reset before each
invocation by writing "5" to /proc/self/clear_refs (Linux); CPU time is `time.process_time`,
which counts every thread of the process. Time the handler's thread spent runnable but waiting
for a CPU of this machine (scheduler run delay, /proc/thread-self/schedstat, Linux) is reported
apart as `wait_ms`: it is this host's contention, which Lambda's dedicated CPU share does not
have, so it must not be mistaken for the function's I/O.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any


class LambdaContext:
    """The subset of Lambda's context object that handlers commonly use."""

    def __init__(self, task: dict[str, Any]) -> None:
        self.function_name: str = task["function_name"]
        self.function_version: str = task.get("qualifier") or "$LATEST"
        self.memory_limit_in_mb: int = task["memory_mb"]
        self.aws_request_id: str = task["request_id"]
        self.invoked_function_arn = (
            f"arn:aws:lambda:local:000000000000:function:{self.function_name}"
        )
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "emulator"
        self._deadline = time.monotonic() + float(task["timeout_s"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def resolve(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{path} is not callable")
    return target


def reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def run_delay_ms() -> float:
    """How long this thread has waited, runnable, for a CPU (0 where the kernel does not say)."""
    try:
        with open("/proc/thread-self/schedstat") as handle:
            return int(handle.read().split()[1]) / 1e6
    except (OSError, ValueError, IndexError):
        return 0.0


def run(task: dict[str, Any], handlers: dict[str, Any]) -> dict[str, Any]:
    path = task["handler"]
    import_ms = None
    function = handlers.get(path)
    if function is None:
        started, waited = time.perf_counter(), run_delay_ms()
        try:
            function = resolve(path)
        except BaseException as error:  # a broken module must not kill the worker
            return _failure("Runtime.ImportModuleError", error, (0.0, 0.0, 0.0), None)
        import_ms = (time.perf_counter() - started) * 1000.0 - (run_delay_ms() - waited)
        import_ms = max(0.0, import_ms)
        handlers[path] = function
    reset_peak()
    start = time.process_time(), time.perf_counter(), run_delay_ms()
    try:
        payload = function(task["event"], LambdaContext(task))
        payload = json.loads(json.dumps(payload))  # Lambda returns JSON; fail like it does
    except MemoryError as error:
        return _failure("Runtime.OutOfMemory", error, _elapsed(*start), import_ms, "oom")
    except BaseException as error:
        return _failure(type(error).__name__, error, _elapsed(*start), import_ms)
    cpu, wall, wait = _elapsed(*start)
    return {
        "status": "ok",
        "payload": payload,
        "cpu_ms": cpu,
        "wall_ms": wall,
        "wait_ms": wait,
        "peak_rss_mb": peak_rss_mb(),
        "import_ms": import_ms,
    }


def _elapsed(cpu0: float, wall0: float, wait0: float) -> tuple[float, float, float]:
    """CPU time, wall time and CPU-wait time since the given readings, in ms."""
    return (
        (time.process_time() - cpu0) * 1000.0,
        (time.perf_counter() - wall0) * 1000.0,
        run_delay_ms() - wait0,
    )


def _failure(
    error_type: str,
    error: BaseException,
    elapsed: tuple[float, float, float],
    import_ms: float | None,
    status: str = "error",
) -> dict[str, Any]:
    message = str(error)
    cpu_ms, wall_ms, wait_ms = elapsed
    return {
        "status": status,
        "payload": {
            "errorMessage": message,
            "errorType": error_type,
            "stackTrace": traceback.format_exception(error)[-5:],
        },
        "error_type": error_type,
        "error_message": message,
        "cpu_ms": cpu_ms,
        "wall_ms": wall_ms,
        "wait_ms": wait_ms,
        "peak_rss_mb": peak_rss_mb(),
        "import_ms": import_ms,
    }


def main(read_fd: int, write_fd: int) -> None:
    tasks = Connection(read_fd, writable=False)
    replies = Connection(write_fd, readable=False)
    handlers: dict[str, Any] = {}
    replies.send({"status": "ready", "pid": os.getpid(), "peak_rss_mb": peak_rss_mb()})
    while True:
        try:
            task = tasks.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        replies.send(run(task, handlers))
