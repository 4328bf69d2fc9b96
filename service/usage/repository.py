"""SQL behind the dashboard queries. Each method is one statement whatever the number of jobs,
invocations or buckets; aggregation happens in the database.

Tenancy: job-level methods take a job already fetched through the tenant
(``JobRepository.get``); tenant-wide methods filter ``invocations.job_id`` by the tenant's jobs.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import (
    Float,
    Integer,
    String,
    and_,
    case,
    cast,
    func,
    literal_column,
    or_,
    select,
    text,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement

from service.models import Allocation, Invocation, Job, PredictorState, Stage, Task, UsageHour
from service.models.base import PICO, Money
from service.usage.sql import bucket

GroupBy = Literal["policy", "workload", "status", "architecture", "kind"]
GROUP_BY: tuple[str, ...] = ("policy", "workload", "status", "architecture", "kind")


def group_key(group_by: str | None) -> ColumnElement[Any]:
    """The job attribute a usage query groups by (a constant, not grouped, for nothing)."""
    if group_by is None:
        return literal_column("'all'", String)
    if group_by == "workload":
        return Job.spec["workload"]["function"].as_string()
    if group_by == "architecture":
        return func.coalesce(Job.spec["workload"]["architecture"].as_string(), "x86_64")
    return {"policy": Job.policy, "status": Job.status, "kind": Job.kind}[group_by]


@dataclass(frozen=True)
class InvocationRow:
    invocation: Invocation
    stage: str
    stage_position: int
    task: str
    shape: str


@dataclass(frozen=True)
class MemoryRow:
    stage_position: int
    stage: str
    shape: str
    memory_mb: int
    first_at: datetime | None
    last_at: datetime | None
    invocations: int


@dataclass(frozen=True)
class RoundRow:
    stage_id: uuid.UUID
    slowest_ms: float | None
    memory_mb: int | None
    epochs: int | None
    invocations: int
    mean_loss: float | None
    best_loss: float | None


@dataclass(frozen=True)
class UsageRow:
    bucket: int
    key: str | None
    compute_usd: Decimal
    requests_usd: Decimal
    mb_ms: int
    invocations: int
    active_jobs: int
    static_compute_usd: Decimal


@dataclass(frozen=True)
class OutcomeRow:
    bucket: int
    key: str | None
    finished: int
    deadline_met: int
    deadline_known: int


@dataclass(frozen=True)
class AliasRow:
    function_name: str
    memory_mb: int
    architecture: str
    invocations: int
    errors: int
    throttles: int
    cold_starts: int
    mean_duration_ms: float | None
    max_duration_ms: float | None
    last_invoked_at: datetime | None


def _at(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * 3600, UTC)


def _money(expression: ColumnElement[Any]) -> ColumnElement[Decimal]:
    return type_coerce(func.coalesce(func.sum(expression), 0), Money)


class UsageRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- one job ----------------------------------------------------------------------------
    def invocations(
        self, job_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[InvocationRow]:
        """Oldest first; ``after`` is the (created_at, id) of the previous page's last row."""
        query = (
            select(Invocation, Stage.name, Stage.position, Task.key, Task.shape)
            .join(Stage, Stage.id == Invocation.stage_id)
            .join(Task, Task.id == Invocation.task_id)
            .where(Invocation.job_id == job_id)
        )
        if after is not None:
            created_at, invocation_id = after
            query = query.where(
                or_(
                    Invocation.created_at > created_at,
                    and_(Invocation.created_at == created_at, Invocation.id > invocation_id),
                )
            )
        query = query.order_by(Invocation.created_at, Invocation.id).limit(limit)
        return [InvocationRow(*row) for row in self.session.execute(query)]

    def memory_by_stage(self, job_id: uuid.UUID) -> list[MemoryRow]:
        """Each (stage, shape, memory) the job ran at, with when it first and last ran there."""
        query = (
            select(
                Stage.position,
                Stage.name,
                Task.shape,
                Invocation.memory_mb,
                func.min(Invocation.started_at),
                func.max(func.coalesce(Invocation.finished_at, Invocation.started_at)),
                func.count(Invocation.id),
            )
            .join(Stage, Stage.id == Invocation.stage_id)
            .join(Task, Task.id == Invocation.task_id)
            .where(Invocation.job_id == job_id)
            .group_by(Stage.position, Stage.name, Task.shape, Invocation.memory_mb)
            .order_by(Stage.position, Task.shape, func.min(Invocation.started_at))
        )
        return [MemoryRow(*row) for row in self.session.execute(query)]

    def rounds(self, job_id: uuid.UUID) -> list[RoundRow]:
        """Per stage: its slowest successful invocation (a round lasts as long as its slowest
        worker), the largest memory and epoch span it ran, and its tasks' loss."""
        ok = Invocation.outcome == "ok"
        loss = Task.result["loss"].as_float()
        per_stage = (
            select(
                Invocation.stage_id,
                func.max(case((ok, Invocation.duration_ms))),
                func.max(Invocation.memory_mb),
                func.max(case((ok, Task.epoch_to - func.coalesce(Task.epoch_from, 0)))),
                func.count(Invocation.id),
            )
            .join(Task, Task.id == Invocation.task_id)
            .where(Invocation.job_id == job_id)
            .group_by(Invocation.stage_id)
            .subquery()
        )
        losses = (
            select(Task.stage_id, func.avg(loss).label("mean"), func.min(loss).label("best"))
            .where(Task.job_id == job_id, Task.status == "succeeded")
            .group_by(Task.stage_id)
            .subquery()
        )
        query = select(per_stage, cast(losses.c.mean, Float), cast(losses.c.best, Float)).outerjoin(
            losses, losses.c.stage_id == per_stage.c.stage_id
        )
        return [
            RoundRow(stage, slowest, memory, epochs, count, mean, best)
            for stage, slowest, memory, epochs, count, mean, best in self.session.execute(query)
        ]

    def cost_buckets(
        self, job_id: uuid.UUID, step_s: int
    ) -> list[tuple[int, Decimal, Decimal, int]]:
        """(bucket, compute $, requests $, invocations) of the job's billed invocations by
        finishing time, oldest first."""
        b = bucket(Invocation.finished_at, step_s).label("b")
        query = (
            select(
                b,
                _money(Invocation.compute_cost_usd),
                _money(Invocation.request_cost_usd),
                func.count(Invocation.id),
            )
            .where(
                Invocation.job_id == job_id,
                Invocation.compute_cost_usd.is_not(None),
                Invocation.finished_at.is_not(None),
            )
            .group_by(b)
            .order_by(b)
        )
        return [(int(k), c, r, int(n)) for k, c, r, n in self.session.execute(query)]

    def predictor_states(self, job_id: uuid.UUID) -> list[PredictorState]:
        return list(
            self.session.scalars(
                select(PredictorState)
                .where(PredictorState.job_id == job_id)
                .order_by(PredictorState.name)
            )
        )

    # -- a tenant's usage -------------------------------------------------------------------
    def usage(
        self,
        tenant_id: uuid.UUID,
        start: datetime,
        end: datetime,
        step_s: int,
        group_by: str | None,
    ) -> list[UsageRow]:
        """Billed invocations finished in [start, end), per bucket and group.

        ``static_compute_usd`` re-prices each invocation at the largest memory its job used in
        the window, for the same billed time: compute $ × static MB / MB (a re-pricing, exact
        for the rate actually charged; the duration is held fixed)."""
        tenant_jobs = select(Job.id).where(Job.tenant_id == tenant_id)
        parts = []
        first_hour = math.ceil(start.timestamp() / 3600)
        last_hour = math.floor(end.timestamp() / 3600)
        if step_s % 3600 == 0 and first_hour < last_hour:
            # whole hours from the rollup, the partial hours at the edges from the ledger
            parts.append(self._hours(tenant_jobs, first_hour, last_hour, step_s // 3600))
            edges = [(start, _at(first_hour)), (_at(last_hour), end)]
        else:
            edges = [(start, end)]
        parts += [self._ledger(tenant_jobs, lo, hi, step_s) for lo, hi in edges if lo < hi]
        per_job = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
        self._no_jit()
        with_static = select(
            per_job,
            func.max(per_job.c.memory_mb).over(partition_by=per_job.c.job_id).label("static_mb"),
        ).subquery()
        key = group_key(group_by).label("k")
        query = (
            select(
                with_static.c.b,
                key,
                type_coerce(func.sum(with_static.c.compute), Money),
                type_coerce(func.sum(with_static.c.requests), Money),
                func.sum(with_static.c.mb_ms),
                func.sum(with_static.c.n),
                func.count(func.distinct(with_static.c.job_id)),
                func.sum(
                    cast(with_static.c.compute, Float)
                    * with_static.c.static_mb
                    / with_static.c.memory_mb
                ),
            )
            .join(Job, Job.id == with_static.c.job_id)
            .group_by(with_static.c.b, *([key] if group_by else []))
            .order_by(with_static.c.b)
        )
        return [
            UsageRow(
                int(k),
                group,
                compute or Decimal(0),
                requests or Decimal(0),
                int(mb_ms or 0),
                int(n),
                int(jobs),
                Decimal(str(static or 0)) / PICO,
            )
            for k, group, compute, requests, mb_ms, n, jobs, static in self.session.execute(query)
        ]

    @staticmethod
    def _ledger(tenant_jobs, lo: datetime, hi: datetime, step_s: int):
        """Per job, bucket and size: the billed invocations that finished in [lo, hi)."""
        b = bucket(Invocation.finished_at, step_s).label("b")
        return (
            select(
                Invocation.job_id.label("job_id"),
                b,
                Invocation.memory_mb.label("memory_mb"),
                func.sum(Invocation.compute_cost_usd).label("compute"),
                func.sum(Invocation.request_cost_usd).label("requests"),
                func.sum(Invocation.memory_mb * Invocation.billed_ms).label("mb_ms"),
                func.count(Invocation.id).label("n"),
            )
            .where(
                Invocation.job_id.in_(tenant_jobs),
                Invocation.finished_at >= lo,
                Invocation.finished_at < hi,
                Invocation.compute_cost_usd.is_not(None),
            )
            .group_by(Invocation.job_id, b, Invocation.memory_mb)
        )

    @staticmethod
    def _hours(tenant_jobs, first_hour: int, last_hour: int, hours_per_step: int):
        """The same from the hourly rollup, for the whole hours [first_hour, last_hour)."""
        b = (UsageHour.hour // literal_column(str(int(hours_per_step)), Integer)).label("b")
        return (
            select(
                UsageHour.job_id.label("job_id"),
                b,
                UsageHour.memory_mb.label("memory_mb"),
                func.sum(UsageHour.compute_usd).label("compute"),
                func.sum(UsageHour.request_usd).label("requests"),
                func.sum(UsageHour.mb_ms).label("mb_ms"),
                func.sum(UsageHour.invocations).label("n"),
            )
            .where(
                UsageHour.job_id.in_(tenant_jobs),
                UsageHour.hour >= first_hour,
                UsageHour.hour < last_hour,
                UsageHour.invocations > 0,
            )
            .group_by(UsageHour.job_id, b, UsageHour.memory_mb)
        )

    def _no_jit(self) -> None:
        """Postgres' JIT compiles an aggregate over many rows for longer than it then runs
        (1.6 s of 1.8 s at a million invocations); off for this transaction."""
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(text("SET LOCAL jit = off"))

    def outcomes(
        self,
        tenant_id: uuid.UUID,
        start: datetime,
        end: datetime,
        step_s: int,
        group_by: str | None,
    ) -> list[OutcomeRow]:
        """Jobs that ended in [start, end), per bucket and group, and how many met their
        deadline (of those whose deadline outcome is known)."""
        b = bucket(Job.finished_at, step_s).label("b")
        key = group_key(group_by).label("k")
        query = (
            select(
                b,
                key,
                func.count(Job.id),
                func.count(case((Job.deadline_missed.is_(False), 1))),
                func.count(Job.deadline_missed),
            )
            .where(Job.tenant_id == tenant_id, Job.finished_at >= start, Job.finished_at < end)
            .group_by(b, *([key] if group_by else []))
            .order_by(b)
        )
        return [
            OutcomeRow(int(k), g, int(n), int(m), int(d))
            for k, g, n, m, d in self.session.execute(query)
        ]

    # -- a tenant's functions ---------------------------------------------------------------
    def function_names(
        self, tenant_id: uuid.UUID, since: datetime, after: str | None, limit: int
    ) -> list[str]:
        """Functions whose invocations by the tenant's jobs finished since ``since``, by name."""
        query = (
            select(Invocation.function_name)
            .where(
                Invocation.job_id.in_(select(Job.id).where(Job.tenant_id == tenant_id)),
                Invocation.finished_at >= since,
            )
            .group_by(Invocation.function_name)
            .order_by(Invocation.function_name)
            .limit(limit)
        )
        self._no_jit()
        if after is not None:
            query = query.where(Invocation.function_name > after)
        return list(self.session.scalars(query))

    def aliases(self, tenant_id: uuid.UUID, since: datetime, names: list[str]) -> list[AliasRow]:
        """Per function and memory variant: figures of the invocations finished since ``since``."""
        if not names:
            return []
        self._no_jit()
        done = Invocation.state == "done"
        query = (
            select(
                Invocation.function_name,
                Invocation.memory_mb,
                func.max(Invocation.architecture),
                func.count(case((done, 1))),
                func.count(case((and_(done, Invocation.outcome != "ok"), 1))),
                func.count(case((Invocation.outcome == "throttled", 1))),
                func.count(case((Invocation.cold_start.is_(True), 1))),
                cast(func.avg(case((done, Invocation.duration_ms))), Float),
                func.max(case((done, Invocation.duration_ms))),
                func.max(Invocation.started_at),
            )
            .where(
                Invocation.job_id.in_(select(Job.id).where(Job.tenant_id == tenant_id)),
                Invocation.finished_at >= since,
                Invocation.function_name.in_(names),
            )
            .group_by(Invocation.function_name, Invocation.memory_mb)
            .order_by(Invocation.function_name, Invocation.memory_mb)
        )
        return [AliasRow(*row) for row in self.session.execute(query)]

    def last_changes(self, tenant_id: uuid.UUID, names: list[str]) -> dict[str, Allocation]:
        """The latest applied memory change of each function, by the tenant's jobs."""
        if not names:
            return {}
        at = func.coalesce(Allocation.applied_at, Allocation.created_at)
        ranked = (
            select(
                Allocation.id,
                func.row_number()
                .over(
                    partition_by=Allocation.function_name,
                    order_by=(at.desc(), Allocation.id.desc()),
                )
                .label("r"),
            )
            .where(
                Allocation.job_id.in_(select(Job.id).where(Job.tenant_id == tenant_id)),
                Allocation.function_name.in_(names),
                Allocation.state == "applied",
            )
            .subquery()
        )
        rows = self.session.scalars(
            select(Allocation).join(ranked, ranked.c.id == Allocation.id).where(ranked.c.r == 1)
        )
        return {row.function_name: row for row in rows}
