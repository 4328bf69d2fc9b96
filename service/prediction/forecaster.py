"""Online forecasts of invocation durations for many series at once, with prediction intervals.

A training job's rounds (or an HPO stage's trials) produce a duration series per function; the
controller needs the next durations, and how far they may stray, before it picks memory for the
next round (docs/policies.md). A :class:`ForecasterBank` holds thousands of such series
in NumPy arrays and splits the work in two:

- **Slow path** — :meth:`ForecasterBank.refit`: statsmodels fits a small ARIMA(p, d, q),
  p, q ≤ 1, d ≤ 1, to the series' recent window of log-durations, choosing the order by AIC and
  warm-starting from the previous fit. The caller runs it on a slow cadence
  (:meth:`ForecasterBank.due_for_refit` lists series with ``refit_every`` new points) and within
  its own budget. Fits run on one BLAS thread: these models are tiny, and a multi-threaded BLAS
  only spins its threads — 20× the CPU of one thread per fit on a busy two-core machine
  (docs/benchmarks.md).
- **Cheap path** — :meth:`ForecasterBank.update` and :meth:`ForecasterBank.forecast`: between
  refits the fitted coefficients stay fixed and each new observation only advances the ARMA(1, 1)
  innovations recursion, ``ẑ = μ + φ (z_{t-1} - μ) + θ e_{t-1}``, ``e_t = z_t - ẑ``, where
  ``z`` is the log-duration (d = 0) or its change (d = 1). That is a few array operations for any
  number of series.

Durations are modelled on the log scale: run-to-run noise on Lambda is multiplicative (a cold
start or a noisy neighbour stretches a run by a factor), and the intervals stay positive.

A series is forecast by an EWMA of its log-durations (mean and innovation variance) until it has
``min_observations`` points and a fit that converged; a fit that fails or does not converge puts
the series back on the EWMA until the next refit succeeds. The EWMA is ARIMA(0, 1, 1), so its
h-step variance is ``σ² (1 + (h - 1) α²)``.

Everything here is pure: no clock, no I/O. The bank's state is plain JSON (:meth:`to_state`), so a
restarted controller resumes without relearning.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, NamedTuple

import numpy as np

Order = tuple[int, int, int]
STATE_VERSION = 1
MAX_ROOT = 0.97
"""Largest |φ| (with d = 0) and |θ| a fit may have; beyond it the fit is treated as degenerate."""


@dataclass(frozen=True)
class ForecasterConfig:
    """How the bank learns. The defaults suit round durations of a training job."""

    min_observations: int = 8
    """Below this many points a series is forecast by its EWMA only."""
    refit_every: int = 16
    """A series is due for a refit after this many new points."""
    window: int = 64
    """Recent points kept per series; fits use them (and they are persisted)."""
    orders: tuple[Order, ...] = ((1, 0, 0), (1, 0, 1), (0, 1, 1), (1, 1, 1))
    """Candidate (p, d, q) orders, compared by AIC."""
    reselect_every: int = 4
    """Compare every order on every this-many-th refit; in between refit the incumbent only."""
    ewma_alpha: float = 0.2
    prior_log_sd: float = 0.2
    """Spread assumed for a series' first point (log scale, ~ ±20 %) before any is measured."""

    def __post_init__(self) -> None:
        if self.min_observations < 3 or self.window < self.min_observations:
            raise ValueError("need 3 <= min_observations <= window")
        if self.refit_every < 1 or self.reselect_every < 1:
            raise ValueError("refit_every and reselect_every must be at least 1")
        if not self.orders or any(
            len(o) != 3 or not all(part in (0, 1) for part in o) for o in self.orders
        ):
            raise ValueError("orders must be non-empty (p, d, q) triples with each part 0 or 1")
        if not 0.0 < self.ewma_alpha < 1.0 or self.prior_log_sd <= 0.0:
            raise ValueError("ewma_alpha must be in (0, 1) and prior_log_sd positive")

    def to_state(self) -> dict[str, Any]:
        state = asdict(self)
        state["orders"] = [list(o) for o in self.orders]
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ForecasterConfig:
        fields = dict(state)
        fields["orders"] = tuple(tuple(int(x) for x in o) for o in state["orders"])
        return cls(**fields)


# Round durations of a training job, relative to the shape's memory curve (the loop's learn step
# keeps one series per job and shape; the policies forecast from it). Rounds arrive every few
# seconds to minutes. Below 24 rounds a series is forecast by its EWMA; from then on it is
# refitted every 24 rounds, on the last 64. Only AR(1) with a mean and IMA(1,1) are candidates:
# on short, nearly constant duration ratios the (1,0,1) and (1,1,1) fits often fail to converge
# after seconds of statsmodels, which a tick cannot afford.
ROUND_DURATIONS = ForecasterConfig(
    min_observations=24,
    refit_every=24,
    window=64,
    reselect_every=4,
    orders=((1, 0, 0), (0, 1, 1)),
    # A round's duration relative to the curve varies far less than one run's: Lambda's
    # run-to-run noise is a few percent (the emulator's σ = 0.05), and a round is its slowest
    # worker. The prior sd counts until the series' own spread is measured.
    prior_log_sd=0.1,
)


class Forecast(NamedTuple):
    """Duration forecasts (ms), shape (series, horizon): column j is j + 1 steps ahead.

    ``mean`` is the conditional mean of the log-normal forecast distribution; ``lower`` and
    ``upper`` bound its central ``level`` interval. NaN for a series with no observations.
    """

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


@dataclass(frozen=True)
class RefitReport:
    """Which series a :meth:`ForecasterBank.refit` call put on which forecaster."""

    fitted: np.ndarray
    """Now forecast by a converged ARIMA fit."""
    fell_back: np.ndarray
    """No candidate order converged: forecast by the EWMA until a later refit succeeds."""
    skipped: np.ndarray
    """Too few points to fit: still on the EWMA."""


@dataclass(frozen=True)
class _ArimaFit:
    order: Order
    params: np.ndarray
    aic: float


class ForecasterBank:
    """Duration forecasters for ``n_series`` series, addressed by index 0 … n_series - 1."""

    def __init__(self, n_series: int = 0, config: ForecasterConfig | None = None) -> None:
        self.config = config or ForecasterConfig()
        self._set_arrays(_empty_arrays(0, self.config.window))
        self._order: list[Order | None] = []  # last fitted order per series, for warm starts
        self._params: list[np.ndarray | None] = []  # its statsmodels parameters
        if n_series:
            self.add_series(n_series)

    # -- series ----------------------------------------------------------------------------------

    @property
    def n_series(self) -> int:
        return int(self._n_obs.size)

    def add_series(self, count: int = 1) -> np.ndarray:
        """Append ``count`` empty series; returns their indices."""
        if count < 1:
            raise ValueError("count must be at least 1")
        start = self.n_series
        fresh = _empty_arrays(count, self.config.window)
        self._set_arrays(
            {name: np.concatenate([getattr(self, name), extra]) for name, extra in fresh.items()}
        )
        self._order.extend([None] * count)
        self._params.extend([None] * count)
        return np.arange(start, start + count)

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self._n_obs = arrays["_n_obs"]
        self._since_fit = arrays["_since_fit"]  # points since the last fit attempt
        self._fits = arrays["_fits"]  # successful fits so far: the reselect cadence
        self._history = arrays["_history"]  # ring buffer of log-durations, (series, window)
        self._ewma_mean = arrays["_ewma_mean"]
        self._ewma_var = arrays["_ewma_var"]
        self._active = arrays["_active"]  # forecast by the ARIMA fit, not the EWMA
        self._diff = arrays["_diff"]
        self._mu = arrays["_mu"]
        self._phi = arrays["_phi"]
        self._theta = arrays["_theta"]
        self._sigma2 = arrays["_sigma2"]
        self._z_prev = arrays["_z_prev"]
        self._e_prev = arrays["_e_prev"]
        self._x_prev = arrays["_x_prev"]
        self._stamp = arrays["_stamp"]  # scratch for the repeated-index check

    # -- cheap path ------------------------------------------------------------------------------

    def update(self, series_ids: np.ndarray, values: np.ndarray) -> None:
        """Record one new duration (ms, > 0) per entry; an index may repeat (applied in order)."""
        ids = self._indices(series_ids)
        x = np.asarray(values, dtype=float).ravel()
        if x.shape != ids.shape:
            raise ValueError("series_ids and values must have the same length")
        if not np.all(np.isfinite(x)) or np.any(x <= 0):
            raise ValueError("durations must be positive and finite (a missing one is not zero)")
        x = np.log(x)
        positions = np.arange(ids.size)
        self._stamp[ids] = positions
        if np.array_equal(self._stamp[ids], positions):
            self._step(ids, x)
            return
        # Repeated indices: apply the k-th occurrence of every index in the k-th pass.
        order = np.argsort(ids, kind="stable")
        ids, x = ids[order], x[order]
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        rank = positions - np.repeat(starts, np.diff(np.r_[starts, ids.size]))
        for occurrence in range(int(rank.max()) + 1):
            chosen = rank == occurrence
            self._step(ids[chosen], x[chosen])

    def _step(self, ids: np.ndarray, x: np.ndarray) -> None:
        """Advance distinct series by one log-observation each."""
        n = self._n_obs[ids]
        first = n == 0
        # Start-up: a running average until there are 1/α points, the EWMA from then on, so
        # that the prior variance weighs as one observation instead of dominating the first
        # 1/α forecasts (with α = 0.2 and a prior 4× the real spread, a 10-point series'
        # interval was still twice as wide as its data).
        alpha = np.maximum(self.config.ewma_alpha, 1.0 / (n + 1.0))
        previous_mean = self._ewma_mean[ids]
        deviation = x - previous_mean  # the EWMA's one-step forecast error
        self._ewma_var[ids] = np.where(
            first,
            self.config.prior_log_sd**2,
            (1.0 - alpha) * self._ewma_var[ids] + alpha * deviation * deviation,
        )
        self._ewma_mean[ids] = np.where(first, x, previous_mean + alpha * deviation)

        # The ARMA recursion runs for every series; it only matters for those with a fit, and
        # a refit re-filters its window, so running it for the others is harmless and branch-free.
        z = np.where(self._diff[ids] == 1, x - self._x_prev[ids], x)
        mu = self._mu[ids]
        predicted = (
            mu + self._phi[ids] * (self._z_prev[ids] - mu) + self._theta[ids] * self._e_prev[ids]
        )
        self._e_prev[ids] = z - predicted
        self._z_prev[ids] = z
        self._x_prev[ids] = x

        self._history[ids, n % self.config.window] = x
        self._n_obs[ids] = n + 1
        self._since_fit[ids] += 1

    def forecast(self, series_ids: np.ndarray, horizon: int = 1, level: float = 0.9) -> Forecast:
        """Forecasts 1 … ``horizon`` steps ahead with central ``level`` intervals.

        ARIMA series: the mean follows the ARMA recursion forward and the variance is the
        innovation variance times the summed squared ψ-weights (ψ₀ = 1, ψ_j = φ^{j-1}(φ + θ)),
        accumulated once more for d = 1.
        """
        ids = self._indices(series_ids)
        if horizon < 1:
            raise ValueError("horizon must be at least 1")
        if not 0.0 < level < 1.0:
            raise ValueError("level must be between 0 and 1")
        steps = np.arange(horizon)

        mu, phi, theta = self._mu[ids, None], self._phi[ids, None], self._theta[ids, None]
        one_step = mu + phi * (self._z_prev[ids, None] - mu) + theta * self._e_prev[ids, None]
        decay = phi**steps  # φ^j, j = 0 … h - 1
        z_mean = mu + decay * (one_step - mu)
        psi = np.ones_like(decay)
        psi[:, 1:] = decay[:, :-1] * (phi + theta)
        integrated = (self._diff[ids] == 1)[:, None]
        levels = self._x_prev[ids, None] + np.cumsum(z_mean, axis=1)
        arima_mean = np.where(integrated, levels, z_mean)
        weights = np.where(integrated, np.cumsum(psi, axis=1), psi)
        arima_var = self._sigma2[ids, None] * np.cumsum(weights * weights, axis=1)

        alpha = self.config.ewma_alpha
        ewma_mean = np.broadcast_to(self._ewma_mean[ids, None], arima_mean.shape)
        ewma_var = self._ewma_var[ids, None] * (1.0 + steps * alpha * alpha)

        active = self._active[ids, None]
        log_mean = np.where(active, arima_mean, ewma_mean)
        log_var = np.where(active, arima_var, ewma_var)
        empty = (self._n_obs[ids] == 0)[:, None]
        log_mean = np.where(empty, np.nan, log_mean)

        z = NormalDist().inv_cdf(0.5 + level / 2.0)
        sd = np.sqrt(log_var)
        return Forecast(
            mean=np.exp(log_mean + log_var / 2.0),
            lower=np.exp(log_mean - z * sd),
            upper=np.exp(log_mean + z * sd),
        )

    def uses_arima(self, series_ids: np.ndarray) -> np.ndarray:
        """Whether each series is currently forecast by its ARIMA fit (else by the EWMA)."""
        return self._active[self._indices(series_ids)].copy()

    def observations(self, series_ids: np.ndarray) -> np.ndarray:
        return self._n_obs[self._indices(series_ids)].copy()

    # -- slow path -------------------------------------------------------------------------------

    def due_for_refit(self) -> np.ndarray:
        """Series with enough points and ``refit_every`` new ones since their last fit attempt.

        Most stale first, so a caller with a time budget can take a prefix.
        """
        enough = self._n_obs >= self.config.min_observations
        never_tried = self._since_fit == self._n_obs  # the counter resets at every attempt
        due = enough & ((self._since_fit >= self.config.refit_every) | never_tried)
        ids = np.flatnonzero(due)
        return ids[np.argsort(-self._since_fit[ids], kind="stable")]

    def refit(self, series_ids: np.ndarray) -> RefitReport:
        """Fit ARIMA to each listed series' window (statsmodels; the slow path), on one BLAS
        thread."""
        ids = np.unique(self._indices(series_ids)).tolist()
        if not ids:
            return RefitReport(_index_array([]), _index_array([]), _index_array([]))
        with _one_blas_thread():
            return self._refit(ids)

    def _refit(self, ids: list[int]) -> RefitReport:
        fitted, fell_back, skipped = [], [], []
        for i in ids:
            if self._n_obs[i] < self.config.min_observations:
                skipped.append(i)
                continue
            window = self._window(i)
            result = self._fit_series(i, window)
            self._since_fit[i] = 0
            if result is None:
                self._active[i] = False
                fell_back.append(i)
                continue
            self._install(i, result.order, result.params, window)
            self._fits[i] += 1
            fitted.append(i)
        return RefitReport(_index_array(fitted), _index_array(fell_back), _index_array(skipped))

    def _fit_series(self, i: int, window: np.ndarray) -> _ArimaFit | None:
        if np.ptp(window) < 1e-9:
            return None  # a constant series has nothing to model; the EWMA forecasts it exactly
        incumbent, warm = self._order[i], self._params[i]
        full_selection = incumbent is None or self._fits[i] % self.config.reselect_every == 0
        candidates = list(self.config.orders) if full_selection else [incumbent]
        best = _best(window, candidates, incumbent, warm)
        if best is None and not full_selection:
            best = _best(window, list(self.config.orders), incumbent, warm)
        return best

    def _install(self, i: int, order: Order, params: np.ndarray, window: np.ndarray) -> None:
        """Adopt fitted coefficients and re-run the recursion over the window to seed its state."""
        mu, phi, theta, sigma2 = _coefficients(order, params)
        self._order[i], self._params[i] = order, np.array(params, dtype=float)
        self._diff[i], self._mu[i], self._phi[i], self._theta[i] = order[1], mu, phi, theta
        self._sigma2[i] = sigma2
        z_values = np.diff(window) if order[1] == 1 else window
        z_prev, e_prev = mu, 0.0
        for z in z_values.tolist():
            e_prev = z - (mu + phi * (z_prev - mu) + theta * e_prev)
            z_prev = z
        self._z_prev[i], self._e_prev[i], self._x_prev[i] = z_prev, e_prev, window[-1]
        self._active[i] = True

    def _window(self, i: int) -> np.ndarray:
        """The series' kept points, oldest first."""
        n, size = int(self._n_obs[i]), self.config.window
        if n <= size:
            return self._history[i, :n].copy()
        return np.roll(self._history[i], -(n % size))

    # -- persistence -----------------------------------------------------------------------------

    def series_state(self, index: int) -> dict[str, Any]:
        """One series' state as plain JSON: what a control loop stores per function / stage."""
        i = int(self._indices(np.array([index]))[0])
        order, params = self._order[i], self._params[i]
        return {
            "n_obs": int(self._n_obs[i]),
            "since_fit": int(self._since_fit[i]),
            "fits": int(self._fits[i]),
            "history": self._window(i).tolist(),
            "ewma_mean": float(self._ewma_mean[i]),
            "ewma_var": float(self._ewma_var[i]),
            "arima": None
            if order is None or params is None
            else {"order": list(order), "params": params.tolist(), "active": bool(self._active[i])},
            "z_prev": float(self._z_prev[i]),
            "e_prev": float(self._e_prev[i]),
            "x_prev": float(self._x_prev[i]),
        }

    def load_series_state(self, index: int, state: dict[str, Any]) -> None:
        """Restore one series from :meth:`series_state` output."""
        i = int(self._indices(np.array([index]))[0])
        n, history = int(state["n_obs"]), np.asarray(state["history"], dtype=float)
        if history.size != min(n, self.config.window):
            raise ValueError("history length does not match n_obs and the window")
        self._n_obs[i], self._since_fit[i] = n, int(state["since_fit"])
        self._fits[i] = int(state["fits"])
        self._history[i] = 0.0
        if history.size:
            ages = np.arange(history.size)[::-1]  # 0 for the newest point
            self._history[i, (n - 1 - ages) % self.config.window] = history
        self._ewma_mean[i], self._ewma_var[i] = float(state["ewma_mean"]), float(state["ewma_var"])
        arima = state.get("arima")
        if arima is None:
            self._order[i] = self._params[i] = None
            self._active[i] = False
            self._diff[i] = 0
            self._mu[i] = self._phi[i] = self._theta[i] = self._sigma2[i] = 0.0
        else:
            p, d, q = (int(x) for x in arima["order"])
            order: Order = (p, d, q)
            params = np.asarray(arima["params"], dtype=float)
            mu, phi, theta, sigma2 = _coefficients(order, params)
            self._order[i], self._params[i] = order, params
            self._active[i] = bool(arima["active"])
            self._diff[i], self._mu[i], self._phi[i] = order[1], mu, phi
            self._theta[i], self._sigma2[i] = theta, sigma2
        self._z_prev[i], self._e_prev[i] = float(state["z_prev"]), float(state["e_prev"])
        self._x_prev[i] = float(state["x_prev"])

    def to_state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "config": self.config.to_state(),
            "series": [self.series_state(i) for i in range(self.n_series)],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ForecasterBank:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported ForecasterBank state version: {state.get('version')!r}")
        bank = cls(len(state["series"]), ForecasterConfig.from_state(state["config"]))
        for i, series in enumerate(state["series"]):
            bank.load_series_state(i, series)
        return bank

    # -- helpers ---------------------------------------------------------------------------------

    def _indices(self, series_ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(series_ids).ravel()
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise TypeError("series_ids must be integers")
        ids = ids.astype(np.int64, copy=False)
        if ids.size and (ids.min() < 0 or ids.max() >= self.n_series):
            raise IndexError(f"series index out of range 0..{self.n_series - 1}")
        return ids


def _empty_arrays(n: int, window: int) -> dict[str, np.ndarray]:
    integers = ("_n_obs", "_since_fit", "_fits", "_diff", "_stamp")
    floats = ("_ewma_mean", "_ewma_var", "_mu", "_phi", "_theta", "_sigma2")
    floats += ("_z_prev", "_e_prev", "_x_prev")
    arrays = {name: np.zeros(n, dtype=np.int64) for name in integers}
    arrays |= {name: np.zeros(n) for name in floats}
    arrays["_history"] = np.zeros((n, window))
    arrays["_active"] = np.zeros(n, dtype=bool)
    return arrays


def _index_array(values: list[int]) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def _one_blas_thread():
    """A context in which BLAS (NumPy's and SciPy's OpenBLAS, MKL, ...) runs on one thread."""
    # statsmodels first: it loads SciPy, whose BLAS library must be loaded to be limited
    import statsmodels.tsa.arima.model  # noqa: F401
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _best(
    window: np.ndarray, orders: list[Order], incumbent: Order | None, warm: np.ndarray | None
) -> _ArimaFit | None:
    """The lowest-AIC converged fit among ``orders``; the incumbent order starts warm."""
    best: _ArimaFit | None = None
    for order in orders:
        start = warm if order == incumbent else None
        result = _fit_arima(window, order, start)
        if result is not None and (best is None or result.aic < best.aic):
            best = result
    return best


def _fit_arima(window: np.ndarray, order: Order, start: np.ndarray | None) -> _ArimaFit | None:
    """One statsmodels ARIMA fit; None when it raises, warns of non-convergence, or degenerates.

    With d = 0 the model has a constant (the series' mean); with d = 1 none (no drift: round
    durations wander but do not trend for ever).
    """
    # Imported here: statsmodels takes about a second to import and only the slow path needs it.
    from statsmodels.tools.sm_exceptions import ConvergenceWarning
    from statsmodels.tsa.arima.model import ARIMA

    trend = "c" if order[1] == 0 else "n"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = ARIMA(window, order=order, trend=trend).fit(start_params=start)
        except (ValueError, RuntimeError, OverflowError, np.linalg.LinAlgError):
            return None
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        return None
    retvals = result.mle_retvals or {}
    params = np.asarray(result.params, dtype=float)
    aic = float(result.aic)
    if not retvals.get("converged", True) or not np.all(np.isfinite(params)) or math.isnan(aic):
        return None
    _, phi, theta, sigma2 = _coefficients(order, params)
    if sigma2 <= 0.0:
        return None
    # A root on (or at) the unit circle is a degenerate fit, common on short windows: with
    # |θ| → 1 the innovations recursion that seeds the cheap path never forgets its start and
    # its forecasts swing by the series' whole range every step; |φ| → 1 with d = 0 is a unit
    # root that the d = 1 candidates model properly. Another order wins instead.
    if abs(theta) >= MAX_ROOT or (order[1] == 0 and abs(phi) >= MAX_ROOT):
        return None
    return _ArimaFit(order, params, aic)


def _coefficients(order: Order, params: np.ndarray) -> tuple[float, float, float, float]:
    """(μ, φ, θ, σ²) from statsmodels' parameter vector: [const]? [ar.L1]? [ma.L1]? sigma2."""
    p, d, q = order
    values = [float(v) for v in params]
    mu = values.pop(0) if d == 0 else 0.0
    phi = values.pop(0) if p == 1 else 0.0
    theta = values.pop(0) if q == 1 else 0.0
    return mu, phi, theta, values.pop(0)


def update_workload(
    n_series: int = 10_000, ticks: int = 20, seed: int = 0
) -> tuple[ForecasterBank, list[tuple[np.ndarray, np.ndarray]]]:
    """The cheap path's load: a bank of series on ARIMA forecasts, and ``ticks`` update batches.

    Each batch carries one new duration for every series, in shuffled order. The coefficients are
    drawn at random instead of fitted, so building this spends no statsmodels time. Benchmarks
    time ``bank.update(ids, values)`` over the batches; the tests check it against a
    series-by-series loop.
    """
    rng = np.random.default_rng(seed)
    config = ForecasterConfig()
    bank = ForecasterBank(n_series, config)
    ids = np.arange(n_series)
    levels = rng.uniform(np.log(100.0), np.log(60_000.0), n_series)
    for _ in range(config.min_observations):
        bank.update(ids, np.exp(levels + rng.normal(0.0, 0.05, n_series)))
    for i in range(n_series):
        order = config.orders[i % len(config.orders)]
        params = [levels[i]] if order[1] == 0 else []
        params += [rng.uniform(-0.8, 0.9)] if order[0] == 1 else []
        params += [rng.uniform(-0.5, 0.5)] if order[2] == 1 else []
        params.append(0.05**2)
        bank._install(i, order, np.array(params), bank._window(i))
    batches = [
        (perm := rng.permutation(n_series), np.exp(levels[perm] + rng.normal(0.0, 0.05, n_series)))
        for _ in range(ticks)
    ]
    return bank, batches
