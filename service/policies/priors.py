"""What a tenant's earlier job measured of a task shape, as a starting point for its next job on
the same work (a *prior*): the memory sizes it ran at and the mean duration per epoch at each,
its cold start and its peak memory.

A job whose shapes all have priors starts from their curves instead of a pilot. The loop hands
the priors to the policy as observations (``Observations.predictors["prior:<shape>"]``); this
module, pure, says what they are worth:

- confidence decays with age: the prior's relative error starts at ``PRIOR_ERROR`` (two jobs'
  runs differ by more than one job's: other hosts, another hour) and grows by as much again
  every ``ERROR_DOUBLING_DAYS``; a prior older than ``MAX_AGE_DAYS`` is not used at all;
- a prior the job's own runs contradict is dropped at once: when the mean duration this job
  measured at any size lies outside the prior's ``CHECK_LEVEL`` interval there, the shape is
  planned from this job's runs alone, as if there were no prior (``agrees``);
- while they agree, the shape's curve is fitted on both: this job's runs, and the prior's
  mean at each size this job has not run, weighted by the runs behind it and scaled to this
  job's level (``fit_points``);
  the fit's residual then measures how well the two agree, and the age no longer widens it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Any

from service.prediction.memory_curve import MemoryCurve

PREFIX = "prior:"
PRIOR_ERROR = 0.05  # relative error of a fresh prior's curve, at least
ERROR_DOUBLING_DAYS = 7.0
MAX_AGE_DAYS = 30.0
# The own-runs check: a size's mean outside the prior's 99 % interval there drops the prior.
# Means, not single runs: one noisy run out of a hundred must not throw a good prior away.
CHECK_LEVEL = 0.99
MAX_WEIGHT = 100  # runs a prior's mean at one size counts for in a fit, at most
DEFAULT_NOISE = 0.05  # run-to-run noise assumed when the prior's job never repeated a size
_DAY_S = 86_400.0


@dataclass(frozen=True)
class Prior:
    points: tuple[tuple[int, float, int], ...]  # (memory_mb, mean ms per epoch, runs)
    init_ms: float | None = None
    peak_mb: float | None = None
    # run-to-run noise (log-scale sigma) the job saw around each size's mean; None: unknown
    noise: float | None = None
    age_s: float = 0.0  # since the job that measured it stopped learning it
    # training: what a worker's first run in a new environment did besides its epochs
    # (``shape_model.first_run_ms``); None: not measured
    first_run_ms: float | None = None

    @property
    def usable(self) -> bool:
        return bool(self.points) and self.age_s <= MAX_AGE_DAYS * _DAY_S

    @property
    def error(self) -> float:
        """The relative error a plan gives the prior's curve: grows with its age."""
        return PRIOR_ERROR * (1.0 + max(0.0, self.age_s) / _DAY_S / ERROR_DOUBLING_DAYS)

    @property
    def sizes(self) -> set[int]:
        return {m for m, _, _ in self.points}

    def curve(self) -> MemoryCurve:
        """The prior's own curve, its interval widened to at least ``error``."""
        return widened(MemoryCurve.fit(*expanded(self.points)), self.error)

    def to_state(self) -> dict[str, Any]:
        return {
            "points": [[m, d, n] for m, d, n in self.points],
            "init_ms": self.init_ms,
            "peak_mb": self.peak_mb,
            "noise": self.noise,
            "first_run_ms": self.first_run_ms,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], age_s: float = 0.0) -> Prior:
        return cls(
            points=tuple((int(m), float(d), int(n)) for m, d, n in state["points"]),
            init_ms=state.get("init_ms"),
            peak_mb=state.get("peak_mb"),
            noise=state.get("noise"),
            age_s=float(state.get("age_s", age_s)),
            first_run_ms=state.get("first_run_ms"),
        )


def widened(curve: MemoryCurve, error: float) -> MemoryCurve:
    return replace(curve, residual_error=max(curve.residual_error, error))


def points_of(runs: Iterable[tuple[int, float]]) -> tuple[tuple[int, float, int], ...]:
    """(memory_mb, ms per epoch) runs → one (memory_mb, mean, runs) point per size."""
    by_size: dict[int, list[float]] = defaultdict(list)
    for memory, per_epoch in runs:
        by_size[int(memory)].append(float(per_epoch))
    return tuple((m, sum(ds) / len(ds), len(ds)) for m, ds in sorted(by_size.items()))


def noise_of(runs: Iterable[tuple[int, float]]) -> float | None:
    """The pooled log-scale spread of runs around their size's mean; None with no repeats."""
    by_size: dict[int, list[float]] = defaultdict(list)
    for memory, per_epoch in runs:
        by_size[int(memory)].append(math.log(per_epoch))
    squares, dof = 0.0, 0
    for logs in by_size.values():
        centre = sum(logs) / len(logs)
        squares += sum((x - centre) ** 2 for x in logs)
        dof += len(logs) - 1
    return math.sqrt(squares / dof) if dof else None


def agrees(
    prior: Prior, points: Iterable[tuple[int, float, int]], curve: MemoryCurve | None = None
) -> bool:
    """Whether every size's mean measured by this job lies inside the prior's ``CHECK_LEVEL``
    interval at that size — the curve's error there, and the noise of a mean of that many
    runs (no points: nothing contradicts it). ``curve``: the prior's, if already fitted."""
    curve = curve or prior.curve()
    z = NormalDist().inv_cdf(0.5 + CHECK_LEVEL / 2.0)
    noise = prior.noise if prior.noise is not None else DEFAULT_NOISE
    for memory, mean, runs in points:
        centre = curve.predict(memory)
        spread = z * math.hypot(curve.relative_error(memory), noise / math.sqrt(max(1, runs)))
        if abs(math.log(mean / centre)) > spread:
            return False
    return True


def fit_points(
    prior: Prior,
    runs: list[tuple[int, float]],
    checked: list[tuple[int, float]] | None = None,
) -> tuple[list[int], list[float]] | None:
    """The (memory, ms per epoch) pairs to fit a shape's curve on: this job's ``runs``, and
    the prior's mean at each size only the prior measured, counted as many times as runs made
    it (``expanded``); None when the prior is not usable or the runs contradict it (plan from
    the runs alone). ``checked``: the runs to check against the prior, when not all are like
    the prior's (training: its warm runs; default ``runs``)."""
    if not prior.usable:
        return None
    own = points_of(runs)
    curve = prior.curve()
    if not agrees(prior, points_of(runs if checked is None else checked), curve):
        return None
    level = level_of(curve, own)
    measured = {m for m, _, _ in own}
    others = [(m, d * level, n) for m, d, n in prior.points if m not in measured]
    memory, durations = expanded(others)
    return [m for m, _ in runs] + memory, [d for _, d in runs] + durations


def level_of(curve: MemoryCurve, points: Iterable[tuple[int, float, int]]) -> float:
    """How much slower (> 1) or faster this job runs than the prior's curve, over the sizes
    it measured (geometric mean, weighted by runs); 1 before it ran. The prior's means at other
    sizes are scaled by it: the prior gives the curve's shape, this job its level — otherwise a
    level shift between two jobs (another host, another hour) would read as a slope between
    this job's sizes and the prior's."""
    total = weight = 0.0
    for memory, mean, runs in points:
        total += runs * math.log(mean / curve.predict(memory))
        weight += runs
    return math.exp(total / weight) if weight else 1.0


def expanded(points: Iterable[tuple[int, float, int]]) -> tuple[list[int], list[float]]:
    """Each size's mean once per run behind it (at most ``MAX_WEIGHT``): a mean of 30 runs
    weighs in a fit as much as 30 runs, a single run as one — a noisy probe at one size must
    not bend a curve measured many times elsewhere."""
    memory: list[int] = []
    durations: list[float] = []
    for m, d, n in points:
        times = max(1, min(int(n), MAX_WEIGHT))
        memory += [m] * times
        durations += [d] * times
    return memory, durations


def merged(previous: Prior | None, job: Prior) -> Prior:
    """What to keep after a job measured ``job``: its points, plus the previous prior's points
    at sizes the job did not run when the job's runs agree with it (a prior the job
    contradicted is replaced, not merged)."""
    if previous is None or not previous.points or not agrees(previous, job.points):
        return job
    kept = [p for p in previous.points if p[0] not in job.sizes]
    return Prior(
        points=tuple(sorted([*job.points, *kept])),
        init_ms=job.init_ms if job.init_ms is not None else previous.init_ms,
        peak_mb=max((p for p in (job.peak_mb, previous.peak_mb) if p is not None), default=None),
        noise=job.noise if job.noise is not None else previous.noise,
        first_run_ms=job.first_run_ms if job.first_run_ms is not None else previous.first_run_ms,
    )


def prior_of(predictors: dict[str, dict], shape: str) -> Prior | None:
    """The prior the loop handed over for ``shape``, if any and usable."""
    stored = predictors.get(PREFIX + shape)
    if stored is None:
        return None
    prior = Prior.from_state(stored["state"])
    return prior if prior.usable else None
