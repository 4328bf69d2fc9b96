"""Which platform function runs a job's tasks, and the event each invocation sends it."""

from __future__ import annotations

from typing import Any

from service.models import Invocation, Job, Stage, StageKind, Task
from service.platform.interface import FunctionSpec
from service.spec import JobSpec
from service.workloads import registry
from service.workloads.contract import CONTRACT


class UnrunnableWorkload(Exception):
    """The job names a function this backend cannot run."""


def function_name(spec: JobSpec) -> str:
    """Built-ins get one function per workload and kind; a user's function is used as named."""
    function = spec.workload.function
    if function.startswith("builtin:"):
        return f"cescale-{function.removeprefix('builtin:')}-{spec.kind}"
    return function


def function_spec(spec: JobSpec, backend: str) -> FunctionSpec | None:
    """What to register with the platform; None for a user's function that already exists."""
    function = spec.workload.function
    if not function.startswith("builtin:"):
        if backend == "emulator":
            raise UnrunnableWorkload(
                f"{function!r} is a Lambda function; the emulator runs only the built-in "
                "workloads (set CESCALE_BACKEND=aws to run your own)"
            )
        return None
    return FunctionSpec(
        name=function_name(spec),
        handler=registry.resolve(function, spec.kind),
        timeout_s=float(spec.workload.timeout_s),
        architecture=spec.workload.architecture,
    )


def event(job: Job, stage: Stage, task: Task, invocation: Invocation, store: str) -> dict[str, Any]:
    """The handler event of one attempt (contract cescale.handler/1). Rebuilt from rows alone,
    so a restarted controller re-sends exactly what the first one would have."""
    payload: dict[str, Any] = {
        "contract": CONTRACT,
        "job_id": str(job.id),
        "task_id": str(task.id),
        "attempt": invocation.attempt,
        "kind": job.kind,
        "params": task.params,
        "epoch_from": task.epoch_from or 0,
        "epoch_to": task.epoch_to or 0,
        "checkpoint_in": task.checkpoint_in,
        "checkpoint_out": f"{store}/checkpoints",
        "dataset": job.spec["workload"].get("dataset", "builtin:digits"),
        "store": store,
    }
    if job.kind == "training":
        profiling = stage.kind == StageKind.PROFILING.value  # power tuning runs worker 0
        payload |= {
            "worker": 0 if profiling else int(task.key.rsplit("-", 1)[1]),
            "workers": job.spec["training"]["workers"],
            "round": 0 if profiling else int(stage.name.rsplit("-", 1)[1]),
        }
    return payload
