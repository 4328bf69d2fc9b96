"""The loop's *learn* step: feed what finished this tick to the online predictors, and keep
what they learned in the database (``predictor_states``).

Per job and task shape:
- ``memory-curve:<shape>`` — duration per epoch against memory (``MemoryCurve``), refitted when
  the shape has new runs. The learner keeps each shape's points in memory and appends the runs
  of each tick to them instead of reading every finished invocation again: the stored curve's
  ``observations`` is the high-water mark, and points whose count differs from it (a restart,
  a job another replica advanced meanwhile, a rolled-back tick) are read once from the ledger.
  So are a job's when its runs got their CPU time late (Lambda Insights' events, filled by the
  metrics poll, which runs just before): its stored curves are refitted in that tick, new runs
  or not, so that no curve fitted without the figure is kept (policies use the stored curve);
- ``duration:<shape>`` — training only: the series of each round's durations relative to that
  curve, an ARIMA forecaster (``ForecasterBank``): it tracks drift the curve cannot (a slower
  data source, noisy neighbours) and gives the upper bound the next rounds are planned with.
  (An HPO rung is a batch of parallel trials, not a time series: its shapes have curves only.)
  Every series touched in a tick is updated in one vectorised call; statsmodels refits run on
  a slow cadence, at most ``refits_per_tick`` per tick (a budget by count, so a simulation
  decides the same on any machine), most stale first, warm-started, on one BLAS thread; a
  series over the budget is refitted in a later tick even if it gets no new point;
- ``loss-curve`` — training only: the loss after each round (``LossCurve``).
Per platform function, CloudWatch-shaped metrics are polled every ``metrics_interval_s`` and
stored as observations, each minute revised until it closes, and runs recorded without their
CPU time get it once the platform has it (``cloudwatch.py``).

Everything stored is small JSON (parameters and recent points), so a restarted controller, or
another replica taking a job over, resumes where this one stopped.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from service.control.cloudwatch import MetricsPoller, PollReport
from service.control.repository import LoopRepository
from service.models import PredictorState
from service.platform.interface import Platform
from service.prediction.forecaster import ROUND_DURATIONS, ForecasterBank
from service.prediction.loss_curve import LossCurve
from service.prediction.memory_curve import MemoryCurve, steady_cpu

log = logging.getLogger(__name__)

FORECASTER = ROUND_DURATIONS

_METRICS = ("invocations", "duration_avg", "duration_max", "errors", "throttles", "memory_used_max")


@dataclass(frozen=True)
class Run:
    """A run recorded this tick, as the learn step needs it."""

    job_id: uuid.UUID
    shape: str
    memory_mb: int
    duration_ms: float
    epochs: int
    cpu_ms: float | None = None  # CPU time it used, when the platform reported it
    first_run: bool = False  # the first run in a new environment (a cold start)


def job_scope(job_id: uuid.UUID) -> str:
    return f"job:{job_id}"


# (memory MB, duration ms per epoch, CPU ms per epoch or NaN when the platform did not say,
# 1.0 for a first run in a new environment else 0.0)
Point = tuple[float, float, float, float]


def point(
    memory_mb: float, duration_ms: float, cpu_ms: float | None, epochs: int, first_run: bool
) -> Point:
    per = max(1, epochs)
    cpu = math.nan if cpu_ms is None else cpu_ms / per
    return (float(memory_mb), duration_ms / per, cpu, float(first_run))


def fit_points(points: list[Point]) -> MemoryCurve:
    """The memory curve of a shape's points (``steady_cpu``: the CPU times of warm runs once
    there are any)."""
    cpu = steady_cpu([p[2] for p in points], [bool(p[3]) for p in points])
    return MemoryCurve.fit([p[0] for p in points], [p[1] for p in points], cpu_ms=cpu)


class Learner:
    def __init__(self, refits_per_tick: int = 4, metrics_interval_s: float = 60.0) -> None:
        self.refits_per_tick = refits_per_tick
        self.poller = MetricsPoller(metrics_interval_s)
        # per (job, shape): the points its stored curve was fitted on
        self._points: dict[tuple[uuid.UUID, str], list[Point]] = {}
        # series due for a refit that the budget left for a later tick
        self._refit_backlog: set[tuple[uuid.UUID, str]] = set()
        # jobs whose runs got a late CPU time since their curves were fitted: refit them
        self._stale: set[uuid.UUID] = set()

    def retain(self, job_ids: set[uuid.UUID]) -> None:
        """Forget what is kept in memory for jobs this replica no longer holds."""
        self._points = {key: v for key, v in self._points.items() if key[0] in job_ids}
        self._refit_backlog = {key for key in self._refit_backlog if key[0] in job_ids}
        self._stale &= job_ids

    def learn(
        self,
        repo: LoopRepository,
        runs: list[Run],
        rounds: dict[uuid.UUID, tuple[list[int], list[float]]],
    ) -> None:
        """``rounds``: per training job that completed rounds this tick, their stage positions
        and the loss of every round so far."""
        backlog = self._refit_backlog
        scopes = {job_scope(run.job_id) for run in runs} | {job_scope(j) for j in rounds}
        scopes |= {job_scope(job_id) for job_id, _ in backlog}
        scopes |= {job_scope(job_id) for job_id in self._stale}
        states = repo.predictor_states(scopes)
        curves = self._curves(repo, runs, states)
        self._forecasts(repo, rounds, curves, states)
        for job_id, (_, losses) in rounds.items():
            if len(losses) >= 3:
                curve = LossCurve.fit(list(range(1, len(losses) + 1)), losses)
                self._save(
                    repo, states, job_id, "loss-curve", "loss-curve", curve.to_state(), len(losses)
                )

    def _curves(self, repo, runs, states) -> dict[tuple[uuid.UUID, str], MemoryCurve]:
        new: dict[tuple[uuid.UUID, str], list[Point]] = {}
        for run in runs:
            new.setdefault((run.job_id, run.shape), []).append(
                point(run.memory_mb, run.duration_ms, run.cpu_ms, run.epochs, run.first_run)
            )
        for job_id in self._stale:  # every stored curve of the job, re-read from the ledger
            for scope, name in list(states):
                if scope == job_scope(job_id) and name.startswith("memory-curve:"):
                    new.setdefault((job_id, name.removeprefix("memory-curve:")), [])
        self._stale = set()
        curves = {}
        for job_id, shape in sorted(new):
            points = self._points_of(repo, states, job_id, shape, new[(job_id, shape)])
            curve = fit_points(points)
            curves[(job_id, shape)] = curve
            self._save(
                repo,
                states,
                job_id,
                f"memory-curve:{shape}",
                "memory-curve",
                curve.to_state(),
                len(points),
            )
        return curves

    def _points_of(self, repo, states, job_id, shape, new: list[Point]) -> list[Point]:
        """The shape's points with this tick's runs: the kept ones and ``new`` when the stored
        curve was fitted on exactly the kept ones, else every run in the ledger (which holds
        this tick's, flushed)."""
        key = (job_id, shape)
        stored = states.get((job_scope(job_id), f"memory-curve:{shape}"))
        kept = self._points.get(key)
        if kept is not None and len(kept) == (stored.observations if stored else 0):
            kept.extend(new)
        else:
            for name in [k for k in self._points if k[0] == job_id]:
                del self._points[name]
            for row in repo.samples(job_id):
                if row.outcome == "ok" and row.duration_ms:
                    self._points.setdefault((job_id, row.shape), []).append(
                        point(
                            row.memory_mb,
                            row.duration_ms,
                            row.cpu_ms,
                            row.epochs,
                            row.init_ms is not None,
                        )
                    )
        # sorted: the fit is a function of the runs, not of the order they were recorded in
        return sorted(self._points.setdefault(key, []))

    def _forecasts(self, repo, rounds, curves, states) -> None:
        """One point per completed round and shape: its slowest worker relative to the curve
        (a round lasts as long as its slowest worker)."""
        points: list[tuple[tuple[uuid.UUID, str], float]] = []
        for job_id, (positions, _) in sorted(rounds.items()):
            samples = repo.samples(job_id, stages=positions)
            for position in sorted(positions):
                slowest: dict[str, float] = {}
                for row in samples:
                    curve = curves.get((job_id, row.shape))
                    if (
                        row.stage_position != position
                        or row.outcome != "ok"
                        or not row.duration_ms
                        or curve is None
                    ):
                        continue
                    ratio = row.per_epoch_ms / max(curve.predict(row.memory_mb), 1e-9)
                    slowest[row.shape] = max(slowest.get(row.shape, 0.0), ratio)
                points += [((job_id, shape), ratio) for shape, ratio in sorted(slowest.items())]
        backlog = {
            key
            for key in self._refit_backlog
            if (job_scope(key[0]), f"duration:{key[1]}") in states
        }
        if not points and not backlog:
            return
        keys = sorted({key for key, _ in points} | backlog)
        index_of = {key: i for i, key in enumerate(keys)}
        bank = ForecasterBank(len(keys), FORECASTER)
        for (job_id, shape), index in index_of.items():
            row = states.get((job_scope(job_id), f"duration:{shape}"))
            if row is not None:
                bank.load_series_state(index, row.state)
        if points:
            ids = np.array([index_of[key] for key, _ in points])
            bank.update(ids, np.array([ratio for _, ratio in points]))  # vectorised, all series
        due = bank.due_for_refit()
        if len(due):
            bank.refit(due[: self.refits_per_tick])
        self._refit_backlog = {keys[i] for i in due[self.refits_per_tick :].tolist()}
        for (job_id, shape), index in index_of.items():
            self._save(
                repo,
                states,
                job_id,
                f"duration:{shape}",
                "forecaster",
                bank.series_state(index),
                int(bank.observations(np.array([index]))[0]),
            )

    def _save(self, repo, states, job_id, name, kind, state, observations) -> None:
        scope = job_scope(job_id)
        row = states.get((scope, name))
        if row is None:
            row = PredictorState(
                scope=scope,
                job_id=job_id,
                name=name,
                kind=kind,
                state=state,
                observations=observations,
            )
            repo.add(row)
            states[(scope, name)] = row
        else:
            row.state = state
            row.observations = observations

    # -- platform metrics (CloudWatch-shaped) --------------------------------------------------
    def poll_metrics(
        self,
        repo: LoopRepository,
        platform: Platform,
        functions: set[str],
        now: datetime,
        jobs: set[uuid.UUID] | None = None,
    ) -> PollReport:
        """Each running function's metrics, at most every ``metrics_interval``, each minute
        re-read until it closes and then cross-checked against the ledger, and the late CPU
        times of the runs of ``jobs`` (``cloudwatch``). A job whose runs got one has its kept
        points dropped: the next ``learn`` reads them again from the ledger and refits."""
        report = self.poller.poll(repo, platform, functions, now, jobs)
        for key in [key for key in self._points if key[0] in report.cpu_jobs]:
            del self._points[key]
        self._stale |= report.cpu_jobs
        return report
