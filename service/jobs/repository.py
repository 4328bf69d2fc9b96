"""SQL for jobs and what hangs off them. Every query is scoped to a tenant."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Select, and_, case, func, or_, select, type_coerce
from sqlalchemy.orm import Session

from service.models import Allocation, BillState, Invocation, Job, Observation, Stage, Task
from service.models.base import Money


@dataclass(frozen=True)
class CostRow:
    """Ledger totals of a job, or of one stage of it (stage_id None for the job)."""

    stage_id: uuid.UUID | None
    compute_usd: Decimal
    requests_usd: Decimal
    mb_ms: int  # sum of memory_mb * billed_ms, exact; GB-s = mb_ms / 1024 / 1000
    invocations: int
    unreconciled: int = 0  # billed their request, duration charge not known (no REPORT yet)


class JobRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, job: Job) -> Job:
        self.session.add(job)
        self.session.flush()
        return job

    def get(
        self, tenant_id: uuid.UUID, job_id: uuid.UUID, *, for_update: bool = False
    ) -> Job | None:
        query = select(Job).where(Job.id == job_id, Job.tenant_id == tenant_id)
        if for_update:
            query = query.with_for_update()
        return self.session.scalar(query)

    def page(
        self,
        tenant_id: uuid.UUID,
        *,
        statuses: list[str],
        kinds: list[str],
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Job]:
        """Newest first; ``after`` is the (created_at, id) of the last job of the previous page."""
        query: Select[tuple[Job]] = select(Job).where(Job.tenant_id == tenant_id)
        if statuses:
            query = query.where(Job.status.in_(statuses))
        if kinds:
            query = query.where(Job.kind.in_(kinds))
        if after is not None:
            created_at, job_id = after
            query = query.where(
                or_(
                    Job.created_at < created_at,
                    and_(Job.created_at == created_at, Job.id < job_id),
                )
            )
        query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
        return list(self.session.scalars(query))

    def stages(self, job_id: uuid.UUID) -> list[Stage]:
        return list(
            self.session.scalars(
                select(Stage).where(Stage.job_id == job_id).order_by(Stage.position)
            )
        )

    def tasks(self, job_id: uuid.UUID) -> list[Task]:
        return list(self.session.scalars(select(Task).where(Task.job_id == job_id)))

    def task_counts(self, job_id: uuid.UUID) -> dict[uuid.UUID, dict[str, int]]:
        """Per stage: how many of its tasks are in each status."""
        rows = self.session.execute(
            select(Task.stage_id, Task.status, func.count(Task.id))
            .where(Task.job_id == job_id)
            .group_by(Task.stage_id, Task.status)
        )
        counts: dict[uuid.UUID, dict[str, int]] = {}
        for stage_id, status, count in rows:
            counts.setdefault(stage_id, {})[status] = int(count)
        return counts

    def allocations(self, job_id: uuid.UUID) -> list[Allocation]:
        return list(
            self.session.scalars(
                select(Allocation)
                .where(Allocation.job_id == job_id)
                .order_by(Allocation.created_at, Allocation.id)
            )
        )

    def ledger_mismatches(self, job_id: uuid.UUID) -> list[tuple[str, datetime, float]]:
        """(function, minute, CloudWatch minus ledger) for the minutes in which this job ran
        invocations and the function's CloudWatch count disagreed with the ledger."""
        minute = func.min(Invocation.started_at)
        ran = (
            select(
                Invocation.function_name,
                minute.label("first"),
                func.max(Invocation.started_at).label("last"),
            )
            .where(Invocation.job_id == job_id, Invocation.started_at.is_not(None))
            .group_by(Invocation.function_name)
            .subquery()
        )
        rows = self.session.execute(
            select(
                ran.c.function_name,
                Observation.observed_at,
                Observation.value,
                ran.c.first,
                ran.c.last,
            )
            .join(Observation, Observation.series == "function:" + ran.c.function_name)
            .where(Observation.metric == "ledger_mismatch")
            .order_by(Observation.observed_at)
        )
        return [
            (function, at, value)
            for function, at, value, first, last in rows
            # the minute overlaps the job's own invocations of that function
            if first.timestamp() - 60 < at.timestamp() <= last.timestamp()
        ]

    def cost_by_stage(self, job_id: uuid.UUID) -> list[CostRow]:
        """Ledger sums per stage, over every invocation that has a recorded bill, and how many
        of them still wait for their REPORT line (pending, or not found within the horizon)."""
        unreconciled = case(
            (Invocation.bill_state.in_([BillState.PENDING.value, BillState.MISSING.value]), 1),
            else_=0,
        )
        query = (
            select(
                Invocation.stage_id,
                type_coerce(func.coalesce(func.sum(Invocation.compute_cost_usd), 0), Money),
                type_coerce(func.coalesce(func.sum(Invocation.request_cost_usd), 0), Money),
                func.coalesce(func.sum(Invocation.memory_mb * Invocation.billed_ms), 0),
                func.count(Invocation.id),
                func.coalesce(func.sum(unreconciled), 0),
            )
            .where(Invocation.job_id == job_id, Invocation.compute_cost_usd.is_not(None))
            .group_by(Invocation.stage_id)
        )
        return [
            CostRow(stage_id, compute, requests, int(mb_ms), int(count), int(pending))
            for stage_id, compute, requests, mb_ms, count, pending in self.session.execute(query)
        ]
