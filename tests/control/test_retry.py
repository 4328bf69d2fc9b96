"""What a failed invocation leads to (docs/safety.md): pure decisions, no loop."""

from __future__ import annotations

import random

import pytest

from service.control.retry import GiveUp, Retry, RetryPolicy, after_failure
from service.models.enums import InvocationOutcome as Outcome

POLICY = RetryPolicy(max_attempts=4, backoff_base_s=1.0, backoff_cap_s=60.0)


def decide(outcome, *, attempts=1, timeouts=0, throttles=0, memory_mb=512, peak_mb=None):
    return after_failure(
        outcome,
        attempts=attempts,
        timeouts=timeouts,
        throttles=throttles,
        memory_mb=memory_mb,
        peak_mb=peak_mb,
        policy=POLICY,
        rng=random.Random(0),
    )


def test_out_of_memory_raises_memory_at_least_1_2x_and_above_the_peak():
    bump = decide(Outcome.OUT_OF_MEMORY, memory_mb=512, peak_mb=None)
    assert isinstance(bump, Retry) and bump.memory_mb >= 512 * 1.2 and bump.delay_s == 0
    to_peak = decide(Outcome.OUT_OF_MEMORY, memory_mb=512, peak_mb=2000)
    assert to_peak.memory_mb > 2000
    assert decide(Outcome.OUT_OF_MEMORY, memory_mb=9000).memory_mb == 10240  # capped
    assert "maximum" in decide(Outcome.OUT_OF_MEMORY, memory_mb=10240).reason
    assert isinstance(decide(Outcome.OUT_OF_MEMORY, attempts=4), GiveUp)


def test_a_timeout_is_retried_once_at_the_same_memory_then_the_task_fails():
    first = decide(Outcome.TIMEOUT, attempts=1, timeouts=1, memory_mb=1024)
    assert isinstance(first, Retry) and first.memory_mb == 1024  # not a memory signal
    second = decide(Outcome.TIMEOUT, attempts=2, timeouts=2, memory_mb=1024)
    assert isinstance(second, GiveUp) and second.reason == "timed out 2 times at 1024 MB"


def test_throttles_back_off_with_capped_full_jitter_and_use_no_attempts():
    delays = []
    for throttles in range(1, 12):
        retry = decide(Outcome.THROTTLED, attempts=10 + throttles, throttles=throttles)
        assert isinstance(retry, Retry) and retry.memory_mb == 512
        assert 0 <= retry.delay_s <= min(60.0, 2.0**throttles)
        delays.append(retry.delay_s)
    assert max(delays) > 2.0  # the back-off grows...
    rng = random.Random(1)
    many = [
        after_failure(
            Outcome.THROTTLED,
            attempts=30,
            timeouts=0,
            throttles=20,
            memory_mb=512,
            peak_mb=None,
            policy=POLICY,
            rng=rng,
        ).delay_s
        for _ in range(200)
    ]
    assert max(many) <= 60.0 and min(many) < 10.0  # ... up to its cap, with full jitter


@pytest.mark.parametrize("outcome", [Outcome.HANDLED, Outcome.UNHANDLED])
def test_errors_are_retried_up_to_max_attempts(outcome):
    for attempts in (1, 2, 3):
        assert isinstance(decide(outcome, attempts=attempts), Retry)
    final = decide(outcome, attempts=4)
    assert isinstance(final, GiveUp) and "after 4 attempts" in final.reason
    # throttled attempts are not the function's fault and do not count
    assert isinstance(decide(outcome, attempts=6, throttles=3), Retry)
