"""Retrying AWS calls that were refused, never ones whose outcome is unknown.

Throttles (`TooManyRequestsException`, HTTP 429) and `ResourceConflictException` (another
update in progress, docs/platform.md) are refusals: nothing happened, so they are retried with
capped exponential backoff and full jitter (AWS Architecture Blog, "Exponential Backoff And
Jitter", 2015): attempt n waits uniform(0, min(cap, base * 2**n)) seconds, and at least the
`retryAfterSeconds` the service asked for. Everything else is left to botocore's standard retry
mode on the control-plane client, or, for Invoke, reported as ambiguous by the caller.

`sleep` and `rng` are injected so tests run without waiting.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from botocore.exceptions import ClientError

T = TypeVar("T")

THROTTLE_CODES = frozenset(
    {
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestLimitExceeded",
    }
)
CONFLICT_CODES = frozenset({"ResourceConflictException"})


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def http_status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def is_throttle(error: ClientError) -> bool:
    return error_code(error) in THROTTLE_CODES or http_status(error) == 429


def is_conflict(error: ClientError) -> bool:
    return error_code(error) in CONFLICT_CODES


def is_refusal(error: ClientError) -> bool:
    """Refused before anything ran: safe to retry."""
    return is_throttle(error) or is_conflict(error)


def retry_after_seconds(error: ClientError) -> float | None:
    """Lambda's `retryAfterSeconds` (modelled from the Retry-After header), if any."""
    value = error.response.get("retryAfterSeconds")
    if value is None:
        headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with full jitter."""

    base_s: float = 0.2
    cap_s: float = 20.0
    max_attempts: int = 8

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s or self.max_attempts < 1:
            raise ValueError("need 0 < base_s <= cap_s and max_attempts >= 1")

    def ceiling(self, attempt: int) -> float:
        """Upper bound of the wait after failed attempt number `attempt` (0-based)."""
        return min(self.cap_s, self.base_s * (2.0**attempt))

    def delay(self, attempt: int, rng: random.Random, retry_after_s: float | None = None) -> float:
        jittered = rng.uniform(0.0, self.ceiling(attempt))
        if retry_after_s is not None:
            return max(jittered, retry_after_s)
        return jittered


class Retrier:
    """Calls a function, retrying refusals (by default throttles and conflicts)."""

    def __init__(
        self,
        backoff: Backoff | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.backoff = backoff or Backoff()
        self.sleep = sleep
        self.rng = rng or random.Random()

    def call(
        self,
        function: Callable[[], T],
        *,
        retry_on: Callable[[ClientError], bool] = is_refusal,
    ) -> T:
        for attempt in range(self.backoff.max_attempts):
            try:
                return function()
            except ClientError as error:
                if not retry_on(error) or attempt == self.backoff.max_attempts - 1:
                    raise
                self.wait(attempt, error)
        raise AssertionError("unreachable")  # pragma: no cover

    def wait(self, attempt: int, error: ClientError | None = None) -> float:
        after = retry_after_seconds(error) if error is not None else None
        seconds = self.backoff.delay(attempt, self.rng, after)
        self.sleep(seconds)
        return seconds
