"""Write what the control loop writes (stages, tasks, billed invocations, memory changes,
predictor states) at chosen times, so the dashboard queries can be checked figure by figure."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from service.models import Allocation, Invocation, Job, PredictorState, Stage, Task

GB_S = Decimal("0.0000166667")
REQUEST = Decimal("0.0000002")


def compute_cost(memory_mb: int, billed_ms: int) -> Decimal:
    return (Decimal(memory_mb) / 1024 * Decimal(billed_ms) / 1000 * GB_S).quantize(Decimal("1e-12"))


@dataclass
class Seeded:
    job_id: uuid.UUID
    invocations: list[tuple[int, int, Decimal]] = field(default_factory=list)  # mb, ms, $

    @property
    def compute(self) -> Decimal:
        return sum((c for _, _, c in self.invocations), Decimal(0))

    @property
    def total(self) -> Decimal:
        return self.compute + REQUEST * len(self.invocations)


def seed_job(
    session: Session,
    tenant_id: uuid.UUID,
    t0: datetime,
    rounds: list[tuple[int, list[int]]],
    *,
    policy: str = "ce-scaling",
    kind: str = "training",
    function: str = "cescale-mlp",
    status: str = "succeeded",
    deadline_missed: bool | None = False,
    losses: list[float] | None = None,
    failed_last: bool = False,
) -> Seeded:
    """A job whose stage i runs at ``rounds[i][0]`` MB, one worker per billed duration in
    ``rounds[i][1]``, each stage 60 s after the previous one; every invocation is billed and
    finishes ``billed`` ms after it started. The job ends 10 s after its last stage."""
    job = Job(
        tenant_id=tenant_id,
        name=f"{policy}-{kind}",
        kind=kind,
        status=status,
        policy=policy,
        spec={"workload": {"function": "builtin:mlp", "architecture": "arm64"}, "kind": kind},
        deadline_s=600.0,
        deadline_missed=deadline_missed,
        created_at=t0 - timedelta(seconds=5),
        started_at=t0,
        finished_at=t0 + timedelta(seconds=60 * len(rounds) + 10) if status != "running" else None,
    )
    session.add(job)
    session.flush()
    seeded = Seeded(job.id)
    for position, (memory, durations) in enumerate(rounds):
        start = t0 + timedelta(seconds=60 * position)
        stage = Stage(
            job_id=job.id,
            position=position,
            name=f"round-{position}",
            kind="round" if kind == "training" else "rung",
            status="succeeded",
            planned_memory_mb=memory,
            started_at=start,
            finished_at=start + timedelta(milliseconds=max(durations) + 500),
        )
        session.add(stage)
        session.flush()
        for worker, billed in enumerate(durations):
            last = failed_last and position == len(rounds) - 1 and worker == len(durations) - 1
            loss = losses[position] if losses else None
            task = Task(
                job_id=job.id,
                stage_id=stage.id,
                key=f"worker-{worker:03d}",
                shape="default",
                status="failed" if last else "succeeded",
                function_name=function,
                memory_mb=memory,
                epoch_from=position,
                epoch_to=position + 1,
                result=None if last or loss is None else {"loss": loss + worker * 0.01},
            )
            session.add(task)
            session.flush()
            cost = compute_cost(memory, billed)
            session.add(
                Invocation(
                    job_id=job.id,
                    stage_id=stage.id,
                    task_id=task.id,
                    attempt=1,
                    function_name=function,
                    memory_mb=memory,
                    architecture="arm64",
                    state="done",
                    outcome="unhandled" if last else "ok",
                    billed_ms=billed,
                    duration_ms=billed - 0.5,
                    init_ms=120.0 if position == 0 else None,
                    cold_start=position == 0,
                    max_memory_used_mb=memory // 3,
                    cpu_ms=None if last else billed / 4,
                    compute_cost_usd=cost,
                    request_cost_usd=REQUEST,
                    created_at=start + timedelta(microseconds=worker),
                    started_at=start + timedelta(milliseconds=10 * worker),
                    finished_at=start + timedelta(milliseconds=10 * worker + billed),
                )
            )
            seeded.invocations.append((memory, billed, cost))
        if position > 0 and rounds[position - 1][0] != memory:
            session.add(
                Allocation(
                    job_id=job.id,
                    stage_id=stage.id,
                    function_name=function,
                    from_mb=rounds[position - 1][0],
                    to_mb=memory,
                    state="applied",
                    rule="deadline-split",
                    reason=f"round-{position} needs {memory} MB to meet its deadline share",
                    created_at=start - timedelta(seconds=1),
                    applied_at=start - timedelta(milliseconds=500),
                )
            )
    session.flush()
    return seeded


def add_state(session: Session, job_id: uuid.UUID, name: str, kind: str, state: dict) -> None:
    session.add(
        PredictorState(
            scope=f"job:{job_id}", job_id=job_id, name=name, kind=kind, state=state, observations=3
        )
    )
    session.flush()
