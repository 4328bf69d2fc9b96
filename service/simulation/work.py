"""What a simulated invocation asks of the emulator, and the models that answer it.

The simulator replaces a built-in workload's code by a *workload model*: for each invocation
(its dataset, parameters, epochs and shard) the model says how the emulator should behave — a
code profile's ``Traits`` (the analytic model of ``workload_model``) or a measured Lambda
profile scaled to the invocation (``profile_model``) — and, for the oracle, the noise-free truth
at any memory size. ``AnalyticWorkload`` is the default and reproduces exactly what the
simulator did before workload models were pluggable.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol

from service.platform.emulator.model import DEFAULT_SIGMA, duration_ms
from service.platform.interface import Traits, check_arm64_speed
from service.simulation.workload_model import Cost, invocation_cost


@dataclass(frozen=True)
class Work:
    """One invocation's behaviour. Invocations with equal ``key`` behave identically and share
    an emulator function (and so its warm environments). Exactly one of ``traits`` (a code
    profile's fixed work) and ``profile`` (a measured profile document, docs/platform.md) is set."""

    key: str
    traits: Traits | None = None
    profile: dict[str, Any] | None = None


@dataclass(frozen=True)
class Truth:
    """Noise-free behaviour of one invocation at one memory size."""

    duration_ms: float
    init_ms: float  # what a cold start adds: init, and any first-run work in a new environment
    peak_mb: float


class WorkloadModel(Protocol):
    """Stands in for a built-in workload's code in simulation."""

    @property
    def sigma(self) -> float:
        """The run-to-run noise (log-normal sigma) the emulator applies to this workload."""
        ...

    @property
    def arm64_speed(self) -> float:
        """How fast it runs on arm64 relative to x86_64 (``truth`` is x86_64's)."""
        ...

    def work(self, function: str, event: dict[str, Any]) -> Work:
        """How the emulator should run the invocation ``event`` of built-in ``function``."""
        ...

    def truth(
        self,
        function: str,
        dataset: str,
        params: dict[str, Any],
        epochs: int,
        shard: int,
        memory_mb: int,
    ) -> Truth:
        """The invocation's median duration, cold-start init and OOM threshold at memory_mb."""
        ...

    def peak_mb(self, function: str, dataset: str, params: dict[str, Any], shard: int) -> float:
        """The most memory an invocation of this shape is seen to use (Max Memory Used): what
        an engineer sizing a static allocation goes by."""
        ...


class AnalyticWorkload:
    """The calibrated analytic model of the built-ins (``workload_model``): single-threaded CPU
    work and a fixed footprint, through the emulator's performance model."""

    sigma = DEFAULT_SIGMA

    def __init__(self, cpu_scale: float = 1.0, arm64_speed: float = 1.0) -> None:
        # CPU time relative to the reference machine the model is calibrated on: 2.0 models a
        # host on which the same work takes twice the CPU (benchmarks/sim_vs_live.py measures it)
        self.cpu_scale = cpu_scale
        # Speed on arm64 relative to x86_64. The model is calibrated on x86_64 only: 1.0 (as
        # fast) is a prior, not a measurement; a measured profile says its own.
        self.arm64_speed = check_arm64_speed(arm64_speed)

    def _cost(
        self, function: str, dataset: str, params: dict[str, Any], epochs: int, shard: int
    ) -> Cost:
        cost = invocation_cost(function, dataset, params, epochs, shard)
        if self.cpu_scale == 1.0:
            return cost
        return dataclasses.replace(
            cost, cpu_ms=cost.cpu_ms * self.cpu_scale, cold_cpu_ms=cost.cold_cpu_ms * self.cpu_scale
        )

    def work(self, function: str, event: dict[str, Any]) -> Work:
        epochs = event["epoch_to"] - event["epoch_from"]
        cost = self._cost(
            function, event["dataset"], event["params"], epochs, event.get("workers", 1)
        )
        return Work(
            key=f"{cost.cpu_ms:.3f}~{cost.peak_memory_mb:.1f}~{cost.cold_cpu_ms:.1f}",
            traits=Traits(
                cpu_ms=cost.cpu_ms,
                peak_memory_mb=cost.peak_memory_mb,
                init_ms=cost.init_ms,
                io_ms=0.0,
                cold_cpu_ms=cost.cold_cpu_ms,
                arm64_speed=self.arm64_speed,
            ),
        )

    def truth(
        self,
        function: str,
        dataset: str,
        params: dict[str, Any],
        epochs: int,
        shard: int,
        memory_mb: int,
    ) -> Truth:
        cost = self._cost(function, dataset, params, epochs, shard)
        # A cold start's extra: init, and the first run's lazy loading at this size's CPU share
        # (both billed, both on the critical path).
        cold_ms = cost.init_ms + duration_ms(cost.cold_cpu_ms, 0.0, memory_mb)
        return Truth(duration_ms(cost.cpu_ms, 0.0, memory_mb), cold_ms, cost.peak_memory_mb)

    def peak_mb(self, function: str, dataset: str, params: dict[str, Any], shard: int) -> float:
        return self._cost(function, dataset, params, 1, shard).peak_memory_mb
