"""Fixtures for the workload tests: events, and handlers run in isolated subprocesses.

Memory is measured in subprocesses because ``ru_maxrss`` is a high-water mark: inside the test
process it would hold whatever the largest earlier test allocated.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from service.workloads.contract import CONTRACT

ROOT = Path(__file__).resolve().parents[2]
EventFactory = Callable[..., dict[str, Any]]

# Runs one handler invocation; with a headroom, the address space is capped at what the process
# already maps (interpreter, NumPy, the handler's imports) plus that headroom, like a function
# whose memory setting leaves that much room for the work.
_CHILD = r"""
import json, resource, sys
spec = json.loads(sys.argv[1])
from service.workloads.registry import load_handler
handler = load_handler(spec["handler"])
if spec["headroom_mb"] is not None:
    with open("/proc/self/status") as status:
        mapped_kb = next(int(l.split()[1]) for l in status if l.startswith("VmSize:"))
    limit = mapped_kb * 1024 + spec["headroom_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    response = handler(spec["event"], None)
except MemoryError:
    print(json.dumps({"outcome": "OutOfMemory"}))
    sys.exit(0)
print(json.dumps({"outcome": "error" if "error" in response else "ok", "response": response}))
"""


@pytest.fixture
def make_event(tmp_path: Path) -> EventFactory:
    """Events for one temporary store; keyword arguments override fields."""

    def build(**fields: Any) -> dict[str, Any]:
        event = {
            "contract": CONTRACT,
            "job_id": "job-1",
            "task_id": "task-1",
            "attempt": 1,
            "kind": "hpo",
            "params": {},
            "epoch_from": 0,
            "epoch_to": 1,
            "checkpoint_in": None,
            "checkpoint_out": f"file://{tmp_path}/checkpoints",
            "dataset": "builtin:digits",
            "store": f"file://{tmp_path}",
        }
        event.update(fields)
        if event["kind"] == "training":
            event.setdefault("worker", 0)
            event.setdefault("workers", 1)
            event.setdefault("round", 0)
        return event

    return build


def invoke_isolated(
    handler: str, event: dict[str, Any], headroom_mb: int | None = None
) -> dict[str, Any]:
    """Invoke ``handler`` (an import path) in a fresh single-threaded Python process.

    Returns ``{"outcome": "ok" | "error" | "OutOfMemory", "response": …}``. A child the memory
    cap killed outright (a C allocation failing inside BLAS) also counts as out of memory.
    """
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    spec = {"handler": handler, "event": event, "headroom_mb": headroom_mb}
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(spec)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        if headroom_mb is not None:
            return {"outcome": "OutOfMemory", "returncode": completed.returncode}
        raise AssertionError(f"child failed ({completed.returncode}): {completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.fixture
def isolated() -> Callable[..., dict[str, Any]]:
    return invoke_isolated
