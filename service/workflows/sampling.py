"""Seeded sampling of trial configurations from a search space."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from service.spec import Distribution


def sample_trials(
    search_space: dict[str, Distribution], trials: int, seed: int
) -> list[dict[str, Any]]:
    """``trials`` configurations; the same space, count and seed give the same list."""
    rng = np.random.default_rng(seed)
    names = sorted(search_space)
    return [{name: _draw(search_space[name], rng) for name in names} for _ in range(trials)]


def _draw(distribution: Distribution, rng: np.random.Generator) -> Any:
    if distribution.uniform is not None:
        low, high = distribution.uniform
        return float(rng.uniform(low, high))
    if distribution.log_uniform is not None:
        low, high = distribution.log_uniform
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))
    if distribution.int_uniform is not None:
        low, high = distribution.int_uniform
        return int(rng.integers(low, high + 1))
    assert distribution.choice is not None
    return distribution.choice[int(rng.integers(len(distribution.choice)))]
