"""``cescale profile``: measure a workload locally and write its emulator code profile.

The emulator (docs/platform.md) predicts a function's duration at any memory size from a small
profile: CPU time at one thread, the parallel fraction (Amdahl), I/O that does not scale with
CPU, init (cold start) time and peak memory. This module measures those numbers on this machine
by running the real handler in fresh subprocesses, once with BLAS limited to one thread and once
with two, repeating each invocation and taking the median because shared machines are noisy.

Thread limits must be set before NumPy loads its BLAS, hence subprocesses with
``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` rather than switching threads in this process.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.workloads.registry import UnknownWorkload, resolve

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
CHILD_TIMEOUT_S = 1_800


class ProfileError(Exception):
    """The workload could not be profiled; ``usage`` is True when the input was at fault."""

    def __init__(self, message: str, *, usage: bool) -> None:
        super().__init__(message)
        self.usage = usage


@dataclass(frozen=True)
class ProfileRequest:
    workload: str
    dataset: str = "builtin:digits"
    params: dict[str, Any] | None = None
    epochs: int = 1
    kind: str = "hpo"
    repeats: int = 3
    threads: int = 2

    def handler_path(self) -> str:
        """A built-in's handler, or the workload itself given as ``module:function``."""
        try:
            return resolve(self.workload, self.kind)
        except UnknownWorkload as exc:
            if self.workload.startswith("builtin:") or ":" not in self.workload:
                raise ProfileError(str(exc), usage=True) from None
            return self.workload


def profile(
    request: ProfileRequest, on_step: Callable[[str], None] = lambda line: None
) -> dict[str, Any]:
    """The code profile of ``request.workload``, in the emulator's format. ``on_step`` hears of
    each run as it starts (progress for the command)."""
    if request.threads < 2:
        raise ProfileError("the parallel fraction needs a run with >= 2 threads", usage=True)
    path = request.handler_path()
    on_step(f"{request.repeats} run(s) at 1 thread")
    single = _run_child(request, path, threads=1)
    on_step(f"{request.repeats} run(s) at {request.threads} threads")
    multi = _run_child(request, path, threads=request.threads)
    t1 = max(_median(single, "compute_ms"), 1e-3)
    tn = _median(multi, "compute_ms")
    # Amdahl: t_n / t_1 = (1 - p) + p / n, solved for p; noise can push it outside [0, 1].
    fraction = (1.0 - tn / t1) / (1.0 - 1.0 / request.threads)
    return {
        "name": request.workload,
        "cpu_ms": round(_median(single, "cpu_ms"), 1),
        "parallel_fraction": round(min(1.0, max(0.0, fraction)), 3),
        "max_threads": request.threads,
        "io_ms": round(_median(single, "io_ms"), 1),
        "peak_memory_mb": max(single["peak_memory_mb"], multi["peak_memory_mb"]),
        "init_ms": round(single["init_ms"], 1),
    }


def _median(measured: dict[str, Any], key: str) -> float:
    return statistics.median(run[key] for run in measured["runs"])


def _run_child(request: ProfileRequest, path: str, threads: int) -> dict[str, Any]:
    spec = {
        "handler": path,
        "dataset": request.dataset,
        "params": request.params or {},
        "epochs": request.epochs,
        "kind": request.kind,
        "repeats": request.repeats,
    }
    env = {**os.environ, **dict.fromkeys(THREAD_VARIABLES, str(threads))}
    completed = subprocess.run(
        [sys.executable, "-m", __name__, json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    lines = completed.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = completed.stderr.strip().splitlines()[-5:]
        raise ProfileError(
            f"profiling run exited {completed.returncode}: " + " | ".join(tail), usage=False
        ) from None
    if "error" in result:
        error = result["error"]
        raise ProfileError(f"{error['type']}: {error['message']}", usage=error.get("usage", True))
    return result


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs in the subprocess: init once (imports, dataset), then ``repeats`` warm invocations."""
    started = time.perf_counter()
    from service.workloads.datasets import DatasetError, load_dataset
    from service.workloads.registry import load_handler
    from service.workloads.usage import peak_memory_mb

    try:
        handler = load_handler(spec["handler"])
    except UnknownWorkload as exc:
        return {"error": {"type": "UnknownWorkload", "message": str(exc)}}
    with contextlib.suppress(Exception):  # a rejected event loads the lazy imports (jsonschema)
        handler({}, None)  # as a cold start does
    try:
        load_dataset(spec["dataset"])
    except DatasetError as exc:
        return {"error": {"type": "InvalidInput", "message": str(exc)}}
    except LookupError as exc:
        return {"error": {"type": "InvalidInput", "message": f"dataset {exc} does not exist"}}
    except Exception as exc:  # no S3 credentials, an outage, out of memory: one clear line
        return {"error": _unexpected(exc)}
    init_ms = (time.perf_counter() - started) * 1000.0
    try:
        runs = _invocations(handler, spec)
    except Exception as exc:  # what Lambda would report as FunctionError: Unhandled
        return {"error": _unexpected(exc)}
    if isinstance(runs, dict):
        return runs
    return {"init_ms": init_ms, "runs": runs, "peak_memory_mb": peak_memory_mb()}


def _unexpected(exc: BaseException) -> dict[str, Any]:
    """An error that is not the caller's input: reported as one line, exit status 1."""
    return {"type": type(exc).__name__, "message": str(exc) or repr(exc), "usage": False}


def _invocations(handler: Any, spec: dict[str, Any]) -> list[dict[str, float]] | dict[str, Any]:
    """``repeats`` warm invocations in a scratch store; a handled error payload ends them."""
    from service.workloads.contract import CONTRACT

    runs = []
    with tempfile.TemporaryDirectory(prefix="cescale-profile-") as directory:
        root = f"file://{directory}"
        for repeat in range(spec["repeats"]):
            event = {
                "contract": CONTRACT,
                "job_id": "profile",
                "task_id": f"run-{repeat}",
                "attempt": 1,
                "kind": spec["kind"],
                "params": spec["params"],
                "epoch_from": 0,
                "epoch_to": spec["epochs"],
                "checkpoint_in": None,
                "checkpoint_out": f"{root}/checkpoints",
                "dataset": spec["dataset"],
                "store": root,
            }
            if spec["kind"] == "training":
                event |= {"worker": 0, "workers": 1, "round": 0}
            cpu, wall = time.process_time(), time.perf_counter()
            response = handler(event, None)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if "error" in response:
                return {"error": response["error"]}
            timings = response.get("timings_ms", {})
            io_ms = sum(timings.get(k, 0.0) for k in ("dataset", "checkpoint_io", "result_write"))
            runs.append(
                {
                    "cpu_ms": cpu * 1000.0,
                    "wall_ms": wall * 1000.0,
                    "io_ms": io_ms,
                    "compute_ms": max(0.0, wall * 1000.0 - io_ms),
                }
            )
    return runs


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))
