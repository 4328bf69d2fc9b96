"""Budget admission: launch a task only when the budget holds for it.

A budget cap that is checked only against what has been spent lets a whole rung launch at once
and overshoot (an audit measured +56 %). So a launch is admitted only when the spend so far,
plus the predicted cost of what is in flight, plus the launch's own predicted cost stays within
the cap; when nothing is in flight and the spend is below the cap, one launch is admitted
whatever its prediction, so the job ends at most one invocation's cost over the cap.

The prediction comes from the job's own finished runs, read both ways a duration can scale with
memory — as CPU-bound work (the same cost per epoch at any size up to one vCPU) and as
I/O-bound work (cost per epoch proportional to memory) — and the larger of the two is taken, as
is the costliest run seen: overestimating only slows the launches down near the cap. Before
any run of the job has finished, nothing is known: one invocation runs at a time until one
has. Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from service.policies.costing import invocation_usd


@dataclass(frozen=True)
class Run:
    shape: str
    memory_mb: int
    duration_ms: float
    init_ms: float | None
    epochs: int


@dataclass(frozen=True)
class CostModel:
    """Per shape (and over all shapes, for a shape not seen yet): the costliest run's cost per
    epoch and per MB-epoch."""

    per_epoch: dict[str | None, float] = field(default_factory=dict)
    per_mb_epoch: dict[str | None, float] = field(default_factory=dict)

    @classmethod
    def of(cls, runs: Iterable[Run], architecture: str) -> CostModel:
        per_epoch: dict[str | None, float] = {}
        per_mb_epoch: dict[str | None, float] = {}
        for run in runs:
            epochs = max(1, run.epochs)
            cost = invocation_usd(run.memory_mb, run.duration_ms, run.init_ms or 0.0, architecture)
            for key in (run.shape, None):
                per_epoch[key] = max(per_epoch.get(key, 0.0), cost / epochs)
                per_mb_epoch[key] = max(per_mb_epoch.get(key, 0.0), cost / epochs / run.memory_mb)
        return cls(per_epoch, per_mb_epoch)

    def predict(self, shape: str, memory_mb: int, epochs: int) -> float | None:
        key = shape if shape in self.per_epoch else None
        if key not in self.per_epoch:
            return None
        epochs = max(1, epochs)
        return epochs * max(self.per_epoch[key], self.per_mb_epoch[key] * memory_mb)


@dataclass
class Admission:
    """What a job may still launch this tick under its cap."""

    cap_usd: float
    spent_usd: float
    model: CostModel
    in_flight_usd: float = 0.0
    in_flight: int = 0
    unknown_in_flight: int = 0  # launches whose cost could not be predicted yet

    def hold(self, shape: str, memory_mb: int, epochs: int) -> None:
        """Count an invocation already in flight."""
        self._add(self.model.predict(shape, memory_mb, epochs))

    def admit(self, shape: str, memory_mb: int, epochs: int) -> bool:
        """Whether this launch may go; if so it counts as in flight from now on."""
        predicted = self.model.predict(shape, memory_mb, epochs)
        if self.spent_usd >= self.cap_usd:
            return False
        if self.in_flight == 0:
            ok = True  # the last launch may overshoot the cap by its own cost, no more
        elif predicted is None or self.unknown_in_flight:
            ok = False  # nothing to predict with yet: one at a time until a run has finished
        else:
            ok = self.spent_usd + self.in_flight_usd + predicted <= self.cap_usd
        if ok:
            self._add(predicted)
        return ok

    def _add(self, predicted: float | None) -> None:
        self.in_flight += 1
        if predicted is None:
            self.unknown_in_flight += 1
        else:
            self.in_flight_usd += predicted
