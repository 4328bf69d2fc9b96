"""What to do after a failed invocation (docs/safety.md). Pure: outcome in, decision out.

- out of memory → raise memory to at least ×1.5, and to the observed peak plus a margin, then
  retry (the VPA recommender's OOM bump, max(+margin, ×factor), with a larger factor: an
  out-of-memory invocation loses its run, and a pilot from a small size must reach a large
  footprint within the attempts — 256 MB grows to 1,296 MB in four);
- throttled → retry the same memory after a capped exponential back-off with full jitter;
- timeout → retry once at the same memory (a timeout is not a memory signal), then fail;
- handled / unhandled error → retry up to ``max_attempts``, then fail;
- at the memory ceiling an out-of-memory task cannot grow: fail with that reason.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from service.domain.enums import InvocationOutcome
from service.domain.lambda_limits import MAX_MEMORY_MB

OOM_FACTOR = 1.5
OOM_MARGIN_MB = 64


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
) -> Retry | GiveUp:
    """``attempts`` counts the invocations already made (throttled ones included)."""
    if outcome is InvocationOutcome.THROTTLED:
        # Throttles are not the function's fault: they do not use up attempts.
        ceiling = min(policy.backoff_cap_s, policy.backoff_base_s * 2 ** min(throttles, 16))
        return Retry(memory_mb, rng.uniform(0, ceiling), "throttled: backing off")
    real_attempts = attempts - throttles
    if outcome is InvocationOutcome.OUT_OF_MEMORY:
        if memory_mb >= MAX_MEMORY_MB:
            return GiveUp(f"out of memory at the maximum of {MAX_MEMORY_MB} MB")
        if real_attempts >= policy.max_attempts:
            return GiveUp(f"out of memory after {real_attempts} attempts")
        return Retry(oom_bump(memory_mb, peak_mb), 0.0, f"out of memory at {memory_mb} MB")
    if outcome is InvocationOutcome.TIMEOUT:
        if timeouts > policy.timeout_retries:
            return GiveUp(f"timed out {timeouts} times at {memory_mb} MB")
        return Retry(memory_mb, 0.0, "timed out: retrying once")
    if real_attempts >= policy.max_attempts:
        return GiveUp(f"{outcome.value} error after {real_attempts} attempts")
    ceiling = min(policy.backoff_cap_s, policy.backoff_base_s * 2 ** (real_attempts - 1))
    return Retry(memory_mb, rng.uniform(0, ceiling), f"{outcome.value} error: retrying")


def oom_bump(memory_mb: int, peak_mb: float | None) -> int:
    """At least ×1.5, and above the observed peak by a margin; capped at Lambda's maximum."""
    wanted = max(memory_mb * OOM_FACTOR, memory_mb + OOM_MARGIN_MB)
    if peak_mb is not None:
        wanted = max(wanted, peak_mb + OOM_MARGIN_MB)
    return min(MAX_MEMORY_MB, math.ceil(wanted))
