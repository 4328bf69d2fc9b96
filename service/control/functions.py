"""Which platform function runs a job's tasks, and the event each invocation sends it."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from service.models import Invocation, Job, Stage, Task
from service.platform.interface import FunctionSpec
from service.spec import JobSpec
from service.workloads import registry
from service.workloads.contract import CONTRACT


class UnrunnableWorkload(Exception):
    """The job names a function this backend cannot run."""


COPY_PREFIX = "cescale-byo-"
_MAX_NAME = 64  # Lambda's limit on a function name


def builtin_function_name(workload: str, kind: str) -> str:
    """The function `cescale deploy` creates for built-in `workload` ("builtin:mlp") and `kind`."""
    return f"cescale-{workload.removeprefix('builtin:')}-{kind}"


def copy_name(function: str) -> str:
    """The service's own copy of a user's function (name, ``name:qualifier`` or ARN).

    The service publishes memory variants on the copy, never on the user's function, so the
    user's own callers of ``$LATEST`` never see a resized function (see
    service/platform/README.md). Too long a name is cut and made unique with a hash."""
    bare = function.split(":function:")[-1]
    base = re.sub(r"[^A-Za-z0-9_-]", "-", bare.replace("$", "")).strip("-")
    name = COPY_PREFIX + base
    if len(name) > _MAX_NAME:
        digest = hashlib.sha256(function.encode()).hexdigest()[:8]
        name = f"{name[: _MAX_NAME - 9]}-{digest}"
    return name


def function_name(spec: JobSpec) -> str:
    """The function the service invokes: one per built-in workload and kind; for a user's
    function, the service's copy of it (`copy_name`)."""
    function = spec.workload.function
    if function.startswith("builtin:"):
        return builtin_function_name(function, spec.kind)
    return copy_name(function)


def function_spec(spec: JobSpec, backend: str) -> FunctionSpec:
    """What to register with the platform: a built-in (created by `cescale deploy`), or the
    service's copy of a user's function (created from it on first use, kept in step)."""
    function = spec.workload.function
    if not function.startswith("builtin:"):
        if backend == "emulator":
            raise UnrunnableWorkload(
                f"{function!r} is a Lambda function; the emulator runs only the built-in "
                "workloads (set CESCALE_BACKEND=aws to run your own)"
            )
        return FunctionSpec(
            name=copy_name(function),
            timeout_s=float(spec.workload.timeout_s),
            copy_of=function,
        )
    return FunctionSpec(
        name=function_name(spec),
        handler=registry.resolve(function, spec.kind),
        timeout_s=float(spec.workload.timeout_s),
        architecture=spec.workload.base_architecture,
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
        # power-tuning's profiling runs (no worker, no round of their own) run worker 0 of round 0
        payload |= {
            "worker": task.worker if task.worker is not None else 0,
            "workers": job.spec["training"]["workers"],
            "round": stage.round if stage.round is not None else 0,
        }
    return payload
