"""Drift: durations that change while a job runs, for the simulator.

A stationary workload takes the same time per epoch from the first round to the last; real
ones do not always: a data source slows down, a noisy neighbour arrives, a cache warms up. A
``Drift`` is a slowdown factor as a function of the time since the job started, applied by the
emulator to every run that starts then (``EmulatorPlatform(slowdown=...)``):

- ``jump:AT_S:FACTOR`` — runs starting ``AT_S`` seconds or more into the job take ``FACTOR``
  times as long (a slower data source from then on);
- ``trend:PCT`` — every minute into the job adds ``PCT`` % to a run's duration, linearly
  (a growing backlog, a degrading neighbour).

It is the environment, not the workload model: the oracle's truth does not know it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Drift:
    kind: Literal["jump", "trend"]
    at_s: float = 0.0  # jump: when
    factor: float = 1.0  # jump: how many times slower afterwards
    pct_per_min: float = 0.0  # trend: percent slower per minute into the job

    def __post_init__(self) -> None:
        if self.kind == "jump" and not (self.at_s >= 0 and 0 < self.factor <= 100):
            raise ValueError("a jump needs AT_S >= 0 and 0 < FACTOR <= 100")
        if self.kind == "trend" and not (-50 < self.pct_per_min <= 1000):
            raise ValueError("a trend needs -50 < PCT <= 1000")

    def factor_at(self, elapsed_s: float) -> float:
        if self.kind == "jump":
            return self.factor if elapsed_s >= self.at_s else 1.0
        return max(0.1, 1.0 + self.pct_per_min / 100.0 * max(0.0, elapsed_s) / 60.0)

    @property
    def label(self) -> str:
        if self.kind == "jump":
            return f"jump:{self.at_s:g}:{self.factor:g}"
        return f"trend:{self.pct_per_min:g}"

    @classmethod
    def parse(cls, text: str) -> Drift:
        """``jump:AT_S:FACTOR`` or ``trend:PCT``; ValueError naming the form otherwise."""
        parts = text.strip().split(":")
        try:
            numbers = [float(p) for p in parts[1:]]
        except ValueError:
            numbers = []
        if any(not math.isfinite(n) for n in numbers):
            numbers = []
        if parts[0] == "jump" and len(numbers) == 2:
            return cls("jump", at_s=numbers[0], factor=numbers[1])
        if parts[0] == "trend" and len(numbers) == 1:
            return cls("trend", pct_per_min=numbers[0])
        raise ValueError(f"drift {text!r}: expected jump:AT_S:FACTOR or trend:PCT")
