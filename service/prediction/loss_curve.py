"""How many more training rounds a job needs to reach its target loss, with uncertainty.

The controller sizes the remaining rounds against the deadline (docs/policies.md), so it
needs the number of rounds still to run, not just the next loss. Training loss curves flatten
towards a floor; two standard shapes describe them:

- power law        L(t) = a + b * t^(-c)      (SGD on most models: slow, heavy-tailed approach)
- exponential      L(t) = a + b * exp(-c t)   (well-conditioned problems: geometric approach)

with ``a`` the asymptote (the loss the model can reach), ``b >= 0`` the reducible part and
``c > 0`` the rate. Time is scaled to x = t / t_last in (0, 1] for conditioning.

Both forms are linear in (a, b) once the rate c is fixed, so they are fitted by profiling: for
every rate on a log-spaced grid, (a, b) come from weighted linear least squares in closed form,
and the best rate is refined between its grid neighbours. No starting guesses, no local minima,
and it stays well-behaved on flat curves where (a, b, c) are not identifiable and a Gaussian
approximation of their joint covariance explodes. Residuals are relative (divided by the loss):
mini-batch noise shrinks as the loss does.

Uncertainty: each form's profile likelihood over the rate grid, exp(-RSS(c) / 2s²) with s the
relative residual scale (never below a floor; a prior with only three points), is sampled for c,
then (a, b) are drawn from their exact Gaussian given c. The forms are mixed by the same
likelihood ratio, so with a dozen noisy points, where neither form is reliably the true one, the
interval covers both. Each draw is solved for L(t) = target; a draw whose asymptote is above the
target, or whose curve rises, never reaches it. The share of draws reaching the target within
``max_rounds`` is reported as the probability of reaching it. Deterministic given the seed. The
crossing is of the mean curve: a noisy loss may touch the target a little earlier.

Losses are assumed to decrease; for a metric that grows (accuracy), fit its complement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

FORMS = ("power", "exponential")
MIN_POINTS = 3
STATE_VERSION = 1

# Relative noise assumed when the fit leaves no residual to measure it (three points, three
# parameters), and the least noise any fit is credited with: losses from mini-batches jitter.
PRIOR_NOISE = 0.02
NOISE_FLOOR = 0.002
# Rates in scaled time: power exponents up to 10, exponential rates up to 50 per observed span.
_RATE_GRID = {
    "power": np.geomspace(1e-3, 10.0, 241),
    "exponential": np.geomspace(1e-3, 50.0, 241),
}


def _basis(name: str, x: np.ndarray, rate: np.ndarray | float) -> np.ndarray:
    """g(x; c) with L = a + b g; broadcasts rates down the first axis."""
    c = np.asarray(rate, dtype=float)[..., None]
    return np.power(x, -c) if name == "power" else np.exp(-c * x)


@dataclass(frozen=True)
class RoundsEstimate:
    """Further rounds needed to reach the target loss: a median and a central interval.

    ``None`` means "not within ``max_rounds``" (or, with too few points, unknown). ``reached`` is
    True when the latest observed loss is already at or below the target (then all are 0).
    """

    median: int | None
    lower: int | None
    upper: int | None
    reachable_probability: float | None
    """Share of draws reaching the target within max_rounds; None when unknown."""
    point: int | None
    """Rounds according to the best-fit curve of the leading (highest-weight) form."""
    max_rounds: int
    reached: bool = False

    @property
    def likely_reachable(self) -> bool:
        return self.reachable_probability is not None and self.reachable_probability >= 0.5


@dataclass(frozen=True)
class FittedForm:
    """One functional form's best fit, in scaled time x = t / time_scale."""

    name: str
    params: tuple[float, float, float]
    """(a, b, c): asymptote, reducible part, rate."""
    rss: float
    """Sum of squared relative residuals."""
    weight: float
    """Likelihood weight among the fitted forms."""

    def at(self, x: np.ndarray) -> np.ndarray:
        a, b, c = self.params
        return a + b * _basis(self.name, x, c)

    def to_state(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "params": list(self.params),
            "rss": self.rss,
            "weight": self.weight,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FittedForm:
        a, b, c = (float(v) for v in state["params"])
        return cls(str(state["name"]), (a, b, c), float(state["rss"]), float(state["weight"]))


@dataclass(frozen=True)
class _Profile:
    """Weighted least squares of (a, b) for every rate on the grid: estimates and covariance."""

    rate: np.ndarray
    a: np.ndarray
    b: np.ndarray
    rss: np.ndarray
    var_a: np.ndarray  # per unit noise variance
    var_b: np.ndarray
    cov_ab: np.ndarray


def _profile(name: str, x: np.ndarray, y: np.ndarray, w2: np.ndarray, rate: np.ndarray) -> _Profile:
    """Closed-form (a, b) given each rate, in centred form so nearly flat bases stay stable.

    ``w2`` are the squared weights (1 / loss²). b is unconstrained here; the caller decides what
    a negative (rising) b means.
    """
    g = _basis(name, x, rate)  # (rates, points)
    total = w2.sum()
    g_mean = (g * w2).sum(axis=1) / total
    y_mean = float((y * w2).sum() / total)
    centred = g - g_mean[:, None]
    spread = (centred * centred * w2).sum(axis=1)
    flat = spread <= 1e-14 * total
    safe = np.where(flat, 1.0, spread)
    b = np.where(flat, 0.0, (centred * (y - y_mean) * w2).sum(axis=1) / safe)
    a = y_mean - b * g_mean
    residual = y - a[:, None] - b[:, None] * g
    rss = (residual * residual * w2).sum(axis=1)
    var_b = np.where(flat, 0.0, 1.0 / safe)
    return _Profile(
        rate=np.asarray(rate, dtype=float),
        a=a,
        b=b,
        rss=rss,
        var_a=1.0 / total + g_mean * g_mean * var_b,
        var_b=var_b,
        cov_ab=-g_mean * var_b,
    )


@dataclass(frozen=True)
class LossCurve:
    """A loss curve fitted to (round, loss) observations. Build it with :meth:`fit`."""

    epochs: tuple[float, ...]
    losses: tuple[float, ...]
    time_scale: float
    forms: tuple[FittedForm, ...]
    """Empty when there were fewer than three distinct rounds to fit."""
    noise: float
    """Relative residual scale the uncertainty is drawn with."""

    @classmethod
    def fit(cls, epochs: Sequence[float], losses: Sequence[float]) -> LossCurve:
        """Fit both forms to losses observed after rounds ``epochs`` (counted from 1)."""
        t = np.asarray(epochs, dtype=float).ravel()
        y = np.asarray(losses, dtype=float).ravel()
        if t.size != y.size:
            raise ValueError("epochs and losses must have the same length")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(y))):
            raise ValueError("epochs and losses must be finite")
        if np.any(t <= 0):
            raise ValueError("rounds are counted from 1: epochs must be positive")
        order = np.argsort(t, kind="stable")
        t, y = t[order], y[order]
        time_scale = float(t[-1]) if t.size else 1.0
        curve = cls(tuple(t.tolist()), tuple(y.tolist()), time_scale, (), PRIOR_NOISE)
        if np.unique(t).size < MIN_POINTS:
            return curve
        x, w2 = curve._scaled()
        best = [_best_fit(name, x, y, w2) for name in FORMS]
        rss = np.array([fit[1] for fit in best])
        dof = y.size - 3
        noise = math.sqrt(max(rss.min() / dof, NOISE_FLOOR**2)) if dof > 0 else PRIOR_NOISE
        weights = np.exp(-(rss - rss.min()) / (2.0 * noise * noise))
        weights /= weights.sum()
        forms = tuple(
            FittedForm(name, params, float(r), float(weight))
            for name, (params, r), weight in zip(FORMS, best, weights, strict=True)
        )
        return cls(curve.epochs, curve.losses, time_scale, forms, noise)

    def _scaled(self) -> tuple[np.ndarray, np.ndarray]:
        """Scaled times and squared relative weights (guarded for losses near zero)."""
        y = np.asarray(self.losses)
        magnitude = np.maximum(np.abs(y), 1e-3 * max(float(np.mean(np.abs(y))), 1e-12))
        return np.asarray(self.epochs) / self.time_scale, 1.0 / (magnitude * magnitude)

    # -- predicting ------------------------------------------------------------------------------

    @property
    def fitted(self) -> bool:
        return bool(self.forms)

    def predict(self, epochs: Sequence[float] | np.ndarray) -> np.ndarray:
        """The weighted mean loss of the fitted forms at these rounds."""
        if not self.forms:
            raise ValueError(f"need at least {MIN_POINTS} distinct rounds to predict a loss")
        x = np.asarray(epochs, dtype=float) / self.time_scale
        return sum((form.weight * form.at(x) for form in self.forms), np.zeros_like(x))

    @property
    def asymptote(self) -> float | None:
        """The weighted loss floor the fitted forms approach (None when not fitted)."""
        if not self.forms:
            return None
        return float(sum(form.weight * form.params[0] for form in self.forms))

    def rounds_to_target(
        self,
        target: float,
        max_rounds: int,
        *,
        level: float = 0.9,
        samples: int = 4000,
        seed: int = 0,
    ) -> RoundsEstimate:
        """Further rounds until the loss reaches ``target``, with a central ``level`` interval."""
        if max_rounds < 1 or not 0.0 < level < 1.0 or samples < 1:
            raise ValueError("need max_rounds >= 1, 0 < level < 1 and samples >= 1")
        if self.losses and self.losses[-1] <= target:
            return RoundsEstimate(0, 0, 0, 1.0, 0, max_rounds, reached=True)
        if not self.forms:
            # Too few points for a curve: at least one more round, beyond that unknown.
            return RoundsEstimate(None, 1, None, None, None, max_rounds)

        rng = np.random.default_rng(seed)
        counts = rng.multinomial(samples, [form.weight for form in self.forms])
        rounds = np.concatenate(
            [
                self._rounds(form.name, self._draw(form.name, count, rng), target)
                for form, count in zip(self.forms, counts, strict=True)
            ]
        )
        leading = max(self.forms, key=lambda form: form.weight)
        point = float(self._rounds(leading.name, np.array([leading.params]), target)[0])

        def bounded(q: float) -> int | None:
            value = float(np.quantile(rounds, q, method="inverted_cdf"))
            return int(value) if value <= max_rounds else None

        tail = (1.0 - level) / 2.0
        return RoundsEstimate(
            median=bounded(0.5),
            lower=bounded(tail),
            upper=bounded(1.0 - tail),
            reachable_probability=float(np.mean(rounds <= max_rounds)),
            point=int(point) if point <= max_rounds else None,
            max_rounds=max_rounds,
        )

    def _draw(self, name: str, count: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` (a, b, c) draws: c from the profile likelihood, (a, b) Gaussian given c."""
        if count == 0:
            return np.empty((0, 3))
        x, w2 = self._scaled()
        profile = _profile(name, x, np.asarray(self.losses), w2, _RATE_GRID[name])
        noise2 = self.noise * self.noise
        likelihood = np.exp(-(profile.rss - profile.rss.min()) / (2.0 * noise2))
        k = rng.choice(profile.rate.size, size=count, p=likelihood / likelihood.sum())
        z1, z2 = rng.standard_normal((2, count))
        # Cholesky of the 2 x 2 covariance noise² [[var_a, cov], [cov, var_b]] per draw.
        sd_a = np.sqrt(noise2 * profile.var_a[k])
        lower = noise2 * profile.cov_ab[k] / sd_a
        rest = np.sqrt(np.maximum(noise2 * profile.var_b[k] - lower * lower, 0.0))
        a = profile.a[k] + sd_a * z1
        b = profile.b[k] + lower * z1 + rest * z2
        return np.column_stack([a, b, profile.rate[k]])

    def _rounds(self, name: str, params: np.ndarray, target: float) -> np.ndarray:
        """Rounds after the last observed one until each row's curve is at ``target``.

        inf when it never gets there: asymptote at or above the target, or a rising curve.
        """
        a, b, c = params[:, 0], params[:, 1], params[:, 2]
        gap = target - a
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            ratio = b / gap  # g(x) must fall to this
            x = np.power(ratio, 1.0 / c) if name == "power" else np.log(ratio) / c
            crossing = x * self.time_scale
        reachable = (gap > 0) & (b > 0) & np.isfinite(crossing)
        crossing = np.where(reachable, crossing, np.inf)
        # Not reached yet (the caller checked), so at least one more round.
        return np.maximum(np.ceil(crossing - self.epochs[-1] - 1e-9), 1.0)

    # -- persistence -----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "epochs": list(self.epochs),
            "losses": list(self.losses),
            "time_scale": self.time_scale,
            "forms": [form.to_state() for form in self.forms],
            "noise": self.noise,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LossCurve:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported LossCurve state version: {state.get('version')!r}")
        return cls(
            epochs=tuple(float(v) for v in state["epochs"]),
            losses=tuple(float(v) for v in state["losses"]),
            time_scale=float(state["time_scale"]),
            forms=tuple(FittedForm.from_state(form) for form in state["forms"]),
            noise=float(state["noise"]),
        )


def _best_fit(
    name: str, x: np.ndarray, y: np.ndarray, w2: np.ndarray
) -> tuple[tuple[float, float, float], float]:
    """Best (a, b, c) with b >= 0 and its RSS: grid search, then refined between neighbours."""

    def constrained(rates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        profile = _profile(name, x, y, w2, rates)
        rising = profile.b < 0  # no decrease at this rate: the best decreasing curve is flat
        flat_a = float((y * w2).sum() / w2.sum())
        flat_rss = float((((y - flat_a) ** 2) * w2).sum())
        a = np.where(rising, flat_a, profile.a)
        b = np.where(rising, 0.0, profile.b)
        return a, b, np.where(rising, flat_rss, profile.rss)

    grid = _RATE_GRID[name]
    _, _, rss = constrained(grid)
    k = int(np.argmin(rss))
    low, high = math.log(grid[max(k - 1, 0)]), math.log(grid[min(k + 1, grid.size - 1)])
    from scipy.optimize import minimize_scalar  # only a refit needs it: ~0.2 s to import

    refined = minimize_scalar(
        lambda log_rate: float(constrained(np.array([math.exp(log_rate)]))[2][0]),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-6},
    )
    rate = math.exp(float(refined.x)) if refined.fun <= rss[k] else float(grid[k])
    a, b, best_rss = constrained(np.array([rate]))
    return (float(a[0]), float(b[0]), rate), float(best_rss[0])
