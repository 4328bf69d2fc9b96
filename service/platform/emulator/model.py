"""The emulator's performance model: how long a run takes at a memory size. Pure functions.

Formulas (memory m in MB):

1. CPU share. Lambda allocates CPU in proportion to memory: 1,769 MB is one vCPU, 10,240 MB
   gets 6 vCPUs, and below 1,769 MB a function gets a fraction of one vCPU (docs/platform.md; AWS
   Lambda developer guide, "Configuring Lambda function memory")::

       v(m) = min(m / 1769, 6)

   (At 10,240 MB this gives 5.79: AWS's "6 vCPUs" is the number of cores the function sees,
   the share of CPU time stays proportional to memory; the cap of 6 never binds in range.)

2. Duration of one run, Amdahl's law over the CPU share. `cpu_ms` is the run's CPU time on one
   full reference vCPU (the emulator measures it on this machine, which it takes as one Lambda
   vCPU), `p` the fraction of that CPU work that runs in parallel, `T` the threads the code can
   use, and `io_ms` the part that does not scale with CPU (network, storage, sleeps; measured as
   wall time minus CPU time minus time spent waiting for a CPU of this machine)::

       duration(m) = io_ms + cpu_ms * ((1 - p) / min(v, 1) + p / min(v, T))

   So below 1,769 MB every function slows down as 1/m; above it a single-threaded function
   (p = 0 or T = 1) stays flat and only the parallel part keeps speeding up, up to T vCPUs.
   Source: Amdahl (1967); the 1/m-then-flat shape is what AWS Lambda Power Tuning measures for
   single-threaded functions (github.com/alexcasalboni/aws-lambda-power-tuning).

3. Run-to-run noise: a multiplicative log-normal factor with median 1::

       observed = duration * exp(sigma * Z),  Z ~ N(0, 1)

   `sigma` defaults to DEFAULT_SIGMA = 0.05 (about ±6 % between p10 and p90), our assumption
   for a warm environment; a measured profile supplies its own from its percentiles:
   sigma = ln(p90 / p10) / (2 * 1.2816), since p10 and p90 of a log-normal lie 1.2816 standard
   deviations either side of the median.

4. Cold start: a new execution environment first runs init (runtime start plus the handler
   module's imports), reported as `Init Duration` and billed (docs/platform.md). Without a measured
   value the emulator uses RUNTIME_INIT_MS plus the measured import time of the handler.

5. Out of memory when the peak footprint exceeds memory; a run longer than its timeout is cut
   at the timeout.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from service.domain import lambda_limits

MB_PER_VCPU = float(lambda_limits.MB_PER_VCPU)
MAX_VCPUS = lambda_limits.MAX_VCPUS
DEFAULT_SIGMA = 0.05  # our assumption, see the module docstring
Z_P90 = 1.2815515655446004  # standard normal quantile at 0.9
RUNTIME_INIT_MS = 120.0  # illustrative: a python3.x zip function's runtime init without imports


def vcpus(memory_mb: float) -> float:
    """vCPU share at this memory size: min(m / 1769, 6)."""
    if memory_mb <= 0:
        raise ValueError("memory must be positive")
    return min(memory_mb / MB_PER_VCPU, MAX_VCPUS)


def cpu_factor(memory_mb: float, parallel_fraction: float, max_threads: int) -> float:
    """How much longer CPU work takes than on one full vCPU: (1-p)/min(v,1) + p/min(v,T)."""
    v = vcpus(memory_mb)
    p = parallel_fraction
    return (1.0 - p) / min(v, 1.0) + p / min(v, float(max_threads))


def duration_ms(
    cpu_ms: float,
    io_ms: float,
    memory_mb: float,
    parallel_fraction: float = 0.0,
    max_threads: int = 1,
) -> float:
    """Modelled duration without noise: io_ms + cpu_ms * cpu_factor(m, p, T)."""
    return io_ms + cpu_ms * cpu_factor(memory_mb, parallel_fraction, max_threads)


def sigma_from_percentiles(p10: float, p90: float) -> float:
    """Log-normal sigma whose 10th and 90th percentiles are p10 and p90."""
    if p10 <= 0 or p90 < p10:
        raise ValueError("need 0 < p10 <= p90")
    return math.log(p90 / p10) / (2.0 * Z_P90)


def noise_factor(z: float, sigma: float) -> float:
    """exp(sigma * z): the multiplicative noise for a standard-normal draw z."""
    return math.exp(sigma * z)


@dataclass(frozen=True)
class CpuModel:
    """Formula 2 with fitted parameters; used to extrapolate measured profiles."""

    io_ms: float
    cpu_ms: float
    parallel_fraction: float
    max_threads: int

    def duration_ms(self, memory_mb: float) -> float:
        return duration_ms(
            self.cpu_ms, self.io_ms, memory_mb, self.parallel_fraction, self.max_threads
        )


_P_GRID = tuple(i / 20 for i in range(21))
_T_GRID = (2, 3, 4, 5, 6)


def fit_cpu_model(points: Sequence[tuple[float, float]]) -> CpuModel:
    """Fit formula 2 to measured (memory MB, duration ms) points by relative least squares.

    For each (p, T) on a grid the model is linear in (io_ms, cpu_ms), solved in closed form
    with both kept non-negative; the (p, T) with the smallest squared relative error wins, ties
    going to the simplest shape (lowest p, then fewest threads), so that two points below
    1,769 MB, which cannot tell p apart, extrapolate as single-threaded (flat above 1 vCPU).
    One point: pure single-threaded CPU work.
    """
    pts = [(float(m), float(d)) for m, d in points if d > 0]
    if not pts:
        raise ValueError("need at least one measured point")
    if len(pts) == 1:
        m, d = pts[0]
        return CpuModel(0.0, d / cpu_factor(m, 0.0, 1), 0.0, 1)
    best: tuple[float, CpuModel] | None = None
    for p in _P_GRID:
        for threads in (1,) if p == 0.0 else _T_GRID:
            io, cpu = _solve(pts, p, threads)
            error = sum(((io + cpu * cpu_factor(m, p, threads)) / d - 1.0) ** 2 for m, d in pts)
            if best is None or error < best[0] - 1e-12:
                best = (error, CpuModel(io, cpu, p, threads))
    assert best is not None
    return best[1]


def _solve(pts: list[tuple[float, float]], p: float, threads: int) -> tuple[float, float]:
    """Non-negative (io, cpu) minimising sum((io/d + cpu*f/d - 1)^2)."""
    a = [1.0 / d for _, d in pts]
    b = [cpu_factor(m, p, threads) / d for m, d in pts]
    saa = sum(x * x for x in a)
    sbb = sum(x * x for x in b)
    sab = sum(x * y for x, y in zip(a, b, strict=True))
    sa, sb = sum(a), sum(b)
    det = saa * sbb - sab * sab
    if det > 1e-18 * saa * sbb:
        io = (sa * sbb - sb * sab) / det
        cpu = (sb * saa - sa * sab) / det
        if io >= 0 and cpu >= 0:
            return io, cpu
    # Constrained optimum lies on an edge: all CPU, or all I/O; keep the better one.
    cpu_only = (0.0, sb / sbb)
    io_only = (sa / saa, 0.0)

    def err(sol: tuple[float, float]) -> float:
        return sum((sol[0] * x + sol[1] * y - 1.0) ** 2 for x, y in zip(a, b, strict=True))

    return min((cpu_only, io_only), key=err)
