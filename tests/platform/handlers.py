"""Tiny Lambda-style handlers that the platform tests run for real in the emulator."""

from __future__ import annotations

import time
from typing import Any


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"echo": event, "memory_limit_in_mb": context.memory_limit_in_mb}


def cpu_loop(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Burn CPU for about event['cpu_ms'] milliseconds of CPU time."""
    target = float(event.get("cpu_ms", 50)) / 1000.0
    started = time.process_time()
    count = 0
    while time.process_time() - started < target:
        count += sum(range(1000))
    return {"count": count}


def allocate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Hold event['mb'] MB of touched memory for a moment."""
    block = bytearray(int(event["mb"]) * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    time.sleep(float(event.get("hold_s", 0.02)))
    return {"allocated_mb": len(block) // (1024 * 1024)}


def fail(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise ValueError(event.get("message", "boom"))


def sleep(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Wait without using CPU (stands for I/O)."""
    time.sleep(float(event.get("seconds", 0.05)))
    return {"slept": True}


_LOADED: list[int] = []  # what a handler caches on first use in its environment (a dataset)


def first_use(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Load (burn event['load_cpu_ms'] of CPU) on the first call in this process only, and say
    whether it did; also report the BLAS thread setting the process runs with."""
    import os

    first = not _LOADED
    if first:
        cpu_loop({"cpu_ms": event.get("load_cpu_ms", 100)}, context)
        _LOADED.append(1)
    return {"first": first, "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS")}


def exit_now(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """End the runtime process at once with event['code'] (a crash, not an exception)."""
    import os

    os._exit(int(event.get("code", 3)))
