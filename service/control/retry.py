"""What to do after a failed invocation (docs/safety.md). Pure: outcome in, decision out.

- out of memory → retry at a size that fits: what the other tasks of the same shape needed
  (their largest observed peak plus a margin) when that is more than the size that failed, else
  twice the largest size any task of the shape ran out of memory at (and at least the failed
  invocation's peak plus a margin), up to Lambda's maximum. Out-of-memory retries are exploration
  of the footprint, not the function's fault: they use up no attempt; they are bounded because
  every one is larger than the last, and at the maximum the task fails with that reason;
- throttled → retry the same memory after a capped exponential back-off with full jitter;
- timeout → retry once at the same memory (a timeout is not a memory signal), then fail;
- handled / unhandled error → retry up to ``max_attempts`` (out-of-memory and throttled
  invocations not counted), then fail.

``oom_floors`` turns the same evidence into the floor every later decision for a shape keeps to.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass

from service.models.enums import InvocationOutcome
from service.spec import MAX_MEMORY_MB

OOM_FACTOR = 2  # no peak known to fit: double (from the largest size that ran out of memory)
OOM_MARGIN_MB = 64
NEED_MARGIN = 1.1  # above the largest peak another task of the shape used

# (shape, memory_mb, peak_mb, outcome) of one finished invocation
Run = tuple[str, int, float | None, str | None]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    timeout_retries: int = 1
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0


@dataclass(frozen=True)
class Retry:
    memory_mb: int
    delay_s: float
    reason: str


@dataclass(frozen=True)
class GiveUp:
    reason: str


@dataclass(frozen=True)
class ShapeMemory:
    """What the tasks of one shape showed about its memory so far."""

    needed_mb: int | None = None  # their largest peak in a successful run, plus a margin
    exhausted_mb: int | None = None  # the largest size at which one ran out of memory

    @classmethod
    def of(cls, shape: str, runs: Iterable[Run]) -> ShapeMemory:
        peaks, exhausted = [], []
        for name, memory_mb, peak_mb, outcome in runs:
            if name != shape:
                continue
            if outcome == InvocationOutcome.OUT_OF_MEMORY.value:
                exhausted.append(memory_mb)
            elif outcome == InvocationOutcome.OK.value and peak_mb:
                peaks.append(float(peak_mb))
        return cls(
            needed_mb=needed_mb(max(peaks)) if peaks else None,
            exhausted_mb=max(exhausted) if exhausted else None,
        )


def needed_mb(peak_mb: float) -> int:
    """A peak plus the margin: ``max(peak × 1.1, peak + 64 MB)``, within Lambda's maximum."""
    return min(MAX_MEMORY_MB, math.ceil(max(peak_mb * NEED_MARGIN, peak_mb + OOM_MARGIN_MB)))


def after_failure(
    outcome: InvocationOutcome,
    *,
    attempts: int,
    timeouts: int,
    throttles: int,
    memory_mb: int,
    peak_mb: float | None,
    policy: RetryPolicy,
    rng: random.Random,
    ooms: int = 0,
    shape: ShapeMemory | None = None,
) -> Retry | GiveUp:
    """``attempts`` counts the invocations already made (throttled and out-of-memory ones
    included); ``throttles`` and ``ooms`` how many of them were throttled or ran out of memory
    (this one included); ``shape`` what the task's shape showed so far."""
    if outcome is InvocationOutcome.THROTTLED:
        # Throttles are not the function's fault: they do not use up attempts.
        ceiling = min(policy.backoff_cap_s, policy.backoff_base_s * 2 ** min(throttles, 16))
        return Retry(memory_mb, rng.uniform(0, ceiling), "throttled: backing off")
    real_attempts = attempts - throttles - ooms
    if outcome is InvocationOutcome.OUT_OF_MEMORY:
        target = oom_retry_mb(memory_mb, peak_mb, shape)
        if target <= memory_mb:
            return GiveUp(f"out of memory at the maximum of {MAX_MEMORY_MB} MB")
        known = shape is not None and shape.needed_mb is not None and target == shape.needed_mb
        why = "what other tasks of the shape needed" if known else "doubled"
        return Retry(
            target, 0.0, f"out of memory at {memory_mb} MB: retrying at {target} MB ({why})"
        )
    if outcome is InvocationOutcome.TIMEOUT:
        if timeouts > policy.timeout_retries:
            return GiveUp(f"timed out {timeouts} times at {memory_mb} MB")
        return Retry(memory_mb, 0.0, "timed out: retrying once")
    if real_attempts >= policy.max_attempts:
        return GiveUp(f"{outcome.value} error after {real_attempts} attempts")
    ceiling = min(policy.backoff_cap_s, policy.backoff_base_s * 2 ** max(0, real_attempts - 1))
    return Retry(memory_mb, rng.uniform(0, ceiling), f"{outcome.value} error: retrying")


def oom_retry_mb(memory_mb: int, peak_mb: float | None, shape: ShapeMemory | None = None) -> int:
    """The size an out-of-memory task retries at, capped at Lambda's maximum: what other tasks
    of its shape needed when that is more than ``memory_mb``; else twice the largest size the
    shape ran out of memory at, and above the failed run's peak by a margin (on Lambda an
    out-of-memory run reports its whole memory as used, so that is ``memory_mb`` + margin)."""
    shape = shape or ShapeMemory()
    if shape.needed_mb is not None and shape.needed_mb > memory_mb:
        return shape.needed_mb
    exhausted = max(memory_mb, shape.exhausted_mb or 0)
    wanted = max(OOM_FACTOR * exhausted, (peak_mb or 0) + OOM_MARGIN_MB)
    return min(MAX_MEMORY_MB, math.ceil(wanted))


def oom_floors(runs: Iterable[Run]) -> dict[str, int]:
    """Per shape that ran out of memory, the least memory its later decisions may take: above
    the largest size that ran out, and at least what its successful runs needed (their peak plus
    the margin) — not the size a retry happened to reach, which doubling may overshoot."""
    runs = list(runs)
    floors = {}
    for shape in sorted(
        {run[0] for run in runs if run[3] == InvocationOutcome.OUT_OF_MEMORY.value}
    ):
        memory = ShapeMemory.of(shape, runs)
        assert memory.exhausted_mb is not None
        floors[shape] = min(MAX_MEMORY_MB, max(memory.exhausted_mb + 1, memory.needed_mb or 0))
    return floors
