"""Hand-made situations for policy tests: specs, stages and observations."""

from __future__ import annotations

from service.models.enums import StageKind
from service.policies.base import Observations, PolicyContext, Sample
from service.spec import JobSpec
from service.workflows.plan import StageOutline, StagePlan, TaskPlan

MB_PER_VCPU = 1769


def hpo_spec(deadline_s: float, **policy) -> JobSpec:
    return JobSpec.model_validate(
        {
            "name": "t",
            "kind": "hpo",
            "workload": {"function": "builtin:mlp"},
            "hpo": {"search_space": {"lr": {"uniform": [0, 1]}}, "trials": 9, "max_epochs": 9},
            "qos": {"deadline_s": deadline_s},
            "policy": {"name": "ce-scaling", **policy},
        }
    )


def training_spec(
    deadline_s: float, workers: int = 4, max_epochs: int = 20, epochs_per_round: int = 1
) -> JobSpec:
    return JobSpec.model_validate(
        {
            "name": "t",
            "kind": "training",
            "workload": {"function": "builtin:mlp"},
            "training": {
                "workers": workers,
                "max_epochs": max_epochs,
                "epochs_per_round": epochs_per_round,
            },
            "qos": {"deadline_s": deadline_s},
            "policy": {"name": "ce-scaling"},
        }
    )


def stage(position: int, shapes: dict[str, int], epochs: int = 1, kind=StageKind.RUNG):
    tasks = tuple(
        TaskPlan(f"{shape}-{i}", {"lr": 0.1}, 0, epochs, shape=shape)
        for shape, count in shapes.items()
        for i in range(count)
    )
    return StagePlan(position, f"s{position}", kind, tasks)


def cpu_bound(cpu_ms_per_epoch: float, io_ms: float = 0.0):
    """Single-threaded CPU-bound duration at memory m (Lambda: 1 vCPU at 1,769 MB)."""

    def duration(memory_mb: int) -> float:
        return io_ms + cpu_ms_per_epoch / min(memory_mb / MB_PER_VCPU, 1.0)

    return duration


def samples(shape: str, duration, sizes=(256, 512, 1024), peak_mb=150.0, epochs=1, stage=0):
    return tuple(
        Sample(shape, stage, m, duration(m) * epochs, 400.0, peak_mb, epochs, True) for m in sizes
    )


def context(spec, plan, outline=(), **observed) -> PolicyContext:
    return PolicyContext(
        spec=spec,
        stage=plan,
        outline=tuple(StageOutline(*o) for o in outline),
        observations=Observations(**({"elapsed_s": 0.0, "spent_usd": 0.0} | observed)),
        now=0.0,
        stage_overhead_s=0.0,
    )
