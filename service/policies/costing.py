"""What an invocation is predicted to cost, and the memory sizes policies choose from."""

from __future__ import annotations

import math

from service.platform.pricing import GB_SECOND_USD, REQUEST_USD

# Lambda takes any size in 1 MB steps (docs/platform.md); a policy searches this grid, dense where
# the CPU share changes shape (below 1 vCPU at 1,769 MB) and coarser above.
MEMORY_GRID = (
    128,
    192,
    256,
    320,
    384,
    448,
    512,
    640,
    768,
    896,
    1024,
    1152,
    1280,
    1408,
    1536,
    1664,
    1769,
    2048,
    2304,
    2560,
    3008,
    3584,
    4096,
    5120,
    6144,
    7168,
    8192,
    9216,
    10240,
)
_REQUEST = float(REQUEST_USD)
_GBS = {arch: float(price) for arch, price in GB_SECOND_USD.items()}


def invocation_usd(
    memory_mb: float, duration_ms: float, init_ms: float = 0.0, architecture: str = "x86_64"
) -> float:
    """Billed duration (duration + init, rounded up to 1 ms) × GB × rate, plus the request."""
    billed_ms = math.ceil(duration_ms + init_ms)
    return memory_mb / 1024 * billed_ms / 1000 * _GBS[architecture] + _REQUEST


def grid_between(low_mb: int, high_mb: int) -> list[int]:
    """Grid sizes in [low, high], with both ends included."""
    inside = [m for m in MEMORY_GRID if low_mb <= m <= high_mb]
    return sorted({low_mb, *inside, high_mb}) if low_mb <= high_mb else [low_mb]


def cold_start_usd(memory_mb: float, init_ms: float, architecture: str = "x86_64") -> float:
    """What one cold start adds to an invocation's bill: its init time, billed at its memory."""
    return memory_mb / 1024 * init_ms / 1000 * _GBS[architecture]
