"""Response bodies of the dashboard queries: invocations, series, usage and functions."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from service.api.schemas import GbSeconds, Usd
from service.platform.interface import variant_alias
from service.usage.repository import AliasRow, InvocationRow, MemoryRow
from service.usage.service import (
    STATIC_SIZE,
    CostPoint,
    Forecast,
    FunctionPage,
    InvocationPage,
    JobSeries,
    RoundPoint,
    Usage,
    UsagePoint,
)


class InvocationOut(BaseModel):
    id: uuid.UUID
    stage: str
    stage_position: int
    task: str
    shape: str
    attempt: int
    function: str
    alias: str = Field(
        description="The memory variant invoked (mem-<MB>; mem-<MB>-arm64 for a job with "
        "architecture auto that ran it on arm64)."
    )
    memory_mb: int
    architecture: str
    state: str = Field(description="intent, done or ambiguous")
    outcome: str | None = Field(
        description="ok, handled, unhandled, timeout, out_of_memory, throttled"
    )
    duration_ms: float | None
    billed_ms: int | None
    init_ms: float | None
    cold_start: bool | None
    max_memory_used_mb: int | None
    cpu_ms: float | None = Field(
        default=None,
        description="CPU time the run used (Lambda Insights' cpu_total_time; the emulator "
        "measures it); null when the platform did not report it",
    )
    compute_usd: Usd | None
    requests_usd: Usd | None
    cost_usd: Usd | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, row: InvocationRow, base_architecture: str = "x86_64") -> InvocationOut:
        inv = row.invocation
        cost = (
            inv.compute_cost_usd + (inv.request_cost_usd or Decimal(0))
            if inv.compute_cost_usd is not None
            else None
        )
        return cls(
            id=inv.id,
            stage=row.stage,
            stage_position=row.stage_position,
            task=row.task,
            shape=row.shape,
            attempt=inv.attempt,
            function=inv.function_name,
            alias=variant_alias(
                inv.memory_mb,
                inv.architecture if inv.architecture != base_architecture else None,  # type: ignore[arg-type]
            ),
            memory_mb=inv.memory_mb,
            architecture=inv.architecture,
            state=inv.state,
            outcome=inv.outcome,
            duration_ms=inv.duration_ms,
            billed_ms=inv.billed_ms,
            init_ms=inv.init_ms,
            cold_start=inv.cold_start,
            max_memory_used_mb=inv.max_memory_used_mb,
            cpu_ms=inv.cpu_ms,
            compute_usd=inv.compute_cost_usd,
            requests_usd=inv.request_cost_usd,
            cost_usd=cost,
            error=inv.error,
            created_at=inv.created_at,
            started_at=inv.started_at,
            finished_at=inv.finished_at,
        )


class InvocationPageOut(BaseModel):
    job_id: uuid.UUID
    items: list[InvocationOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= to get the next page.")

    @classmethod
    def of(cls, page: InvocationPage) -> InvocationPageOut:
        return cls(
            job_id=page.job_id,
            items=[InvocationOut.of(r, page.base_architecture) for r in page.rows],
            next_cursor=page.next_cursor,
        )


class MemoryPointOut(BaseModel):
    stage: str
    stage_position: int
    shape: str
    memory_mb: int
    first_at: datetime | None
    last_at: datetime | None
    invocations: int

    @classmethod
    def of(cls, row: MemoryRow) -> MemoryPointOut:
        return cls(
            stage=row.stage,
            stage_position=row.stage_position,
            shape=row.shape,
            memory_mb=row.memory_mb,
            first_at=row.first_at,
            last_at=row.last_at,
            invocations=row.invocations,
        )


class RoundOut(BaseModel):
    stage: str
    position: int
    kind: str
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    actual_s: float | None = Field(description="Wall time from the stage's start to its end.")
    slowest_invocation_ms: float | None = Field(
        description="The slowest successful invocation: what bounds a round."
    )
    predicted_ms: float | None = Field(
        description="The job's fitted memory curve at this stage's memory × epochs (the "
        "slowest shape); fitted on all runs so far, so an ex-post fit, not what was forecast "
        "before the stage ran."
    )
    memory_mb: int | None
    epochs: int | None
    invocations: int
    loss: float | None = Field(description="Mean loss of the stage's successful tasks.")
    best_loss: float | None
    predicted_loss: float | None = Field(description="The fitted loss curve (training only).")

    @classmethod
    def of(cls, point: RoundPoint) -> RoundOut:
        stage = point.stage
        return cls(
            stage=stage.name,
            position=stage.position,
            kind=stage.kind,
            status=stage.status,
            started_at=stage.started_at,
            finished_at=stage.finished_at,
            actual_s=point.actual_s,
            slowest_invocation_ms=point.slowest_invocation_ms,
            predicted_ms=point.predicted_ms,
            memory_mb=point.memory_mb,
            epochs=point.epochs,
            invocations=point.invocations,
            loss=point.loss,
            best_loss=point.best_loss,
            predicted_loss=point.predicted_loss,
        )


class ForecastOut(BaseModel):
    shape: str
    memory_mb: int | None
    epochs: int | None
    mean_ms: float | None
    lower_ms: float | None
    upper_ms: float | None
    level: float = Field(description="The central probability of [lower_ms, upper_ms].")
    observations: int

    @classmethod
    def of(cls, f: Forecast) -> ForecastOut:
        return cls(**f.__dict__)


class CostPointOut(BaseModel):
    at: datetime = Field(description="Start of the bucket (invocations by finishing time).")
    usd: Usd
    cumulative_usd: Usd
    invocations: int

    @classmethod
    def of(cls, p: CostPoint) -> CostPointOut:
        return cls(at=p.at, usd=p.usd, cumulative_usd=p.cumulative_usd, invocations=p.invocations)


class SeriesOut(BaseModel):
    job_id: uuid.UUID
    status: str
    memory: list[MemoryPointOut] = Field(
        description="Each stage × shape × memory size the job ran at, with when."
    )
    rounds: list[RoundOut]
    forecasts: list[ForecastOut] = Field(
        description="The next round's duration per shape: the memory curve at the last "
        "round's size, times the duration forecaster's interval (training jobs)."
    )
    cost_step_s: int
    cost: list[CostPointOut]

    @classmethod
    def of(cls, s: JobSeries) -> SeriesOut:
        return cls(
            job_id=s.job.id,
            status=s.job.status,
            memory=[MemoryPointOut.of(m) for m in s.memory],
            rounds=[RoundOut.of(r) for r in s.rounds],
            forecasts=[ForecastOut.of(f) for f in s.forecasts],
            cost_step_s=s.cost_step_s,
            cost=[CostPointOut.of(c) for c in s.cost],
        )


class UsagePointOut(BaseModel):
    at: datetime = Field(description="Start of the bucket (the window's start for totals).")
    group: str | None
    cost_usd: Usd
    compute_usd: Usd
    requests_usd: Usd
    gb_seconds: GbSeconds
    invocations: int
    active_jobs: int = Field(
        description="Jobs with billed invocations in the bucket (totals: the most in a bucket)."
    )
    jobs_finished: int
    deadline_met: int
    deadline_attainment: float | None = Field(
        description="Of the jobs that ended with a known deadline outcome, the share that met it."
    )
    static_cost_usd: Usd = Field(description="The same work at one static size; see static_size.")
    saving_usd: Usd

    @classmethod
    def of(cls, p: UsagePoint) -> UsagePointOut:
        return cls(
            at=p.at,
            group=p.group,
            cost_usd=p.cost_usd,
            compute_usd=p.compute_usd,
            requests_usd=p.requests_usd,
            gb_seconds=p.gb_seconds,
            invocations=p.invocations,
            active_jobs=p.active_jobs,
            jobs_finished=p.jobs_finished,
            deadline_met=p.deadline_met,
            deadline_attainment=p.deadline_attainment,
            static_cost_usd=p.static_cost_usd,
            saving_usd=p.static_cost_usd - p.cost_usd,
        )


class UsageOut(BaseModel):
    from_: datetime = Field(alias="from", serialization_alias="from")
    to: datetime
    step_s: int
    group_by: str | None
    static_size: str = Field(description="What static_cost_usd estimates, and how.")
    points: list[UsagePointOut]
    totals: list[UsagePointOut] = Field(description="This page's sums per group.")
    next_cursor: str | None = Field(description="The next page of buckets, if any.")

    model_config = {"populate_by_name": True}

    @classmethod
    def of(cls, u: Usage) -> UsageOut:
        return cls(
            from_=u.start,
            to=u.end,
            step_s=u.step_s,
            group_by=u.group_by,
            static_size=STATIC_SIZE,
            points=[UsagePointOut.of(p) for p in u.points],
            totals=[UsagePointOut.of(p) for p in u.totals],
            next_cursor=u.next_cursor,
        )


class AliasOut(BaseModel):
    alias: str
    memory_mb: int
    architecture: str
    invocations: int = Field(description="Invocations completed since `since`.")
    errors: int = Field(description="Completed with an outcome other than ok.")
    error_rate: float | None
    throttles: int
    cold_starts: int
    mean_duration_ms: float | None
    max_duration_ms: float | None
    last_invoked_at: datetime | None

    @classmethod
    def of(cls, a: AliasRow) -> AliasOut:
        return cls(
            alias=variant_alias(a.memory_mb),
            memory_mb=a.memory_mb,
            architecture=a.architecture,
            invocations=a.invocations,
            errors=a.errors,
            error_rate=a.errors / a.invocations if a.invocations else None,
            throttles=a.throttles,
            cold_starts=a.cold_starts,
            mean_duration_ms=a.mean_duration_ms,
            max_duration_ms=a.max_duration_ms,
            last_invoked_at=a.last_invoked_at,
        )


class MemoryChangeOut(BaseModel):
    at: datetime
    job_id: uuid.UUID
    from_mb: int | None
    to_mb: int
    rule: str | None
    reason: str


class FunctionOut(BaseModel):
    function: str
    current_memory_mb: int | None = Field(description="The size of its last applied change.")
    last_change: MemoryChangeOut | None
    aliases: list[AliasOut]


class FunctionPageOut(BaseModel):
    since: datetime
    items: list[FunctionOut]
    next_cursor: str | None

    @classmethod
    def of(cls, page: FunctionPage) -> FunctionPageOut:
        items = []
        for f in page.functions:
            change = f.last_change
            items.append(
                FunctionOut(
                    function=f.function_name,
                    current_memory_mb=f.current_memory_mb,
                    last_change=(
                        MemoryChangeOut(
                            at=change.applied_at or change.created_at,
                            job_id=change.job_id,
                            from_mb=change.from_mb,
                            to_mb=change.to_mb,
                            rule=change.rule,
                            reason=change.reason,
                        )
                        if change is not None
                        else None
                    ),
                    aliases=[AliasOut.of(a) for a in f.aliases],
                )
            )
        return cls(since=page.since, items=items, next_cursor=page.next_cursor)
