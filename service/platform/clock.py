"""Clocks: the wall clock for the live service and a virtual clock for simulation.

The emulator computes when each invocation completes and only reports it once `now()` has
reached that time, so the same code runs a one-hour job in real time on the `WallClock` and in
milliseconds on a `VirtualClock` that the simulation driver advances.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now(self) -> float:
        """Seconds. WallClock: Unix epoch seconds, so the AWS backend can use them directly."""
        ...

    def sleep(self, seconds: float) -> None:
        """Let `seconds` pass (a VirtualClock advances instead of waiting)."""
        ...


class WallClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class VirtualClock:
    """Simulated time that moves only when told to; never goes backwards."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a virtual clock cannot go backwards")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, when: float) -> float:
        with self._lock:
            if when < self._now:
                raise ValueError(f"a virtual clock cannot go backwards ({when} < {self._now})")
            self._now = float(when)
            return self._now
