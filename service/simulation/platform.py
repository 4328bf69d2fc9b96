"""The emulator, with the built-in workloads' code replaced by the analytic workload model.

The control loop talks to this exactly as to any platform. Each invocation's work — CPU time at
one vCPU and peak memory, from ``workload_model.invocation_cost`` for the event's dataset,
parameters, epochs and shard — becomes a code profile that the emulator runs through its
performance model (CPU share, cold starts, noise, out-of-memory, throttling) on the virtual
clock; the response carries the model's loss and score instead of a trained model's.

Every invocation runs on the job's one emulator function and its memory variants, exactly as
the live product's do, with the invocation's own work handed to the emulator for that
invocation alone: warm environments are shared between invocations of different work (a rung
of 3 epochs reuses the environments rung 1 left warm), as they are on Lambda.

The workload model is pluggable (``service.simulation.work``): the analytic model by default, or
a measured profile (``profile_model``), each scaled profile parsed once and reused.
"""

from __future__ import annotations

import dataclasses
import json
import math
from statistics import fmean
from typing import Any

from service.platform.emulator.backend import EmulatorPlatform
from service.platform.emulator.profiles import MeasuredProfile, parse_profile
from service.platform.interface import (
    Architecture,
    FunctionMetrics,
    FunctionSpec,
    InvocationHandle,
    InvokeResult,
    Report,
    Traits,
)
from service.simulation.work import AnalyticWorkload, Work, WorkloadModel
from service.simulation.workload_model import loss_after
from service.spec import JobSpec
from service.workloads.registry import BUILTIN_HANDLERS, TRAINING_HANDLERS, resolve

_BUILTIN_OF = {
    path: name for table in (BUILTIN_HANDLERS, TRAINING_HANDLERS) for name, path in table.items()
}


class SimulatedPlatform:
    def __init__(
        self,
        emulator: EmulatorPlatform,
        workload: WorkloadModel | None = None,
        *,
        loss_salt: str | None = None,
    ) -> None:
        self.emulator = emulator
        self.workload: WorkloadModel = workload or AnalyticWorkload()
        # What the model's loss noise is keyed by, with the parameters, epochs and worker: by
        # default the job id (every job draws afresh); a fixed salt makes the same trials and
        # rounds learn identically in every job that uses it (policies compared at one seed).
        self.loss_salt = loss_salt
        self.clock = emulator.clock
        self._builtin: dict[str, str] = {}  # function name -> the built-in it runs
        self._behaviours: dict[str, Traits | MeasuredProfile] = {}  # by Work.key
        # our handle's id -> (the emulator's handle, built-in workload, event)
        self._pending: dict[str, tuple[InvocationHandle, str, dict[str, Any]]] = {}

    # -- functions ----------------------------------------------------------------------------
    def ensure_function(self, spec: FunctionSpec) -> None:
        if spec.handler not in _BUILTIN_OF:
            raise ValueError(f"{spec.name}: the simulator models only the built-in workloads")
        self._builtin[spec.name] = _BUILTIN_OF[spec.handler]
        # No code runs: every invocation brings its work (start_invoke); these traits are a
        # placeholder the emulator never uses.
        self.emulator.ensure_function(
            dataclasses.replace(spec, handler=None, profile=None, traits=Traits(cpu_ms=0.0))
        )

    def ensure_variant(
        self, name: str, memory_mb: int, architecture: Architecture | None = None
    ) -> str:
        return self.emulator.ensure_variant(name, memory_mb, architecture)

    def set_memory(self, name: str, memory_mb: int) -> None:
        self.emulator.set_memory(name, memory_mb)

    def memory_of(self, name: str) -> int:
        return self.emulator.memory_of(name)

    def concurrency_limit(self) -> int:
        return self.emulator.concurrency_limit()

    # -- invocations --------------------------------------------------------------------------
    def start_invoke(
        self,
        name: str,
        payload: Any,
        *,
        memory_mb: int | None = None,
        architecture: Architecture | None = None,
    ) -> InvocationHandle:
        builtin = self._builtin[name]
        work = self.workload.work(builtin, payload)
        inner = self.emulator.start_invoke(
            name,
            payload,
            memory_mb=memory_mb,
            behaviour=self._behaviour(work),
            architecture=architecture,
        )
        self._pending[inner.invocation_id] = (inner, builtin, payload)
        return inner

    def poll(self, handle: InvocationHandle) -> InvokeResult | None:
        inner, builtin, payload = self._pending[handle.invocation_id]
        result = self.emulator.poll(inner)
        if result is None:
            return None
        del self._pending[handle.invocation_id]
        response = _response(builtin, payload, self.loss_salt, result) if result.ok else None
        return dataclasses.replace(result, payload=response)

    def invoke(
        self,
        name: str,
        payload: Any,
        *,
        memory_mb: int | None = None,
        architecture: Architecture | None = None,
    ) -> InvokeResult:
        handle = self.start_invoke(name, payload, memory_mb=memory_mb, architecture=architecture)
        self.clock.sleep(max(0.0, self.completion_time(handle) - self.clock.now()))
        result = self.poll(handle)
        assert result is not None
        return result

    def completion_time(self, handle: InvocationHandle) -> float:
        return self.emulator.completion_time(self._pending[handle.invocation_id][0])

    # -- observation --------------------------------------------------------------------------
    def metrics(
        self,
        name: str,
        start: float,
        end: float,
        *,
        period_s: int = 60,
        memory_mb: int | None = None,
    ) -> FunctionMetrics:
        return FunctionMetrics(function=name, period_s=period_s)

    def find_reports(
        self, name: str, start: float, end: float, *, request_ids: frozenset[str] | None = None
    ) -> list[Report]:
        return []

    def find_cpu_times(
        self, name: str, start: float, end: float, request_ids: frozenset[str]
    ) -> dict[str, float]:
        return {}  # every result carries its CPU time already

    def close(self) -> None:
        self.emulator.close()

    def _behaviour(self, work: Work) -> Traits | MeasuredProfile:
        """The emulator's form of this work, built once per key (a measured profile's curve is
        tabulated over every MB size, too slow to redo per invocation)."""
        behaviour = self._behaviours.get(work.key)
        if behaviour is None:
            if work.traits is not None:
                behaviour = work.traits
            else:
                parsed = parse_profile(work.profile)
                assert isinstance(parsed, MeasuredProfile)
                behaviour = parsed
            self._behaviours[work.key] = behaviour
        return behaviour


def rounds_to_target(spec: JobSpec, loss_salt: str) -> int | None:
    """How many rounds a training spec runs here: the simulated loss is a function of the
    parameters, epochs, worker and salt, so the round whose mean worker loss first reaches the
    target is known in advance (the oracle's knowledge). None for an HPO spec."""
    training = spec.training
    if training is None:
        return None
    builtin = _BUILTIN_OF[resolve(spec.workload.function, spec.kind)]
    rounds = math.ceil(training.max_epochs / training.epochs_per_round)
    if training.target_loss is None:
        return rounds
    for r in range(rounds):
        epoch_to = min(training.max_epochs, (r + 1) * training.epochs_per_round)
        losses = [
            loss_after(builtin, dict(training.params), epoch_to, salt=f"{loss_salt}|{w}")[0]
            for w in range(training.workers)
        ]
        if fmean(losses) <= training.target_loss:
            return r + 1
    return rounds


def noise_key(event: dict[str, Any]) -> str:
    """What an invocation's noise is keyed by (the emulator's ``noise_key``): the task — its
    parameters, epochs and worker — and the attempt, not the job, the size or the order, so a
    task draws the same noise under every policy at one seed (common random numbers)."""
    params = json.dumps(event.get("params"), sort_keys=True, default=str)
    return (
        f"{params}|{event.get('epoch_from')}|{event.get('epoch_to')}|{event.get('worker', '')}"
        f"|{event.get('attempt')}"
    )


def _response(
    builtin: str, event: dict[str, Any], loss_salt: str | None, result: InvokeResult
) -> dict[str, Any]:
    """What the built-in handler would answer, as the contract says it (the loop checks it):
    its peak memory is the run's Max Memory Used, as a real handler measures its own."""
    salt = f"{loss_salt if loss_salt is not None else event['job_id']}|{event.get('worker', '')}"
    loss, score = loss_after(builtin, event["params"], event["epoch_to"], salt=salt)
    return {
        "contract": event["contract"],
        "metrics": {"loss": loss, "score": score},
        "epochs_done": event["epoch_to"],
        "checkpoint": f"{event['checkpoint_out']}/{event['job_id']}/{event['task_id']}"
        f"/attempt-{event['attempt']}.npz",
        "peak_memory_mb": float(result.report.max_memory_used_mb) if result.report else 0.0,
        "replayed": False,
    }
