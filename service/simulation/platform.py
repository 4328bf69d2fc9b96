"""The emulator, with the built-in workloads' code replaced by the analytic workload model.

The control loop talks to this exactly as to any platform. Each invocation's work — CPU time at
one vCPU and peak memory, from ``workload_model.invocation_cost`` for the event's dataset,
parameters, epochs and shard — becomes a code profile that the emulator runs through its
performance model (CPU share, cold starts, noise, out-of-memory, throttling) on the virtual
clock; the response carries the model's loss and score instead of a trained model's.

Work of one size runs as one emulator function (``<name>~<size>``), so warm environments are
shared between invocations of equal work rather than across the whole function: a simulated job
sees somewhat more cold starts than it would on Lambda.

The workload model is pluggable (``service.simulation.work``): the analytic model by default, or
a measured profile (``profile_model``), whose per-invocation scaled profiles the emulator reads
from files in a private temporary directory that ``close`` removes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
from pathlib import Path
from statistics import fmean
from typing import Any

from service.platform.emulator.backend import EmulatorPlatform
from service.platform.interface import (
    FunctionMetrics,
    FunctionSpec,
    InvocationHandle,
    InvokeResult,
    Report,
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
        self._profile_dir: tempfile.TemporaryDirectory[str] | None = None
        self.clock = emulator.clock
        self._specs: dict[str, FunctionSpec] = {}
        self._variants: dict[str, set[int]] = {}
        self._sized: set[str] = set()
        # our handle's id -> (the emulator's handle, built-in workload, event)
        self._pending: dict[str, tuple[InvocationHandle, str, dict[str, Any]]] = {}

    # -- functions ----------------------------------------------------------------------------
    def ensure_function(self, spec: FunctionSpec) -> None:
        if spec.handler not in _BUILTIN_OF:
            raise ValueError(f"{spec.name}: the simulator models only the built-in workloads")
        self._specs[spec.name] = spec
        self._variants.setdefault(spec.name, set())

    def ensure_variant(self, name: str, memory_mb: int) -> str:
        self._variants[name].add(memory_mb)
        return f"mem-{memory_mb}"

    def set_memory(self, name: str, memory_mb: int) -> None:
        spec = self._specs[name]
        self._specs[name] = dataclasses.replace(spec, memory_mb=memory_mb)

    def memory_of(self, name: str) -> int:
        return self._specs[name].memory_mb

    def concurrency_limit(self) -> int:
        return self.emulator.concurrency_limit()

    # -- invocations --------------------------------------------------------------------------
    def start_invoke(
        self, name: str, payload: Any, *, memory_mb: int | None = None
    ) -> InvocationHandle:
        spec = self._specs[name]
        builtin = _BUILTIN_OF[spec.handler]
        work = self.workload.work(builtin, payload)
        sized = f"{name}~{work.key}"
        if sized not in self._sized:
            self.emulator.ensure_function(
                FunctionSpec(
                    name=sized,
                    memory_mb=spec.memory_mb,
                    timeout_s=spec.timeout_s,
                    architecture=spec.architecture,
                    traits=work.traits,
                    profile=self._profile_file(work),
                )
            )
            self._sized.add(sized)
        if memory_mb is not None:
            self.emulator.ensure_variant(sized, memory_mb)
        inner = self.emulator.start_invoke(sized, payload, memory_mb=memory_mb)
        self._pending[inner.invocation_id] = (inner, builtin, payload)
        return dataclasses.replace(inner, function=name)

    def poll(self, handle: InvocationHandle) -> InvokeResult | None:
        inner, builtin, payload = self._pending[handle.invocation_id]
        result = self.emulator.poll(inner)
        if result is None:
            return None
        del self._pending[handle.invocation_id]
        response = _response(builtin, payload, self.loss_salt, result) if result.ok else None
        return dataclasses.replace(result, function=handle.function, payload=response)

    def invoke(self, name: str, payload: Any, *, memory_mb: int | None = None) -> InvokeResult:
        handle = self.start_invoke(name, payload, memory_mb=memory_mb)
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

    def close(self) -> None:
        self.emulator.close()
        if self._profile_dir is not None:
            self._profile_dir.cleanup()
            self._profile_dir = None

    def _profile_file(self, work: Work) -> Path | None:
        """The emulator loads measured profiles from files: write this work's profile once."""
        if work.profile is None:
            return None
        if self._profile_dir is None:
            self._profile_dir = tempfile.TemporaryDirectory(prefix="cescale-sim-")
        path = Path(self._profile_dir.name) / f"{len(self._sized)}.json"
        path.write_text(json.dumps(work.profile), encoding="utf-8")
        return path


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
