"""Duration as a function of memory on AWS Lambda, fitted from a few measured sizes.

Lambda sells CPU through memory: the CPU share is proportional to memory, 1,769 MB buys one vCPU
and 10,240 MB up to six; below 1,769 MB a function gets a fraction of one vCPU (docs/platform.md).
So a function's duration splits into three parts that respond differently to memory:

    d(m) = a + b / min(v(m), 1) + c / min(v(m), k),      v(m) = min(m / 1769, 6)

- ``a`` (io_ms): waiting on the network, S3, a database: does not scale with CPU at all.
- ``b`` (serial_cpu_ms): single-threaded CPU work, in ms on one full vCPU. It speeds up until the
  function owns a whole vCPU (1,769 MB) and not at all after: the flat tail measured for ordinary
  Python code.
- ``c`` (parallel_cpu_ms): CPU work spread over ``k`` threads (BLAS, PyTorch intra-op, a thread
  pool), in ms on one vCPU. It keeps speeding up until the share reaches ``k`` vCPUs.

This is Amdahl's law with the fractional CPU Lambda gives below one vCPU, plus a non-CPU part. The
three shapes the platform shows fall out of it: single-threaded CPU-bound work (``c = 0``) flattens
at 1,769 MB, multi-threaded work (``c > 0``) keeps scaling, I/O-bound work (``a`` dominant) barely
moves. For a fixed ``k`` the model is linear in (a, b, c), so it is fitted by non-negative least
squares: non-negative parts make every prediction positive and non-increasing in memory, whatever
noise (a slower measurement at a larger size) the input holds. Residuals are relative (each row
divided by its duration), so a 300 ms point counts as much as a 3 s one.

``k`` is picked from {1, 6, 4, 2} in that order of preference: ``k = 1`` has one part fewer, and
``k = 6`` is plain Amdahl with no cap but the platform's, so a lower thread cap is an extra
assumption the data must earn by a lower residual. Measurements that stop below ``k`` vCPUs
cannot tell the caps apart; the spread between the models that fit equally well becomes part of
the uncertainty, which therefore grows when predicting far from the measured sizes.

Choosing a size by cost (``cheapest``, ``next_size``): in this form memory × duration never falls
as memory grows, so the lowest *predicted* cost is always the smallest size, while real functions
can be more than proportionally slower at small sizes (garbage collection under memory pressure).
The curve therefore keeps its measurements and reads each size's cost through them, with an
interval that is the noise at a measured size and widens away from it; it picks the size whose
upper-bound cost is lowest, and measures next where the expected improvement on that bound is
largest.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from service.domain import lambda_limits
from service.domain.lambda_limits import MAX_MEMORY_MB, MIN_MEMORY_MB

CostFunction = Callable[[float, float], float]  # (memory_mb, duration_ms) -> cost

MB_PER_VCPU = float(lambda_limits.MB_PER_VCPU)
MAX_VCPU = lambda_limits.MAX_VCPUS

# Order of preference (simplest first) among the thread caps tried.
THREAD_CAPS: tuple[int, ...] = (1, 6, 4, 2)

# Lambda run-to-run noise is a few percent: no fit is trusted to be better than this.
RELATIVE_ERROR_FLOOR = 0.02
DEFAULT_NOISE = 0.03  # run-to-run relative noise of one measurement, by default
# Relative error assumed when the fit has no residual degrees of freedom to measure it.
RELATIVE_ERROR_PRIOR = 0.10
# One measured size says nothing about the shape; the CPU-bound guess may be far off.
SINGLE_POINT_RELATIVE_ERROR = 0.5

# Choosing a size by cost: the interval level, and how far (relative, one sigma) the duration
# may stray from the measurements' reading per doubling of memory away from the nearest one.
PICK_LEVEL = 0.9
PER_DOUBLING_ERROR = 0.05

# Tiny ridge penalties (relative to each column's norm) that only matter when columns coincide,
# e.g. every measurement above 1,769 MB makes the I/O and serial parts indistinguishable. They
# then lean towards CPU work, the cautious reading: smaller sizes are predicted slower, not faster.
_RIDGE = (1e-3, 3e-4, 1e-4)
_CHI2_95 = 3.84  # 95 % quantile of chi-square with one degree of freedom
# Where a run's CPU time places implied points: these fractions of its size (``cpu_points``).
CPU_POINT_FRACTIONS = (0.5, 0.25, 0.125)


def vcpu_share(memory_mb: float | np.ndarray) -> float | np.ndarray:
    """vCPUs Lambda gives at this memory size: proportional, 1,769 MB each, at most 6."""
    return np.minimum(np.asarray(memory_mb, dtype=float) / MB_PER_VCPU, MAX_VCPU)


@dataclass(frozen=True)
class CurveComponents:
    """Predicted duration at one memory size, split into its parts (ms)."""

    io_ms: float
    serial_cpu_ms: float
    parallel_cpu_ms: float

    @property
    def total_ms(self) -> float:
        return self.io_ms + self.serial_cpu_ms + self.parallel_cpu_ms


@dataclass(frozen=True)
class CurveShape:
    """One candidate parameter set: the I/O, serial and parallel parts, and the thread cap."""

    io_ms: float
    serial_cpu_ms: float
    parallel_cpu_ms: float
    threads: int

    def predict(self, memory_mb: np.ndarray) -> np.ndarray:
        v = vcpu_share(memory_mb)
        return (
            self.io_ms
            + self.serial_cpu_ms / np.minimum(v, 1.0)
            + self.parallel_cpu_ms / np.minimum(v, float(self.threads))
        )

    def to_state(self) -> dict[str, float]:
        return {
            "io_ms": self.io_ms,
            "serial_cpu_ms": self.serial_cpu_ms,
            "parallel_cpu_ms": self.parallel_cpu_ms,
            "threads": self.threads,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CurveShape:
        return cls(
            io_ms=float(state["io_ms"]),
            serial_cpu_ms=float(state["serial_cpu_ms"]),
            parallel_cpu_ms=float(state["parallel_cpu_ms"]),
            threads=int(state["threads"]),
        )


@dataclass(frozen=True)
class MemoryCurve:
    """A fitted memory → duration curve. Build it with :meth:`fit`; it is immutable."""

    shape: CurveShape
    alternatives: tuple[CurveShape, ...]
    """Other thread caps that fit the data about as well: their spread is model uncertainty."""
    residual_error: float
    """Relative (log) error of the fit at the measured sizes."""
    observed_min_mb: float
    observed_max_mb: float
    observations: int
    measured: tuple[tuple[float, float, int], ...] = ()
    """(size, mean duration, runs) per measured size, ascending: what :meth:`cost_bounds`
    anchors on. Empty for a curve restored from a state saved before it was kept."""
    noise: float = DEFAULT_NOISE
    """The run-to-run relative noise of one measurement the curve was fitted with."""
    implied_min_mb: float | None = None
    """The smallest size the runs' CPU time implies (``cpu_points``); None without CPU time."""

    # -- fitting ---------------------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        memory_mb: Sequence[float],
        duration_ms: Sequence[float],
        *,
        noise: float = DEFAULT_NOISE,
        cpu_ms: Sequence[float | None] | None = None,
    ) -> MemoryCurve:
        """Fit the curve to measured (memory, duration) pairs.

        Repeated sizes are averaged (and weigh by how often they were measured). With one size
        the work is assumed CPU-bound and single-threaded (duration ∝ 1 / min(v, 1)): the shape
        most common for Python functions, and the one that never promises a speed-up above
        1,769 MB. ``noise`` is the expected run-to-run relative noise of one measurement: a
        simpler model is kept unless the extra part explains clearly more than that.

        ``cpu_ms``, one per pair (None where unknown), is the CPU time each run used (Lambda
        Insights' ``cpu_total_time``). At or below one vCPU a run is its I/O plus its CPU work
        at the CPU share, ``d = a + cpu / v``, so a run there also tells the duration at every
        smaller size: ``cpu_points`` adds those, and one size's runs no longer read I/O-bound
        work as CPU-bound. (Above one vCPU the thread count is unknown; such runs add nothing.)
        Implied sizes are not measured ones: the observed range, and so the error that grows
        away from it, stays the runs' own (memory pressure can make a real function slower
        than proportional at small sizes, which no CPU time shows).
        """
        if not noise > 0:
            raise ValueError("noise must be positive")
        memory, duration = _validated(memory_mb, duration_ms)
        sizes, means, counts = _aggregate(memory, duration)
        measured = tuple(
            (float(s), float(d), int(n)) for s, d, n in zip(sizes, means, counts, strict=True)
        )
        runs, observed = len(memory), (float(sizes[0]), float(sizes[-1]))
        run_memory, run_duration = memory, duration  # the residual error is the runs' own
        implied_min = None
        if cpu_ms is not None:
            extra_memory, extra_duration = cpu_points(memory, duration, cpu_ms)
            if extra_memory:
                implied_min = min(extra_memory)
                memory = np.concatenate([memory, extra_memory])
                duration = np.concatenate([duration, extra_duration])
                sizes, means, counts = _aggregate(memory, duration)
        if len(sizes) == 1:  # (implied points are always at other sizes: none here)
            v = float(vcpu_share(sizes[0]))
            shape = CurveShape(0.0, float(means[0]) * min(v, 1.0), 0.0, 1)
            return cls(
                shape=shape,
                alternatives=(),
                residual_error=SINGLE_POINT_RELATIVE_ERROR,
                observed_min_mb=observed[0],
                observed_max_mb=observed[1],
                observations=runs,
                measured=measured,
                noise=noise,
            )

        solved: dict = {}  # least-squares fits the thread caps share (see ``nnls_small``)
        candidates = [_fit_shape(sizes, means, counts, k, solved) for k in THREAD_CAPS]
        # Likelihood-ratio style selection with the run-to-run noise as the known error scale:
        # each extra parameter must lower the sum of squared log errors by ~ a 95 % chi-square
        # quantile (in units of noise²); equally complex models count as ties within one unit.
        scores = [
            _sum_squared_log_error(shape, memory, duration) / noise**2
            + _CHI2_95 * _parameters(shape)
            for shape in candidates
        ]
        best = min(scores)
        chosen = next(i for i, score in enumerate(scores) if score <= best + 1.0)
        alternatives = tuple(
            shape
            for i, shape in enumerate(candidates)
            if i != chosen and scores[i] <= best + _CHI2_95
        )
        residual = _residual_error(candidates[chosen], run_memory, run_duration)
        if implied_min is not None and observed[0] == observed[1]:
            # One size run: the shape below it rests on d = a + cpu / v alone, which no second
            # size has checked yet (and the runs' spread at one size is a thin estimate).
            residual = max(residual, RELATIVE_ERROR_PRIOR)
        return cls(
            shape=candidates[chosen],
            alternatives=alternatives,
            residual_error=residual,
            observed_min_mb=observed[0],
            observed_max_mb=observed[1],
            observations=runs,
            measured=measured,
            noise=noise,
            implied_min_mb=implied_min,
        )

    # -- predicting ------------------------------------------------------------------------------

    def predict(self, memory_mb: float) -> float:
        """Expected duration (ms) at this memory size: positive, non-increasing in memory."""
        return float(self.predict_many([memory_mb])[0])

    def predict_many(self, memory_mb: Sequence[float] | np.ndarray) -> np.ndarray:
        return self.shape.predict(_positive(memory_mb))

    def components(self, memory_mb: float) -> CurveComponents:
        """The predicted duration split into its I/O, serial-CPU and parallel-CPU parts."""
        v = float(vcpu_share(_positive([memory_mb])[0]))
        return CurveComponents(
            io_ms=self.shape.io_ms,
            serial_cpu_ms=self.shape.serial_cpu_ms / min(v, 1.0),
            parallel_cpu_ms=self.shape.parallel_cpu_ms / min(v, float(self.shape.threads)),
        )

    def relative_error(self, memory_mb: float) -> float:
        """A one-sigma relative (log-scale) error of :meth:`predict` at this size.

        It combines the fit's residual error, inflated by how far (in doublings of memory) the
        size lies outside the measured range, with the spread of the equally good alternative
        models (which is where an unknown thread cap shows). Below the measured range, where the
        runs' CPU time implies the curve, only what it cannot tell grows with the distance:
        ``PER_DOUBLING_ERROR`` per doubling.
        """
        m = float(_positive([memory_mb])[0])
        clamped = min(m, MAX_MEMORY_MB)
        below = max(0.0, math.log2(self.observed_min_mb / clamped))
        above = max(0.0, math.log2(clamped / self.observed_max_mb))
        fit_error = max(self.residual_error, RELATIVE_ERROR_FLOOR)
        if below > 0 and self.implied_min_mb is not None:
            # The runs' CPU time tells the shape down to ``implied_min_mb``: what it cannot tell
            # is memory pressure (slower than proportional), ``PER_DOUBLING_ERROR`` a doubling.
            beyond = max(0.0, math.log2(self.implied_min_mb / clamped))
            residual = math.hypot(fit_error * (1.0 + beyond), PER_DOUBLING_ERROR * below)
        else:
            residual = fit_error * (1.0 + max(below, above))
        at = np.array([m])
        base = float(self.shape.predict(at)[0])
        spread = max(
            (abs(math.log(float(alt.predict(at)[0]) / base)) for alt in self.alternatives),
            default=0.0,
        )
        return math.hypot(residual, spread)

    def predict_interval(self, memory_mb: float, level: float = 0.9) -> tuple[float, float]:
        """A central ``level`` interval (ms) for the duration at this size (log-normal)."""
        z = _z(level)
        centre = self.predict(memory_mb)
        spread = math.exp(z * self.relative_error(memory_mb))
        return centre / spread, centre * spread

    def min_memory_for(
        self, duration_ms: float, low_mb: int = MIN_MEMORY_MB, high_mb: int = MAX_MEMORY_MB
    ) -> int | None:
        """The smallest whole-MB size in [low_mb, high_mb] predicted to finish within duration_ms.

        None when even ``high_mb`` is predicted too slow. The curve is monotone, so this is a
        bisection.
        """
        if self.predict(high_mb) > duration_ms:
            return None
        if self.predict(low_mb) <= duration_ms:
            return low_mb
        low, high = low_mb, high_mb  # predict(low) > duration_ms >= predict(high)
        while high - low > 1:
            middle = (low + high) // 2
            if self.predict(middle) <= duration_ms:
                high = middle
            else:
                low = middle
        return high

    # -- choosing a size by cost ------------------------------------------------------------------

    def duration_bounds(
        self, memory_mb: Sequence[float] | np.ndarray, level: float = PICK_LEVEL
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Low, central and high duration (ms) at each size, anchored on the measurements.

        The fitted form cannot bend the way some functions do (garbage collection at small
        sizes makes them more than proportionally slower there), so a size is read as the
        model's shape through the measured points: the log-ratio of measurement to model is
        carried between measured sizes (linearly in log-memory, held beyond the ends). At a
        measured size the interval is the measurement noise; it widens by
        ``max(residual error, PER_DOUBLING_ERROR)`` per doubling away from the nearest
        measured size (plus the spread of the alternative thread caps). More memory is never
        slower, so the upper bound is the lowest of any smaller size's and the lower bound the
        highest of any larger size's. Without kept measurements (an old state) the interval
        is :meth:`predict_interval`'s.
        """
        sizes = _positive(memory_mb)
        z = _z(level)
        anchors = np.array([point[0] for point in self.measured], dtype=float)
        grid = np.unique(np.concatenate([sizes, anchors]))
        model = self.shape.predict(grid)
        spread = np.zeros_like(grid)
        for alt in self.alternatives:
            spread = np.maximum(spread, np.abs(np.log(alt.predict(grid) / model)))
        if anchors.size:
            means = np.array([point[1] for point in self.measured])
            runs = np.array([point[2] for point in self.measured], dtype=float)
            log_grid, log_anchors = np.log2(grid), np.log2(anchors)
            offset = np.interp(log_grid, log_anchors, np.log(means / self.shape.predict(anchors)))
            gaps = np.abs(log_grid[:, None] - log_anchors[None, :])
            nearest = np.argmin(gaps, axis=1)
            distance = gaps[np.arange(grid.size), nearest]
            per_doubling = max(self.residual_error, PER_DOUBLING_ERROR)
            sigma = np.sqrt(
                (self.noise / np.sqrt(runs[nearest])) ** 2
                + (per_doubling * distance) ** 2
                + spread**2
            )
            centre = model * np.exp(offset)
        else:
            sigma = np.array([self.relative_error(m) for m in grid])
            centre = model
        high = np.minimum.accumulate(centre * np.exp(z * sigma))
        low = np.maximum.accumulate((centre * np.exp(-z * sigma))[::-1])[::-1]
        centre = np.clip(np.minimum.accumulate(centre), low, high)
        index = np.searchsorted(grid, sizes)
        return low[index], centre[index], high[index]

    def cost_bounds(
        self,
        memory_mb: Sequence[float],
        level: float = PICK_LEVEL,
        cost: CostFunction | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Low, central and high cost of one invocation at each size, from
        :meth:`duration_bounds`. ``cost(memory_mb, duration_ms)`` must not fall as the duration
        grows; by default it is memory × duration (GB-seconds up to a constant)."""
        price = cost or _memory_time
        sizes = [float(m) for m in memory_mb]
        bounds = self.duration_bounds(sizes, level)
        low, centre, high = (
            np.array([price(m, float(d)) for m, d in zip(sizes, row, strict=True)])
            for row in bounds
        )
        return low, centre, high

    def cheapest(
        self,
        memory_mb: Sequence[float],
        level: float = PICK_LEVEL,
        cost: CostFunction | None = None,
    ) -> float:
        """The size among ``memory_mb`` whose upper-bound cost is lowest (ties: the lower
        central cost, then the smaller size): the size that is cheap even if the curve is off
        there, rather than the one that is cheapest only if the curve is right."""
        sizes = _candidates(memory_mb)
        _, centre, high = self.cost_bounds(sizes, level, cost)
        best = min(range(len(sizes)), key=lambda i: (high[i], centre[i], sizes[i]))
        return sizes[best]

    def next_size(
        self,
        memory_mb: Sequence[float],
        level: float = PICK_LEVEL,
        cost: CostFunction | None = None,
    ) -> float | None:
        """The size to measure next so that :meth:`cheapest` gets cheaper or surer, or None
        when no unmeasured size could still beat the pick's upper-bound cost.

        Each unmeasured size's cost is read as log-normal with the spread of its interval; the
        one measured is the one with the largest expected improvement on the pick's
        upper-bound cost, E[max(0, upper(pick) - cost(m))]: a size far off is worth measuring
        only if its interval reaches well below the pick, a near one only if it is likely to
        be cheaper, and the pick itself (when unmeasured) for how much its own interval
        can still come down.
        """
        sizes = _candidates(memory_mb)
        low, centre, high = self.cost_bounds(sizes, level, cost)
        pick = min(range(len(sizes)), key=lambda i: (high[i], centre[i], sizes[i]))
        measured = {point[0] for point in self.measured}
        bound = float(high[pick])
        z = _z(level)
        normal = NormalDist()
        best, best_gain = None, 0.0
        for i, size in enumerate(sizes):
            if size in measured or not low[i] < bound:
                continue
            sigma = max(math.log(high[i] / low[i]) / (2 * z), 1e-9)
            mid = math.sqrt(low[i] * high[i])
            d = math.log(bound / mid) / sigma
            gain = bound * normal.cdf(d) - mid * math.exp(sigma**2 / 2) * normal.cdf(d - sigma)
            if gain > best_gain:
                best, best_gain = size, gain
        return best

    # -- description and persistence -------------------------------------------------------------

    @property
    def io_ms(self) -> float:
        return self.shape.io_ms

    @property
    def serial_cpu_ms(self) -> float:
        return self.shape.serial_cpu_ms

    @property
    def parallel_cpu_ms(self) -> float:
        return self.shape.parallel_cpu_ms

    @property
    def threads(self) -> int:
        return self.shape.threads

    def describe(self) -> dict[str, Any]:
        """The functional form and fitted parameters, for people and for JSON output."""
        return {
            "form": "a + b / min(v, 1) + c / min(v, k), v = min(memory_mb / 1769, 6)",
            "io_ms": self.io_ms,
            "serial_cpu_ms": self.serial_cpu_ms,
            "parallel_cpu_ms": self.parallel_cpu_ms,
            "threads": self.threads,
            "residual_error": self.residual_error,
            "observed_mb": [self.observed_min_mb, self.observed_max_mb],
            "observations": self.observations,
        }

    def to_state(self) -> dict[str, Any]:
        return {
            "version": 1,
            "shape": self.shape.to_state(),
            "alternatives": [alt.to_state() for alt in self.alternatives],
            "residual_error": self.residual_error,
            "observed_min_mb": self.observed_min_mb,
            "observed_max_mb": self.observed_max_mb,
            "observations": self.observations,
            "measured": [list(point) for point in self.measured],
            "noise": self.noise,
            "implied_min_mb": self.implied_min_mb,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MemoryCurve:
        if state.get("version") != 1:
            raise ValueError(f"unsupported MemoryCurve state version: {state.get('version')!r}")
        return cls(
            shape=CurveShape.from_state(state["shape"]),
            alternatives=tuple(CurveShape.from_state(alt) for alt in state["alternatives"]),
            residual_error=float(state["residual_error"]),
            observed_min_mb=float(state["observed_min_mb"]),
            observed_max_mb=float(state["observed_max_mb"]),
            observations=int(state["observations"]),
            # Absent from states saved before the curve kept its measurements.
            measured=tuple(
                (float(size), float(mean), int(runs))
                for size, mean, runs in state.get("measured", ())
            ),
            noise=float(state.get("noise", DEFAULT_NOISE)),
            implied_min_mb=(
                float(state["implied_min_mb"]) if state.get("implied_min_mb") is not None else None
            ),
        )


def _memory_time(memory_mb: float, duration_ms: float) -> float:
    return memory_mb * duration_ms


@functools.lru_cache(maxsize=64)
def _z(level: float) -> float:
    """The normal quantile of a central ``level`` interval (a few levels, asked for often)."""
    if not 0.0 < level < 1.0:
        raise ValueError("level must be between 0 and 1")
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def steady_cpu(cpu_ms: Sequence[float | None], first_run: Sequence[bool]) -> list[float | None]:
    """The CPU times to imply points from (``fit``'s ``cpu_ms``): every run's while all are
    first runs in new environments, else the warm runs' only. A first run's CPU time holds the
    work only a first run does (imports, loading the data), which ``d = a + cpu / v`` would
    carry to every smaller size as if each epoch did it; once a warm run is in, it tells the
    epochs' own CPU work."""
    if all(first_run):
        return list(cpu_ms)
    return [None if first else cpu for cpu, first in zip(cpu_ms, first_run, strict=True)]


def cpu_points(
    memory: np.ndarray, duration: np.ndarray, cpu_ms: Sequence[float | None]
) -> tuple[list[float], list[float]]:
    """(memory, duration) pairs that runs with a known CPU time imply below their own size.

    A run at ``m`` ≤ 1,769 MB (CPU share ``v`` ≤ 1) that took ``d`` and used ``cpu`` of CPU is
    ``a = d - cpu / v`` of I/O and ``cpu`` of work on one vCPU; at a smaller size ``m'`` it
    takes ``a + cpu / v(m')``. One pair per run at each of ``CPU_POINT_FRACTIONS`` of its size
    (not below the smallest size Lambda sells), so the implied sizes weigh as the runs do. A
    CPU time above what the share allows (``cpu / v > d``: a noisy reading) counts as all
    CPU. Runs above one vCPU imply nothing: their thread count is unknown."""
    if len(cpu_ms) != len(memory):
        raise ValueError("need one CPU time (or None) per (memory, duration) pair")
    extra_memory: list[float] = []
    extra_duration: list[float] = []
    for m, d, cpu in zip(memory, duration, cpu_ms, strict=True):
        if cpu is None or not math.isfinite(cpu) or cpu < 0 or m > MB_PER_VCPU:
            continue
        v = float(m) / MB_PER_VCPU
        io = max(0.0, float(d) - cpu / v)
        work = (float(d) - io) * v
        for fraction in CPU_POINT_FRACTIONS:
            smaller = round(float(m) * fraction)
            if smaller < MIN_MEMORY_MB:
                break
            extra_memory.append(float(smaller))
            extra_duration.append(io + work * MB_PER_VCPU / smaller)
    return extra_memory, extra_duration


def _candidates(memory_mb: Sequence[float]) -> list[float]:
    sizes = sorted({float(m) for m in _positive(memory_mb)})
    if not sizes:
        raise ValueError("need at least one memory size to choose from")
    return sizes


def _positive(memory_mb: Sequence[float] | np.ndarray) -> np.ndarray:
    memory = np.asarray(memory_mb, dtype=float)
    if not np.all(np.isfinite(memory)) or np.any(memory <= 0):
        raise ValueError("memory sizes must be positive, finite numbers of MB")
    return memory


def _validated(
    memory_mb: Sequence[float], duration_ms: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    memory = np.asarray(memory_mb, dtype=float).ravel()
    duration = np.asarray(duration_ms, dtype=float).ravel()
    if memory.size == 0 or memory.size != duration.size:
        raise ValueError("need at least one (memory, duration) pair, and as many of each")
    _positive(memory)
    if not np.all(np.isfinite(duration)) or np.any(duration <= 0):
        raise ValueError("durations must be positive, finite numbers of ms")
    return memory, duration


def _aggregate(
    memory: np.ndarray, duration: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sizes (ascending), mean duration per size, and how many measurements each mean holds."""
    sizes, inverse, counts = np.unique(memory, return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=duration) / counts
    return sizes, means, counts.astype(float)


def _design(memory: np.ndarray, threads: int) -> np.ndarray:
    v = vcpu_share(memory)
    columns = [np.ones_like(v), 1.0 / np.minimum(v, 1.0)]
    if threads > 1:
        columns.append(1.0 / np.minimum(v, float(threads)))
    return np.column_stack(columns)


def _fit_shape(
    sizes: np.ndarray,
    means: np.ndarray,
    counts: np.ndarray,
    threads: int,
    solved: dict | None = None,
) -> CurveShape:
    """Relative-error NNLS of the mean durations on the basis for this thread cap."""
    weights = np.sqrt(counts) / means
    design = _design(sizes, threads) * weights[:, None]
    target = means * weights
    ridge = np.diag(np.array(_RIDGE[: design.shape[1]]) * np.linalg.norm(design, axis=0))
    solution = nnls_small(
        np.vstack([design, ridge]), np.concatenate([target, np.zeros(design.shape[1])]), solved
    )
    parallel = float(solution[2]) if threads > 1 else 0.0
    return CurveShape(float(solution[0]), float(solution[1]), parallel, threads)


def _parameters(shape: CurveShape) -> int:
    return 2 if shape.threads == 1 else 3


def _sum_squared_log_error(shape: CurveShape, memory: np.ndarray, duration: np.ndarray) -> float:
    return float(np.sum(np.log(shape.predict(memory) / duration) ** 2))


def _residual_error(shape: CurveShape, memory: np.ndarray, duration: np.ndarray) -> float:
    """RMS log residual with a degrees-of-freedom correction; a prior when none are left."""
    dof = len(memory) - _parameters(shape)
    if dof <= 0:
        return RELATIVE_ERROR_PRIOR
    return math.sqrt(_sum_squared_log_error(shape, memory, duration) / dof)


def nnls_small(design: np.ndarray, target: np.ndarray, solved: dict | None = None) -> np.ndarray:
    """Non-negative least squares, exactly, for the two or three columns of this model:
    the NNLS optimum is the unconstrained least-squares fit on its own set of positive
    coefficients, so the best of the fits on every subset of columns whose coefficients are
    all non-negative is the optimum. Eight small ``lstsq`` calls at most; it spares the CLI
    and every controller the ~0.2 s import of ``scipy.optimize`` (same result as its ``nnls``,
    checked in the tests).

    ``solved``: least-squares fits already made, by their exact input (the thread caps 6, 4
    and 2 share the columns of the I/O and serial parts, so the fits on those alone are the
    same); found there, a fit is not made again — the same input gives the same numbers."""
    columns = design.shape[1]
    best, best_rss = np.zeros(columns), float(target @ target)
    for size in range(1, columns + 1):
        for subset in itertools.combinations(range(columns), size):
            columns_of = design[:, subset]
            key = (columns_of.shape, columns_of.tobytes(), target.tobytes())
            fitted = solved.get(key) if solved is not None else None
            if fitted is None:
                coef = np.linalg.lstsq(columns_of, target, rcond=None)[0]
                rss = None
                if not np.any(coef < 0):
                    residual = target - columns_of @ coef
                    rss = float(residual @ residual)
                fitted = (coef, rss)
                if solved is not None:
                    solved[key] = fitted
            coef, rss = fitted
            if rss is None:  # a negative coefficient
                continue
            if rss < best_rss:
                best = np.zeros(columns)
                best[list(subset)] = coef
                best_rss = rss
    return best
