"""Response bodies of the API (request bodies are the job spec, service.spec)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, Field, PlainSerializer

from service.jobs.service import CostLine, JobCost, TimelineEvent
from service.models import Job

# Money leaves the API as a JSON number (a double: ~15 significant digits, so a single
# invocation's sub-nanodollar cost survives); the exact picodollar ledger stays in the database.
Usd = Annotated[Decimal, PlainSerializer(float, return_type=float)]
GbSeconds = Annotated[Decimal, PlainSerializer(lambda v: float(round(v, 6)), return_type=float)]


class JobOut(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    status: str = Field(description="pending, running, succeeded, failed or cancelled")
    status_reason: str | None
    policy: str
    deadline_s: float
    deadline_missed: bool | None = Field(description="Known once the job has ended.")
    max_cost_usd: Usd | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any] | None
    spec: dict[str, Any]

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(
            id=job.id,
            name=job.name,
            kind=job.kind,
            status=job.status,
            status_reason=job.status_reason,
            policy=job.policy,
            deadline_s=job.deadline_s,
            deadline_missed=job.deadline_missed,
            max_cost_usd=job.max_cost_usd,
            cancel_requested=job.cancel_requested_at is not None,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            result=job.result,
            spec=job.spec,
        )


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= to get the next page.")


class CostOut(BaseModel):
    total_usd: Usd
    compute_usd: Usd
    requests_usd: Usd
    gb_seconds: GbSeconds
    invocations: int
    unreconciled_invocations: int = Field(
        description="Invocations whose REPORT line has not been read yet (a truncated log tail, "
        "a read timeout): their request charge is counted, their duration charge is added once "
        "the control loop finds the REPORT in CloudWatch Logs. Not 0 means total_usd is a lower "
        "bound."
    )

    @staticmethod
    def fields(line: CostLine) -> dict[str, Any]:
        return {
            "total_usd": line.total_usd,
            "compute_usd": line.compute_usd,
            "requests_usd": line.requests_usd,
            "gb_seconds": line.gb_seconds,
            "invocations": line.invocations,
            "unreconciled_invocations": line.unreconciled_invocations,
        }


class StageCostOut(CostOut):
    stage_id: uuid.UUID
    position: int
    name: str
    kind: str


class JobCostOut(CostOut):
    job_id: uuid.UUID
    currency: str = "USD"
    stages: list[StageCostOut]

    @classmethod
    def of_job(cls, cost: JobCost) -> JobCostOut:
        return cls(
            job_id=cost.job.id,
            **CostOut.fields(cost.total),
            stages=[
                StageCostOut(
                    stage_id=item.stage.id,
                    position=item.stage.position,
                    name=item.stage.name,
                    kind=item.stage.kind,
                    **CostOut.fields(item.cost),
                )
                for item in cost.stages
            ],
        )


class TimelineEventOut(BaseModel):
    at: datetime
    type: str = Field(
        description="job.submitted, job.started, stage.started, stage.finished, "
        "allocation.changed, allocation.vetoed, job.cancel_requested, job.<final status>"
    )
    stage: str | None
    detail: dict[str, Any]

    @classmethod
    def of(cls, event: TimelineEvent) -> TimelineEventOut:
        return cls(at=event.at, type=event.type, stage=event.stage, detail=event.detail)


class TimelineOut(BaseModel):
    job_id: uuid.UUID
    events: list[TimelineEventOut]


class Health(BaseModel):
    status: str
    detail: dict[str, Any] = {}
