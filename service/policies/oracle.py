"""``oracle`` (simulation only): CE-scaling's optimiser with perfect knowledge.

It is handed the true duration, cold start and footprint of every task shape at every memory
size (from the simulator's workload model) and, for training, the number of rounds the job will
run (the simulated loss is known in advance), so it never explores and never guesses a curve or
a round count. Benchmarks report every policy's cost relative to it.

What it does not know, and so what a policy can still win on by luck: the run-to-run noise of
each invocation (it plans every stage at a high quantile of it, ``NOISE_QUANTILE_Z``, where a
policy that plans nearer the median and happens to meet the deadline pays less), and, for HPO,
which trials will survive each rung. It also goes through the same guards (minimum gain,
cooldown) as ce-scaling.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from service.policies.base import PolicyContext
from service.policies.ce_scaling import CeScaling
from service.policies.shape_model import DurationModel

# (task params, epochs, memory_mb) -> (duration_ms, init_ms, peak_mb), without noise
Truth = Callable[[dict[str, Any], int, int], tuple[float, float, float]]


# The slowest of a stage's parallel tasks sets its time: with log-normal run-to-run noise of
# sigma, the largest of ~100 draws sits near exp(2.5 sigma) of the median. The oracle knows the
# noise too, so it plans for that rather than for the median.
NOISE_QUANTILE_Z = 2.5


@dataclass(frozen=True)
class TrueModel:
    truth: Truth
    params: dict[str, Any]
    init_ms: float
    floor_mb: int
    sigma: float = 0.0

    def duration_ms(self, memory_mb: int, epochs: int) -> float:
        return self.truth(self.params, epochs, memory_mb)[0]

    def upper_ms(self, memory_mb: int, epochs: int) -> float:
        return self.duration_ms(memory_mb, epochs) * math.exp(NOISE_QUANTILE_Z * self.sigma)

    def relative_error(self, memory_mb: int) -> float:
        return 0.0


@dataclass(frozen=True)
class Oracle(CeScaling):
    truth: Truth = field(default=lambda params, epochs, memory: (0.0, 0.0, 0.0))
    sigma: float = 0.0  # the platform's run-to-run noise (log-normal)
    name: str = "oracle"
    safety: float = 1.0
    rounds: int | None = None  # training: the rounds the job will run (the loss is known)

    def rounds_left(self, context: PolicyContext) -> int:
        if self.rounds is None:
            return CeScaling.rounds_left(context)
        return max(1, self.rounds - context.stage.position)

    def models(self, context: PolicyContext, shapes: list[str]) -> dict[str, DurationModel]:
        models = {}
        for shape in shapes:
            params = next(t.params for t in context.stage.tasks if t.shape == shape)
            _, init_ms, peak = self.truth(params, 1, 1769)
            models[shape] = TrueModel(self.truth, params, init_ms, math.ceil(peak) + 1, self.sigma)
        return models
