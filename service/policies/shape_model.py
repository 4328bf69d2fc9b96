"""Per-shape predictions a policy plans with: duration per epoch as a function of memory (the
fitted ``MemoryCurve``), its uncertainty, cold-start time and the memory floor."""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass
from functools import cached_property
from statistics import fmean, median
from typing import Protocol

import numpy as np

from service.domain.lambda_limits import MB_PER_VCPU
from service.policies.base import Observations, Sample
from service.policies.costing import MEMORY_GRID
from service.policies.priors import DEFAULT_NOISE, Prior, fit_points, prior_of, widened
from service.prediction.forecaster import ROUND_DURATIONS, ForecasterBank
from service.prediction.memory_curve import MemoryCurve, steady_cpu
from service.spec import MAX_MEMORY_MB, MIN_MEMORY_MB

DEFAULT_INIT_MS = 500.0  # before any cold start was observed
PEAK_MARGIN = 1.1  # safety margin on observed peak use (VPA uses 15 % on noisier pods)
PEAK_MARGIN_MB = 16
MAX_PLANNING_MARGIN = 0.3  # without a forecast: plan durations at most 30 % above the curve
LEVEL = 0.9  # prediction intervals the plans use
MIN_FORECAST_POINTS = 4  # rounds a duration forecast needs before it sets the margin
RECENT_ROUNDS = 2  # the latest rounds, left out of the baseline a forecast is compared with
# A round forecast at 4× its past says the curve is wrong (it is refitted from the same runs),
# not that the next round will be: the drift factor is trusted up to this.
MAX_DRIFT_FACTOR = 4.0
# A first run in a new environment that is this much slower than a warm run at the same size
# (relative to the warm run) does first-run work — lazy imports, loading or generating the
# dataset — and not only noise (``first_run_ms``).
FIRST_RUN_SHARE = 0.1


class DurationModel(Protocol):
    init_ms: float
    floor_mb: int

    def duration_ms(self, memory_mb: int, epochs: int) -> float: ...

    def upper_ms(self, memory_mb: int, epochs: int) -> float: ...

    def relative_error(self, memory_mb: int) -> float: ...

    def init_at(self, memory_mb: int) -> float:
        """What a new environment at ``memory_mb`` adds to its first run: the cold start and
        the first run's own work there (loading the data, …)."""
        ...


@dataclass(frozen=True)
class ShapeModel:
    curve: MemoryCurve  # milliseconds per epoch
    init_ms: float
    floor_mb: int
    level: float = 0.9
    # How much slower than its past rounds the next round is forecast to run, relative to the
    # curve (ARIMA, or EWMA before there are enough rounds to fit one, over this shape's
    # rounds); None until there are enough rounds to tell (``duration_factor``).
    drift_factor: float | None = None
    # The largest size this shape has run at: above it the curve is an extrapolation.
    measured_max_mb: int | None = None
    # How many different sizes it has run at: one size cannot tell CPU-bound work (slower
    # below it) from I/O-bound work (as fast below it, and cheaper).
    measured_sizes: int | None = None
    # Where the curve comes from: "runs" (this job's), "prior" (an earlier job's of the
    # tenant), "prior+runs" (both, agreeing) — said in the decision's reason.
    source: str = "runs"
    # CPU milliseconds at one vCPU that the first run in a new environment spends besides its
    # epochs (``first_run_ms``); 0 when not measured (or none).
    first_run_ms: float = 0.0

    def init_at(self, memory_mb: int) -> float:
        """What starting an environment at ``memory_mb`` adds to its first run: the cold start
        and the first run's own work at that size's CPU share (single-threaded: no faster
        above one vCPU)."""
        return self.init_ms + self.first_run_ms * max(1.0, MB_PER_VCPU / memory_mb)

    def duration_ms(self, memory_mb: int, epochs: int) -> float:
        return self._predict(memory_mb) * max(1, epochs)

    def _predict(self, memory_mb: int) -> float:
        # Plans ask for the same few sizes many times; a scalar NumPy prediction is not free.
        cache = self._predictions
        if memory_mb not in cache:
            cache[memory_mb] = self.curve.predict(memory_mb)
        return cache[memory_mb]

    @cached_property
    def _predictions(self) -> dict[int, float]:
        return {}

    def upper_ms(self, memory_mb: int, epochs: int) -> float:
        """Upper end of the prediction interval. The interval widens away from the measured
        sizes, which could make more memory look slower than less; on Lambda more memory is
        never slower, so the bound is the lowest upper bound of any size up to this one."""
        below = bisect.bisect_left(MEMORY_GRID, memory_mb)
        upper = self._upper(memory_mb)
        if below:
            upper = min(upper, self._grid_upper[below - 1])
        return upper * max(1, epochs)

    @cached_property
    def _grid_upper(self) -> list[float]:
        """Running minimum of the per-epoch upper bound over the memory grid."""
        return list(itertools.accumulate((self._upper(m) for m in MEMORY_GRID), min))

    def _upper(self, memory_mb: int) -> float:
        # A plan reads the same few sizes' bounds thousands of times (every stage option of
        # every split): each is computed once per model, which is immutable.
        cache = self._uppers
        if memory_mb not in cache:
            cache[memory_mb] = self._upper_uncached(memory_mb)
        return cache[memory_mb]

    @cached_property
    def _uppers(self) -> dict[int, float]:
        return {}

    def _upper_uncached(self, memory_mb: int) -> float:
        # A curve fitted on one or two sizes has a very wide interval far from them; planning
        # against it would rule every size out. The margin is capped: the plan is made again
        # after every stage with more points, which is what narrows it.
        predicted = self._predict(memory_mb)
        high = self.curve.predict_interval(memory_mb, self.level)[1]
        margin = min(high, predicted * (1 + MAX_PLANNING_MARGIN))
        if self.drift_factor is None:
            return margin
        # The curve is fitted on every run so far, so it lags behind drift (a slower data
        # source, a noisy neighbour): when the duration forecast says the next round is slower,
        # relative to the curve, than the rounds before were, the margin grows by as much, past
        # the fixed cap. A steady series leaves it as it is.
        return margin * min(max(self.drift_factor, 1.0), MAX_DRIFT_FACTOR)

    def relative_error(self, memory_mb: int) -> float:
        return self.curve.relative_error(memory_mb)


def floor_mb(observations: Observations, shape: str, low: int = MIN_MEMORY_MB) -> int:
    """Never below the observed peak plus a margin, nor below an out-of-memory retry's size."""
    floor = low
    peak = observations.peak_mb(shape)
    if peak is not None:
        floor = max(floor, _peak_floor(peak))
    if shape in observations.oom_floors:
        floor = max(floor, observations.oom_floors[shape])
    return min(floor, MAX_MEMORY_MB)


def _peak_floor(peak_mb: float) -> int:
    return math.ceil(max(peak_mb * PEAK_MARGIN, peak_mb + PEAK_MARGIN_MB))


def fit_shape(
    samples: list[Sample], observations: Observations, shape: str, first_runs: bool = False
) -> ShapeModel | None:
    """A model from this shape's successful runs; None before there is any. The memory curve
    is the one the loop's learn step stored when it covers every run seen (the learn step runs
    before the policy in the same tick, so it normally does); it is fitted here only when the
    learn step is off or behind. The planning margin comes from the learn step's duration
    forecast when there is one (``duration_factor``).

    A shape with a prior — what an earlier job of the tenant measured of it (``priors``) — has
    a model before its first run: the prior's curve, its interval widened with the prior's age.
    Once the shape runs, the curve is fitted on the runs and the sizes only the prior measured,
    as long as the runs agree with the prior; the first runs that do not drop it.

    With ``first_runs`` (training, whose workers run round after round in the same
    environments), the work a first run does besides its epochs is measured too
    (``first_run_ms``), and a change of size is priced with the first runs it causes
    (``init_at``). The curve keeps the first runs: a curve of warm rounds alone planned rounds
    too fast for a job that slows down as it goes (every tight drifting job of the learning
    ablation's train-mlp-w4 cell missed), and the learn step's forecast needs four rounds to
    see a drift.
    """
    ok = [s for s in samples if s.ok and s.duration_ms > 0]
    prior = prior_of(observations.predictors, shape)
    if prior is not None:
        model = _from_prior(prior, ok, samples, observations, shape, first_runs)
        if model is not None:
            return model
    if not ok:
        return None
    curve = learned_curve(observations, shape, len(ok)) or MemoryCurve.fit(
        [s.memory_mb for s in ok],
        [s.duration_ms / max(1, s.epochs) for s in ok],
        cpu_ms=steady_cpu(
            [None if s.cpu_ms is None else s.cpu_ms / max(1, s.epochs) for s in ok],
            [s.init_ms is not None for s in ok],
        ),
    )
    inits = [s.init_ms for s in samples if s.init_ms]
    return ShapeModel(
        curve,
        fmean(inits) if inits else DEFAULT_INIT_MS,
        floor_mb(observations, shape),
        level=LEVEL,
        drift_factor=duration_factor(observations, shape),
        measured_max_mb=max(s.memory_mb for s in ok),
        measured_sizes=len({s.memory_mb for s in ok}),
        first_run_ms=(first_run_ms(ok) or 0.0) if first_runs else 0.0,
    )


def _warm_per_epoch(ok: list[Sample]) -> dict[int, list[float]]:
    """Milliseconds per epoch of the warm runs (not a first run in their environment), by size."""
    warm: dict[int, list[float]] = {}
    for s in ok:
        if not s.init_ms:
            warm.setdefault(s.memory_mb, []).append(s.duration_ms / max(1, s.epochs))
    return warm


def first_run_ms(ok: list[Sample]) -> float | None:
    """CPU milliseconds at one vCPU that a first run (a cold start's invocation) spends besides
    its epochs: the median, over first runs at a size that also ran warm, of how much longer
    the first run took than the warm runs there (their median per epoch), scaled to one vCPU
    by the size's CPU share. None before any size has both; 0 when the difference is within
    ``FIRST_RUN_SHARE`` of the warm time (noise, not work)."""
    warm = _warm_per_epoch(ok)
    if not warm:
        return None
    typical = {m: median(v) for m, v in warm.items()}
    extras, shares = [], []
    for s in ok:
        if s.init_ms and s.memory_mb in typical:
            expected = typical[s.memory_mb] * max(1, s.epochs)
            extras.append((s.duration_ms - expected) * min(1.0, s.memory_mb / MB_PER_VCPU))
            shares.append((s.duration_ms - expected) / expected)
    if not extras:
        return None
    if median(shares) <= FIRST_RUN_SHARE:
        return 0.0
    return max(0.0, median(extras))


def warm_estimates(
    ok: list[Sample], first_run: float | None, noise: float | None = None
) -> list[tuple[int, float]]:
    """(memory_mb, ms per epoch) a warm run would take at each size that only ran first runs
    (the first round's worker that probed above, say): the first run less its own work at the
    size's CPU share (``first_run_ms``). Without them a training prior, kept from the warm
    rounds, forgot that the probe measured a larger size, and the next job moved every worker
    there to learn it again (a repeat ``train-mlp-w4 / tight`` job at 1.7x the oracle).

    One first run less an estimate of its first-run work is a weak measurement: above a size
    that ran warm it counts as faster only when it is faster by more than twice its own error
    (the run's noise, ``noise`` or ``DEFAULT_NOISE``, on both the run and the work taken
    off), and never as slower (more memory is never slower); else it is the warm size's time.
    None of a size that also ran warm, nor where the epochs' share of the run is within twice
    that error; none at all before ``first_run`` is known."""
    if first_run is None:
        return []
    sigma = noise if noise is not None else DEFAULT_NOISE
    warm = _warm_per_epoch(ok)
    estimates = []
    for s in ok:
        if s.memory_mb in warm or not s.init_ms:
            continue
        extra = first_run * max(1.0, MB_PER_VCPU / s.memory_mb)
        run_ms = s.duration_ms - extra
        spread_ms = sigma * math.hypot(s.duration_ms, extra)
        if run_ms <= 2 * spread_ms:
            continue  # the epochs' share of the run is lost in the noise: not a measurement
        per_epoch = run_ms / max(1, s.epochs)
        below = [m for m in warm if m < s.memory_mb]
        if below:
            reference = fmean(warm[max(below)])
            if per_epoch >= reference * (1 - 2 * spread_ms / run_ms):
                per_epoch = reference
        estimates.append((s.memory_mb, per_epoch))
    return estimates


def _from_prior(
    prior: Prior,
    ok: list[Sample],
    samples: list[Sample],
    observations: Observations,
    shape: str,
    first_runs: bool = False,
) -> ShapeModel | None:
    """The shape's model from its prior and this job's runs; None when the runs contradict
    the prior (``priors.fit_points``). With ``first_runs``, a first run's own work is this
    job's measure of it once it has one, the prior's until then."""
    runs = [(s.memory_mb, s.duration_ms / max(1, s.epochs)) for s in ok]
    # training: a training prior is its job's warm rounds (``control.priors.remember``), and
    # this job's first runs also load the data: only its warm runs can contradict it
    checked = [r for r, s in zip(runs, ok, strict=True) if not s.init_ms] if first_runs else None
    pairs = fit_points(prior, runs, checked)
    if pairs is None:
        return None
    curve = MemoryCurve.fit(*pairs)
    if not ok:  # the prior alone: as uncertain as its age makes it
        curve = widened(curve, prior.error)
    inits = [s.init_ms for s in samples if s.init_ms]
    init = fmean(inits) if inits else prior.init_ms or DEFAULT_INIT_MS
    floor = floor_mb(observations, shape)
    if prior.peak_mb is not None:
        floor = max(floor, _peak_floor(prior.peak_mb))
    return ShapeModel(
        curve,
        init,
        min(floor, MAX_MEMORY_MB),
        level=LEVEL,
        drift_factor=duration_factor(observations, shape),
        measured_max_mb=max(pairs[0]),
        measured_sizes=len(set(pairs[0])),
        source="prior+runs" if ok else "prior",
        first_run_ms=_first_run_work(ok, prior) if first_runs else 0.0,
    )


def _first_run_work(ok: list[Sample], prior: Prior) -> float:
    own = first_run_ms(ok)
    return own if own is not None else prior.first_run_ms or 0.0


def provenance(model: DurationModel) -> str:
    """What a decision's reason says of a curve that is not only this job's."""
    source = getattr(model, "source", "runs")
    if source == "prior":
        return " (curve measured by an earlier job of the tenant)"
    if source == "prior+runs":
        return " (curve from this job's runs and an earlier job's, which they agree with)"
    return ""


def learned_curve(observations: Observations, shape: str, runs: int) -> MemoryCurve | None:
    """The learn step's curve of ``shape`` if it was fitted on exactly the ``runs`` seen."""
    stored = observations.predictors.get(f"memory-curve:{shape}")
    if stored is None or stored["observations"] != runs:
        return None
    return MemoryCurve.from_state(stored["state"])


def duration_factor(observations: Observations, shape: str) -> float | None:
    """The learn step's forecast of this shape's next round relative to the curve, divided by
    the same ratio over its earlier rounds (their median, all but the ``RECENT_ROUNDS`` latest):
    above 1 when rounds drift slower than the curve, which is fitted on all of them, keeps up
    with. None before ``MIN_FORECAST_POINTS`` rounds."""
    stored = observations.predictors.get(f"duration:{shape}")
    if stored is None or stored["observations"] < MIN_FORECAST_POINTS:
        return None
    history = stored["state"]["history"]  # log-ratios, oldest first
    if len(history) < RECENT_ROUNDS + 2:
        return None
    bank = ForecasterBank(1, ROUND_DURATIONS)
    bank.load_series_state(0, stored["state"])
    mean = float(bank.forecast(np.array([0]), horizon=1, level=LEVEL).mean[0, 0])
    baseline = math.exp(float(np.median(history[:-RECENT_ROUNDS])))
    factor = mean / baseline
    return factor if math.isfinite(factor) else None


def fit_all(
    observations: Observations, shapes: list[str], first_runs: bool = False
) -> dict[str, ShapeModel] | None:
    """Models for ``shapes``; a shape not seen yet borrows the slowest seen shape's model.
    None when nothing has been seen at all — nor has a prior for every one of ``shapes``
    (a shape without one would borrow another shape's curve and floor before anything of this
    job was measured: the pilot measures it instead)."""
    by_shape = observations.by_shape()
    if not by_shape and not all(prior_of(observations.predictors, s) for s in shapes):
        return None
    fitted = {
        shape: model
        for shape in sorted(set(by_shape) | set(shapes))
        if (model := fit_shape(by_shape.get(shape, []), observations, shape, first_runs))
        is not None
    }
    if not fitted:
        return None
    slowest = max(fitted.values(), key=lambda m: m.duration_ms(1769, 1))
    return {
        shape: fitted.get(shape)
        or ShapeModel(
            slowest.curve,
            slowest.init_ms,
            max(slowest.floor_mb, floor_mb(observations, shape)),
            drift_factor=slowest.drift_factor,
            measured_max_mb=slowest.measured_max_mb,
            measured_sizes=slowest.measured_sizes,
            source=slowest.source,
            first_run_ms=slowest.first_run_ms,
        )
        for shape in shapes
    }
