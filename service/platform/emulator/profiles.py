"""Workload profiles: where the emulator gets a workload's behaviour when it does not measure it.

Two file formats, told apart by their keys, both read by `load_profile`:

- a **code profile** (written by `cescale profile`): the performance-model traits of a piece of
  code measured on this machine, e.g.
  ``{"name": "builtin:mlp", "cpu_ms": 1234.0, "parallel_fraction": 0.3, "max_threads": 2,
  "io_ms": 0.0, "peak_memory_mb": 210.0, "init_ms": 450.0}``;
- a **measured profile** (docs/platform.md): per memory size, duration percentiles and memory used
  as measured on real Lambda, under the key ``"memory_mb"``, plus optional ``cold_start_ms``
  and ``arm64_speed`` (the speed on arm64 relative to x86_64, where the sizes were measured;
  1.0 when absent). A code profile takes ``arm64_speed`` too.

A measured profile becomes a `ProfileCurve`, tabulated for every whole MB from 128 to 10,240
(Lambda's 1 MB steps) so that lookups are exact and cheap:

- *p50 at the measured sizes* is the measured p50 after a running minimum over increasing
  memory (more memory never makes a function slower; a measured rise is noise).
- *Between measured sizes* the curve follows the CPU model (formula 2 in `model.py`) fitted to
  all measured points, times a correction that is interpolated linearly in log(duration) over
  log(memory) so that it passes through every measured point exactly. Then each segment is
  clamped to its end points and a running minimum keeps the whole curve non-increasing. Plain
  log-log interpolation would cut the corner at 1,769 MB where single-threaded code stops
  speeding up; following the model's shape does not (tested on synthetic curves: worst error
  9 % versus 13 % for plain log-log with measurements at 512/1024/2048/4096 MB).
- *Beyond the measured range* the fitted model extrapolates, anchored at the nearest measured
  point: below 1,769 MB duration grows as 1/m; above, only the parallel part it found keeps
  shrinking, and never with more threads than the data shows.
- *Noise*: sigma = ln(p90/p10) / (2 * 1.2816) per measured size, interpolated linearly in
  log(memory), held constant beyond; DEFAULT_SIGMA where p10/p90 are missing.
- *Memory used*: interpolated linearly in log(memory) between measured sizes, the smallest
  measured footprint below them (the floor), the largest size's value above them, and never
  more than the memory size itself. *Out of memory* below the floor: every measured size ran,
  so anything at or above the smallest footprint is taken to fit.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from service.platform.emulator.model import (
    DEFAULT_SIGMA,
    CpuModel,
    fit_cpu_model,
    sigma_from_percentiles,
)
from service.platform.interface import MAX_MEMORY_MB, MIN_MEMORY_MB, Traits, check_arm64_speed

CODE_PROFILE_KEYS = frozenset(
    {
        "name",
        "cpu_ms",
        "parallel_fraction",
        "max_threads",
        "io_ms",
        "peak_memory_mb",
        "init_ms",
        "arm64_speed",
    }
)


class ProfileError(ValueError):
    """A profile file that cannot be used; the message says what is wrong and where."""


@dataclass(frozen=True)
class CodeProfile:
    name: str
    traits: Traits


@dataclass(frozen=True)
class MeasuredPoint:
    memory_mb: int
    p50_ms: float
    mem_used_mb: float
    p10_ms: float | None = None
    p90_ms: float | None = None

    @property
    def sigma(self) -> float:
        if self.p10_ms is None or self.p90_ms is None:
            return DEFAULT_SIGMA
        return sigma_from_percentiles(self.p10_ms, self.p90_ms)


@dataclass(frozen=True)
class MeasuredProfile:
    name: str
    points: tuple[MeasuredPoint, ...]  # sorted by memory
    cold_start_ms: float | None = None
    runtime: str | None = None
    # Speed on arm64 relative to x86_64 (the sizes above were measured on x86_64): 0.85 runs
    # every invocation 1/0.85 times as long on arm64. 1.0 when the profile does not say.
    arm64_speed: float = 1.0

    @cached_property
    def curve(self) -> ProfileCurve:
        return ProfileCurve.build(self.points)


Profile = CodeProfile | MeasuredProfile


@dataclass(frozen=True, eq=False)
class ProfileCurve:
    """A measured profile tabulated for every whole MB in Lambda's range."""

    model: CpuModel
    footprint_mb: float
    _p50: np.ndarray = field(repr=False)
    _sigma: np.ndarray = field(repr=False)
    _mem_used: np.ndarray = field(repr=False)

    @classmethod
    def build(cls, points: tuple[MeasuredPoint, ...]) -> ProfileCurve:
        if not points:
            raise ProfileError("a measured profile needs at least one memory size")
        sizes = np.array([p.memory_mb for p in points], dtype=float)
        p50 = np.minimum.accumulate(np.array([p.p50_ms for p in points], dtype=float))
        model = fit_cpu_model(list(zip(sizes.tolist(), p50.tolist(), strict=True)))
        grid = np.arange(MIN_MEMORY_MB, MAX_MEMORY_MB + 1, dtype=float)
        shape = np.array([model.duration_ms(m) for m in grid])
        log_grid, log_sizes = np.log(grid), np.log(sizes)
        # Correction factor log(measured / model), log-linear between sizes, flat beyond.
        residual = np.log(p50) - np.log([model.duration_ms(m) for m in sizes])
        curve = shape * np.exp(np.interp(log_grid, log_sizes, residual))
        for lo, hi, d_lo, d_hi in zip(sizes[:-1], sizes[1:], p50[:-1], p50[1:], strict=True):
            inside = (grid >= lo) & (grid <= hi)
            curve[inside] = np.clip(curve[inside], d_hi, d_lo)
        curve = np.minimum.accumulate(curve)
        sigma = np.interp(log_grid, log_sizes, [p.sigma for p in points])
        used = np.array([p.mem_used_mb for p in points], dtype=float)
        footprint = float(used.min())
        mem_used = np.interp(log_grid, log_sizes, used, left=footprint, right=used[-1])
        mem_used = np.minimum(mem_used, grid)
        return cls(model, footprint, curve, sigma, mem_used)

    def p50_ms(self, memory_mb: int) -> float:
        return float(self._p50[self._index(memory_mb)])

    def sigma(self, memory_mb: int) -> float:
        return float(self._sigma[self._index(memory_mb)])

    def cpu_ms(self, memory_mb: int) -> float:
        """The CPU time a run at this size uses (what Lambda Insights would report): the fitted
        model's CPU work, scaled by how far the measured curve lies from the model there (the
        profile holds durations only; its CPU and I/O parts come from formula 2's fit)."""
        modelled = self.model.duration_ms(memory_mb)
        return self.model.cpu_ms * self.p50_ms(memory_mb) / modelled if modelled > 0 else 0.0

    def mem_used_mb(self, memory_mb: int) -> float:
        return float(self._mem_used[self._index(memory_mb)])

    def out_of_memory(self, memory_mb: int) -> bool:
        return memory_mb < self.footprint_mb

    @staticmethod
    def _index(memory_mb: int) -> int:
        if not MIN_MEMORY_MB <= memory_mb <= MAX_MEMORY_MB:
            raise ValueError(f"memory must be within {MIN_MEMORY_MB}..{MAX_MEMORY_MB} MB")
        return int(memory_mb) - MIN_MEMORY_MB


def load_profile(path: str | Path) -> Profile:
    """Read either profile format; raise ProfileError with a readable message on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ProfileError(f"{path}: cannot read ({error})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ProfileError(f"{path}: not valid JSON ({error})") from None
    try:
        return parse_profile(data)
    except ProfileError as error:
        raise ProfileError(f"{path}: {error}") from None


def parse_profile(data: Any) -> Profile:
    if not isinstance(data, dict):
        raise ProfileError("a profile must be a JSON object")
    if "memory_mb" in data:
        return _parse_measured(data)
    if "cpu_ms" in data:
        return _parse_code(data)
    raise ProfileError(
        "not a profile: expected a measured profile (key 'memory_mb') "
        "or a code profile (key 'cpu_ms')"
    )


def _parse_code(data: dict[str, Any]) -> CodeProfile:
    unknown = set(data) - CODE_PROFILE_KEYS
    if unknown:
        raise ProfileError(f"unknown key(s) in code profile: {', '.join(sorted(unknown))}")
    try:
        traits = Traits(
            parallel_fraction=_number(data, "parallel_fraction", 0.0),
            max_threads=_integer(data, "max_threads", 1),
            io_ms=_number(data, "io_ms", 0.0),
            init_ms=_optional_number(data, "init_ms"),
            cpu_ms=_number(data, "cpu_ms"),
            peak_memory_mb=_optional_number(data, "peak_memory_mb"),
            arm64_speed=_number(data, "arm64_speed", 1.0),
        )
    except ValueError as error:
        raise ProfileError(str(error)) from None
    return CodeProfile(name=str(data.get("name", "unnamed")), traits=traits)


def _parse_measured(data: dict[str, Any]) -> MeasuredProfile:
    table = data["memory_mb"]
    if not isinstance(table, dict) or not table:
        raise ProfileError("'memory_mb' must be a non-empty object of memory size -> stats")
    points = []
    seen: dict[int, str] = {}
    for key, stats in table.items():
        try:
            memory = int(key)
        except (TypeError, ValueError):
            raise ProfileError(f"memory size {key!r} is not a whole number of MB") from None
        if not MIN_MEMORY_MB <= memory <= MAX_MEMORY_MB:
            raise ProfileError(f"memory size {memory} is outside {MIN_MEMORY_MB}..{MAX_MEMORY_MB}")
        if not isinstance(stats, dict):
            raise ProfileError(f"memory_mb.{key} must be an object")
        if memory in seen:
            raise ProfileError(f"memory size {memory} is given twice ({seen[memory]!r}, {key!r})")
        seen[memory] = key
        where = f"memory_mb.{key}"
        p50 = _number(stats, "p50", where=where)
        p10 = _optional_number(stats, "p10", where=where)
        p90 = _optional_number(stats, "p90", where=where)
        used = _number(stats, "mem_used_mb", where=where)
        if p50 <= 0 or used <= 0:
            raise ProfileError(f"{where}: p50 and mem_used_mb must be positive")
        if (p10 is None) != (p90 is None):
            raise ProfileError(f"{where}: give both p10 and p90, or neither")
        if p10 is not None and p90 is not None and not 0 < p10 <= p50 <= p90:
            raise ProfileError(f"{where}: need 0 < p10 <= p50 <= p90")
        if used > memory:
            raise ProfileError(f"{where}: mem_used_mb {used:g} exceeds the memory size {memory}")
        points.append(MeasuredPoint(memory, p50, used, p10, p90))
    cold = _optional_number(data, "cold_start_ms")
    if cold is not None and cold < 0:
        raise ProfileError("cold_start_ms must not be negative")
    points.sort(key=lambda p: p.memory_mb)
    runtime = data.get("runtime")
    speed = _number(data, "arm64_speed", 1.0)
    try:
        check_arm64_speed(speed)
    except ValueError as error:
        raise ProfileError(str(error)) from None
    return MeasuredProfile(
        name=str(data.get("name", "unnamed")),
        points=tuple(points),
        cold_start_ms=cold,
        runtime=str(runtime) if runtime is not None else None,
        arm64_speed=speed,
    )


def _number(data: dict[str, Any], key: str, default: float | None = None, where: str = "") -> float:
    prefix = f"{where}: " if where else ""
    if key not in data:
        if default is None:
            raise ProfileError(f"{prefix}missing '{key}'")
        return default
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProfileError(f"{prefix}'{key}' must be a number, got {value!r}")
    return float(value)


def _optional_number(data: dict[str, Any], key: str, where: str = "") -> float | None:
    if data.get(key) is None:
        return None
    return _number(data, key, where=where)


def _integer(data: dict[str, Any], key: str, default: int) -> int:
    value = _number(data, key, float(default))
    if value != int(value):
        raise ProfileError(f"'{key}' must be a whole number, got {data[key]!r}")
    return int(value)
