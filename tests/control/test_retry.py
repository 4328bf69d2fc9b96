"""What a failed invocation leads to (docs/safety.md): pure decisions, no loop."""

from __future__ import annotations

import random

import pytest

from service.control.retry import GiveUp, Retry, RetryPolicy, ShapeMemory, after_failure, oom_floors
from service.models.enums import InvocationOutcome as Outcome

POLICY = RetryPolicy(max_attempts=4, backoff_base_s=1.0, backoff_cap_s=60.0)


def decide(
    outcome, *, attempts=1, timeouts=0, throttles=0, memory_mb=512, peak_mb=None, ooms=0, shape=None
):
    return after_failure(
        outcome,
        attempts=attempts,
        timeouts=timeouts,
        throttles=throttles,
        memory_mb=memory_mb,
        peak_mb=peak_mb,
        policy=POLICY,
        rng=random.Random(0),
        ooms=ooms,
        shape=shape,
    )


def test_out_of_memory_doubles_without_evidence_and_stays_above_the_peak():
    bump = decide(Outcome.OUT_OF_MEMORY, memory_mb=512, peak_mb=512)
    assert isinstance(bump, Retry) and bump.memory_mb == 1024 and bump.delay_s == 0
    to_peak = decide(Outcome.OUT_OF_MEMORY, memory_mb=512, peak_mb=2000)
    assert to_peak.memory_mb > 2000
    assert decide(Outcome.OUT_OF_MEMORY, memory_mb=9000).memory_mb == 10240  # capped
    at_max = decide(Outcome.OUT_OF_MEMORY, memory_mb=10240)
    assert isinstance(at_max, GiveUp) and "maximum" in at_max.reason


def test_out_of_memory_jumps_to_what_other_tasks_of_the_shape_needed():
    # a sibling ran at 2048 MB and used 1,146 MB: no need to climb 256 → 512 → 1024 → 2048
    shape = ShapeMemory.of(
        "big",
        [
            ("big", 2048, 1146.0, "ok"),
            ("small", 256, 90.0, "ok"),
            ("big", 256, 256.0, "out_of_memory"),
        ],
    )
    assert shape == ShapeMemory(needed_mb=1261, exhausted_mb=256)  # max(×1.1, +64 MB)
    retry = decide(Outcome.OUT_OF_MEMORY, memory_mb=256, peak_mb=256, shape=shape)
    assert isinstance(retry, Retry) and retry.memory_mb == 1261
    assert "what other tasks of the shape needed" in retry.reason
    # the sibling's need is below what just failed: this task is bigger, double
    assert decide(Outcome.OUT_OF_MEMORY, memory_mb=1400, shape=shape).memory_mb == 2800
    # another task of the shape already ran out at 1024 MB: start doubling from there
    tried = ShapeMemory(exhausted_mb=1024)
    assert decide(Outcome.OUT_OF_MEMORY, memory_mb=256, shape=tried).memory_mb == 2048


def test_out_of_memory_retries_use_up_no_attempt_and_end_at_the_maximum():
    """From a 128 MB pilot a 9 GB footprint is reached, however many attempts that takes; a
    task that does not fit at the maximum fails with that reason."""
    memory, attempts, sizes = 128, 0, []
    while True:
        attempts += 1
        if memory >= 9000:  # fits
            break
        decision = decide(Outcome.OUT_OF_MEMORY, attempts=attempts, ooms=attempts, memory_mb=memory)
        assert isinstance(decision, Retry), decision
        assert decision.memory_mb > memory
        memory = decision.memory_mb
        sizes.append(memory)
    assert sizes == [256, 512, 1024, 2048, 4096, 8192, 10240] and attempts > POLICY.max_attempts
    # an error after those retries still has its full budget of attempts
    assert isinstance(decide(Outcome.UNHANDLED, attempts=9, ooms=7), Retry)
    assert isinstance(decide(Outcome.UNHANDLED, attempts=11, ooms=7), GiveUp)
    final = decide(Outcome.OUT_OF_MEMORY, attempts=20, ooms=20, memory_mb=10240)
    assert isinstance(final, GiveUp) and final.reason == "out of memory at the maximum of 10240 MB"


def test_oom_floor_is_above_what_ran_out_and_at_least_what_succeeded_needed():
    runs = [
        ("big", 256, 256.0, "out_of_memory"),
        ("big", 512, 512.0, "out_of_memory"),
        ("big", 1024, 1024.0, "out_of_memory"),
        ("big", 2048, 1146.0, "ok"),  # the doubling overshot: the floor is not 2048
        ("other", 384, 384.0, "out_of_memory"),  # no success yet: just above what failed
        ("small", 128, 60.0, "ok"),  # never ran out: no floor (the policy's peak floor holds)
    ]
    assert oom_floors(runs) == {"big": 1261, "other": 385}


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
