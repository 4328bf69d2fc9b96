"""Job use cases behind the API: submit, read, list, cancel, cost and timeline."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from service.control import lifecycle, rows
from service.errors import BadRequest, Conflict, NotFound
from service.jobs.idempotency import IdempotencyKeys, Replay, check_key, request_hash
from service.jobs.repository import CostRow, JobRepository
from service.models import Allocation, Job, JobStatus, Stage, Tenant, WorkStatus
from service.models.base import utcnow
from service.spec import JobSpec

# Render a created job as the response body; stored with an idempotency key for replays.
Render = Callable[[Job], dict[str, Any]]


@dataclass(frozen=True)
class Submitted:
    job_id: uuid.UUID
    status: int
    body: dict[str, Any]
    replayed: bool


@dataclass(frozen=True)
class Page:
    jobs: list[Job]
    next_cursor: str | None


@dataclass(frozen=True)
class CostLine:
    compute_usd: Decimal
    requests_usd: Decimal
    gb_seconds: Decimal
    invocations: int
    # invocations billed their request but not yet their duration: their REPORT line has not
    # been found in CloudWatch Logs yet (or not within the reconcile horizon)
    unreconciled_invocations: int = 0

    @property
    def total_usd(self) -> Decimal:
        return self.compute_usd + self.requests_usd


@dataclass(frozen=True)
class StageCost:
    stage: Stage
    cost: CostLine


@dataclass(frozen=True)
class JobCost:
    job: Job
    total: CostLine
    stages: list[StageCost]


@dataclass(frozen=True)
class TimelineEvent:
    at: datetime
    type: str
    stage: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class JobService:
    def __init__(self, session: Session, *, idempotency_lock_seconds: float = 60.0) -> None:
        self.session = session
        self.jobs = JobRepository(session)
        self.keys = IdempotencyKeys(session, idempotency_lock_seconds)

    # -- submit --------------------------------------------------------------------------
    def submit(
        self,
        tenant: Tenant,
        spec: JobSpec,
        render: Render,
        idempotency_key: str | None = None,
        *,
        now: datetime | None = None,
    ) -> Submitted:
        """Store a validated spec as a pending job. The caller commits. ``now``: the submitting
        clock (a simulation's virtual one); the wall clock by default."""
        if idempotency_key is None:
            job = self._create(tenant, spec, now)
            return Submitted(job.id, 201, render(job), replayed=False)

        key = check_key(idempotency_key)
        digest = request_hash(spec.model_dump(mode="json", exclude_unset=True))
        claim = self.keys.claim(tenant.id, key, digest, utcnow())
        if isinstance(claim, Replay):
            return Submitted(uuid.UUID(claim.body["id"]), claim.status, claim.body, replayed=True)
        try:
            job = self._create(tenant, spec, now)
            body = render(job)
            self.keys.complete(claim, job.id, 201, body)
            self.session.flush()
        except BaseException:
            self.keys.release(claim)
            raise
        return Submitted(job.id, 201, body, replayed=False)

    def _create(self, tenant: Tenant, spec: JobSpec, now: datetime | None) -> Job:
        now = now or utcnow()
        return self.jobs.add(
            Job(
                created_at=now,
                updated_at=now,
                tenant_id=tenant.id,
                name=spec.name,
                kind=spec.kind,
                status=JobStatus.PENDING.value,
                policy=spec.policy.name,
                spec=spec.model_dump(mode="json", exclude_none=True),
                deadline_s=spec.qos.deadline_s,
                max_cost_usd=(
                    Decimal(str(spec.budget.max_cost_usd)) if spec.budget is not None else None
                ),
            )
        )

    # -- read ----------------------------------------------------------------------------
    def get(self, tenant: Tenant, job_id: uuid.UUID) -> Job:
        job = self.jobs.get(tenant.id, job_id)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        return job

    def list(
        self,
        tenant: Tenant,
        *,
        statuses: list[str],
        kinds: list[str],
        cursor: str | None,
        limit: int,
    ) -> Page:
        after = decode_cursor(cursor) if cursor else None
        jobs = self.jobs.page(
            tenant.id, statuses=statuses, kinds=kinds, after=after, limit=limit + 1
        )
        more = len(jobs) > limit
        jobs = jobs[:limit]
        return Page(jobs, encode_cursor(jobs[-1]) if more else None)

    # -- cancel --------------------------------------------------------------------------
    def cancel(self, tenant: Tenant, job_id: uuid.UUID) -> Job:
        """A pending job is cancelled at once; a running one is asked to stop, and the control
        loop stops launching its tasks and marks it cancelled once its invocations return."""
        job = self.jobs.get(tenant.id, job_id, for_update=True)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        if job.status == JobStatus.CANCELLED.value:
            return job
        if JobStatus(job.status).is_terminal:
            raise Conflict(f"job {job_id} already {job.status}; it cannot be cancelled")
        now = utcnow()
        job.cancel_requested_at = job.cancel_requested_at or now
        if job.status == JobStatus.PENDING.value:
            # the lifecycle's one ending rule, as the loop ends a job; a running one is ended
            # by the loop once its invocations have returned
            stages, tasks = self.jobs.stages(job.id), self.jobs.tasks(job.id)
            stage_views, task_views = rows.views(stages, tasks)
            end = lifecycle.end_job(
                rows.job_view(job),
                JobStatus.CANCELLED,
                "cancelled by user before it started",
                now,
                stage_views,
                task_views,
            )
            rows.apply_job_end(job, end, stages, tasks)
        self.session.flush()
        return job

    # -- cost and timeline ---------------------------------------------------------------
    def cost(self, tenant: Tenant, job_id: uuid.UUID) -> JobCost:
        job = self.get(tenant, job_id)
        rows = {row.stage_id: row for row in self.jobs.cost_by_stage(job.id)}
        stages = [StageCost(stage, _line(rows.get(stage.id))) for stage in self.jobs.stages(job.id)]
        total = _line(
            CostRow(
                None,
                sum((r.compute_usd for r in rows.values()), Decimal(0)),
                sum((r.requests_usd for r in rows.values()), Decimal(0)),
                sum(r.mb_ms for r in rows.values()),
                sum(r.invocations for r in rows.values()),
                sum(r.unreconciled for r in rows.values()),
            )
        )
        return JobCost(job, total, stages)

    def timeline(self, tenant: Tenant, job_id: uuid.UUID) -> list[TimelineEvent]:
        job = self.get(tenant, job_id)
        stages = self.jobs.stages(job.id)
        names = {stage.id: stage.name for stage in stages}
        counts = self.jobs.task_counts(job.id)
        events = [TimelineEvent(job.created_at, "job.submitted", detail={"status": "pending"})]
        if job.started_at:
            events.append(TimelineEvent(job.started_at, "job.started"))
        for stage in stages:
            tasks = _task_progress(counts.get(stage.id, {}))
            if stage.started_at:
                events.append(
                    TimelineEvent(
                        stage.started_at,
                        "stage.started",
                        stage.name,
                        {
                            "kind": stage.kind,
                            "planned_memory_mb": stage.planned_memory_mb,
                            "tasks": tasks,
                        },
                    )
                )
            if stage.finished_at:
                events.append(
                    TimelineEvent(
                        stage.finished_at,
                        "stage.finished",
                        stage.name,
                        {"status": stage.status, "tasks": tasks},
                    )
                )
        events.extend(_allocation_event(a, names) for a in self.jobs.allocations(job.id))
        events.extend(
            TimelineEvent(
                at,
                "metrics.ledger_mismatch",
                detail={
                    "function": function,
                    "minute": at.isoformat(),
                    "cloudwatch_minus_ledger": int(difference),
                    "reason": f"CloudWatch counted {int(difference):+d} invocations of "
                    f"{function} in this minute against the ledger",
                },
            )
            for function, at, difference in self.jobs.ledger_mismatches(job.id)
        )
        if job.cancel_requested_at and job.status != JobStatus.CANCELLED.value:
            events.append(TimelineEvent(job.cancel_requested_at, "job.cancel_requested"))
        if job.finished_at:
            events.append(
                TimelineEvent(
                    job.finished_at,
                    f"job.{job.status}",
                    detail={"reason": job.status_reason, "deadline_missed": job.deadline_missed},
                )
            )
        return sorted(events, key=lambda event: event.at)


def _allocation_event(allocation: Allocation, stage_names: dict) -> TimelineEvent:
    detail = allocation.detail or {}
    # an "auto" job's decisions also say the architecture the tasks run on
    where = {"architecture": detail["architecture"]} if detail.get("architecture") else {}
    return TimelineEvent(
        allocation.applied_at or allocation.created_at,
        "allocation.vetoed" if allocation.state == "vetoed" else "allocation.changed",
        stage_names.get(allocation.stage_id),
        {
            "function": allocation.function_name,
            "shape": detail.get("shape"),
            "from_mb": allocation.from_mb,
            "to_mb": allocation.to_mb,
            **where,
            "state": allocation.state,
            "rule": allocation.rule,
            "reason": allocation.reason,
            "predicted_gain_usd": allocation.predicted_gain_usd,
        },
    )


def _task_progress(by_status: dict[str, int]) -> dict[str, int]:
    """A stage's tasks (trials of a rung, workers of a round) as of this read."""
    return {
        "total": sum(by_status.values()),
        "succeeded": by_status.get(WorkStatus.SUCCEEDED.value, 0),
        "failed": by_status.get(WorkStatus.FAILED.value, 0),
        "running": by_status.get(WorkStatus.RUNNING.value, 0),
    }


def _line(row: CostRow | None) -> CostLine:
    if row is None:
        return CostLine(Decimal(0), Decimal(0), Decimal(0), 0)
    return CostLine(
        row.compute_usd,
        row.requests_usd,
        Decimal(row.mb_ms) / 1024 / 1000,
        row.invocations,
        row.unreconciled,
    )


def encode_cursor(job: Job) -> str:
    raw = f"{job.created_at.isoformat()}|{job.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, job_id = raw.split("|", 1)
        parsed = datetime.fromisoformat(created)
        if parsed.tzinfo is None:
            raise ValueError("naive timestamp")
        # in UTC, as stored; a forged offset at the edge of the calendar overflows here
        return parsed.astimezone(UTC), uuid.UUID(job_id)
    except (ValueError, OverflowError, UnicodeDecodeError, binascii.Error):
        raise BadRequest("invalid cursor: pass the next_cursor of a previous page") from None
