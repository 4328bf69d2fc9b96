"""SQL the control loop needs, per job."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select, type_coerce
from sqlalchemy.orm import Session

from service.models import (
    Allocation,
    AllocationState,
    Invocation,
    InvocationState,
    Job,
    Observation,
    PredictorState,
    Stage,
    Task,
)
from service.models.base import Money


class LoopRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: object) -> None:
        self.session.add(row)

    def flush(self) -> None:
        self.session.flush()

    def stages(self, job_id: uuid.UUID) -> list[Stage]:
        return list(
            self.session.scalars(
                select(Stage).where(Stage.job_id == job_id).order_by(Stage.position)
            )
        )

    def tasks(self, job_id: uuid.UUID) -> list[Task]:
        return list(
            self.session.scalars(select(Task).where(Task.job_id == job_id).order_by(Task.key))
        )

    def open_invocations(self, job_id: uuid.UUID) -> list[Invocation]:
        """Invocations whose result is not recorded yet (intents)."""
        return list(
            self.session.scalars(
                select(Invocation).where(
                    Invocation.job_id == job_id,
                    Invocation.state == InvocationState.INTENT.value,
                )
            )
        )

    def task_outcomes(self, task_id: uuid.UUID) -> list[str | None]:
        return list(
            self.session.scalars(select(Invocation.outcome).where(Invocation.task_id == task_id))
        )

    def spent_usd(self, job_id: uuid.UUID) -> Decimal:
        compute = type_coerce(func.coalesce(func.sum(Invocation.compute_cost_usd), 0), Money)
        requests = type_coerce(func.coalesce(func.sum(Invocation.request_cost_usd), 0), Money)
        row = self.session.execute(
            select(compute, requests).where(Invocation.job_id == job_id)
        ).one()
        return row[0] + row[1]

    def last_allocation(self, job_id: uuid.UUID, function_name: str, shape: str) -> int | None:
        """The memory most recently allocated to a shape (applied or about to be)."""
        return self.session.scalar(
            select(Allocation.to_mb)
            .where(
                Allocation.job_id == job_id,
                Allocation.function_name == function_name,
                Allocation.state.in_([AllocationState.INTENT.value, AllocationState.APPLIED.value]),
                Allocation.detail["shape"].as_string() == shape,
            )
            .order_by(Allocation.created_at.desc(), Allocation.id.desc())
            .limit(1)
        )

    def samples(self, job_id: uuid.UUID) -> list[tuple]:
        """Finished, billed runs: (shape, stage position, memory, duration, init, peak, epochs,
        outcome), oldest first."""
        rows = self.session.execute(
            select(
                Task.shape,
                Stage.position,
                Invocation.memory_mb,
                Invocation.duration_ms,
                Invocation.init_ms,
                Invocation.max_memory_used_mb,
                Task.epoch_from,
                Task.epoch_to,
                Invocation.outcome,
            )
            .join(Task, Task.id == Invocation.task_id)
            .join(Stage, Stage.id == Invocation.stage_id)
            .where(
                Invocation.job_id == job_id,
                Invocation.state == InvocationState.DONE.value,
                Invocation.duration_ms.is_not(None),
            )
            .order_by(Invocation.finished_at, Invocation.id)
        )
        return [tuple(row) for row in rows]

    def current_allocations(self, job_id: uuid.UUID) -> list[tuple[str, int, uuid.UUID | None]]:
        """(shape, memory, stage) of every change made, oldest first (vetoes excluded)."""
        shape = Allocation.detail["shape"].as_string()
        rows = self.session.execute(
            select(shape, Allocation.to_mb, Allocation.stage_id)
            .where(
                Allocation.job_id == job_id,
                Allocation.state != AllocationState.VETOED.value,
            )
            .order_by(Allocation.created_at, Allocation.id)
        )
        return [tuple(row) for row in rows]

    def oom_floors(self, job_id: uuid.UUID) -> dict[str, int]:
        """Per shape, the highest memory an out-of-memory retry raised it to."""
        shape = Allocation.detail["shape"].as_string()
        rows = self.session.execute(
            select(shape, func.max(Allocation.to_mb))
            .where(Allocation.job_id == job_id, Allocation.rule == "oom-floor")
            .group_by(shape)
        )
        return {name: int(floor) for name, floor in rows}

    def predictor_states(self, scopes: Iterable[str]) -> dict[tuple[str, str], PredictorState]:
        scopes = list(scopes)
        if not scopes:
            return {}
        rows = self.session.scalars(select(PredictorState).where(PredictorState.scope.in_(scopes)))
        return {(row.scope, row.name): row for row in rows}

    def last_observed(self, series: str) -> datetime | None:
        return self.session.scalar(
            select(func.max(Observation.observed_at)).where(Observation.series == series)
        )

    def observations(self, job_id: uuid.UUID) -> list[Observation]:
        return list(
            self.session.scalars(
                select(Observation)
                .where(Observation.job_id == job_id)
                .order_by(Observation.observed_at, Observation.id)
            )
        )

    # -- what the dispatcher acts on, after the tick's commit ------------------------------
    def pending_dispatch(self, owner: str) -> list[tuple[Invocation, Task, Job]]:
        return [
            (row[0], row[1], row[2])
            for row in self.session.execute(
                select(Invocation, Task, Job)
                .join(Task, Task.id == Invocation.task_id)
                .join(Job, Job.id == Invocation.job_id)
                .join(Stage, Stage.id == Invocation.stage_id)
                .where(
                    Job.lease_owner == owner,
                    Invocation.state == InvocationState.INTENT.value,
                )
                # a stable order (not ids, which are random): the same run dispatches the same
                # way, so a seeded simulation gives the same result every time
                .order_by(Job.created_at, Stage.position, Task.key, Invocation.attempt)
            )
        ]

    def pending_allocations(self, owner: str) -> list[Allocation]:
        return list(
            self.session.scalars(
                select(Allocation)
                .join(Job, Job.id == Allocation.job_id)
                .where(Job.lease_owner == owner, Allocation.state == AllocationState.INTENT.value)
                .order_by(Allocation.created_at, Allocation.id)
            )
        )

    def allocations_by_id(self, ids: Iterable[uuid.UUID]) -> list[Allocation]:
        ids = list(ids)
        if not ids:
            return []
        return list(self.session.scalars(select(Allocation).where(Allocation.id.in_(ids))))
