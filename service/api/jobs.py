"""/v1/jobs: submit, list, read, cancel, cost and timeline. Another tenant's job is a 404."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm.exc import StaleDataError

from service.api.deps import SessionDep, SettingsDep, TenantDep
from service.api.openapi import AUTH, BODY, headers, problems
from service.api.schemas import JobCostOut, JobOut, JobPage, TimelineEventOut, TimelineOut
from service.database import commit
from service.jobs.service import JobService
from service.models import JobKind, JobStatus
from service.spec import JobSpec

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

_NO_JOB = "No such job for this tenant."
_CANCEL_ATTEMPTS = 5


def _service(session, settings) -> JobService:
    return JobService(session, idempotency_lock_seconds=settings.idempotency_lock_seconds)


def _render(job) -> dict:
    return JobOut.of(job).model_dump(mode="json")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=JobOut,
    operation_id="submitJob",
    responses={
        201: {
            "description": "The job, pending (or, with Idempotent-Replayed, the job an earlier "
            "request with the same Idempotency-Key and body created).",
            **headers("Location", "Idempotent-Replayed"),
        },
        **problems(
            400,
            *AUTH,
            *BODY,
            409,
            422,
            s400="The Idempotency-Key is not 1-255 printable ASCII characters.",
            s409="A request with the same Idempotency-Key is still being processed.",
            s422="The spec is invalid (`errors` lists each problem and where it is), or the "
            "Idempotency-Key was used with another body.",
        ),
    },
    summary="Submit a job",
)
def submit_job(
    spec: JobSpec,
    request: Request,
    tenant: TenantDep,
    session: SessionDep,
    settings: SettingsDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            description="Retry-safe submission: the same key and body return the same job; "
            "the same key with another body is a 422; a concurrent duplicate is a 409.",
            json_schema_extra={"minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
        ),
    ] = None,
) -> JSONResponse:
    submitted = _service(session, settings).submit(tenant, spec, _render, idempotency_key)
    commit(session)
    answer = {"Location": str(request.url_for("get_job", job_id=submitted.job_id).path)}
    if submitted.replayed:
        answer["Idempotent-Replayed"] = "true"
    return JSONResponse(submitted.body, status_code=submitted.status, headers=answer)


@router.get(
    "",
    response_model=JobPage,
    operation_id="listJobs",
    responses=problems(400, *AUTH, 422, s400="A cursor this service did not issue."),
    summary="List jobs",
)
def list_jobs(
    tenant: TenantDep,
    session: SessionDep,
    settings: SettingsDep,
    status_: Annotated[
        list[JobStatus] | None, Query(alias="status", description="Repeat to match several.")
    ] = None,
    kind: Annotated[list[JobKind] | None, Query(description="hpo or training.")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
) -> JobPage:
    size = min(limit or settings.page_size_default, settings.page_size_max)
    page = _service(session, settings).list(
        tenant,
        statuses=[s.value for s in status_ or []],
        kinds=[k.value for k in kind or []],
        cursor=cursor,
        limit=size,
    )
    return JobPage(items=[JobOut.of(job) for job in page.jobs], next_cursor=page.next_cursor)


@router.get(
    "/{job_id}",
    response_model=JobOut,
    operation_id="getJob",
    responses=problems(*AUTH, 404, 422, s404=_NO_JOB),
    summary="Get a job",
)
def get_job(job_id: uuid.UUID, tenant: TenantDep, session: SessionDep, settings: SettingsDep):
    return JobOut.of(_service(session, settings).get(tenant, job_id))


@router.post(
    "/{job_id}/cancel",
    response_model=JobOut,
    operation_id="cancelJob",
    responses={
        202: {"model": JobOut, "description": "A running job, asked to stop."},
        **problems(*AUTH, 404, 409, 422, s404=_NO_JOB, s409="The job has already ended."),
    },
    summary="Cancel a job",
    description="A pending job is cancelled at once (200). A running job is asked to stop "
    "(202): the control loop launches nothing more and marks it cancelled when its in-flight "
    "invocations return. Cancelling a cancelled job is a no-op; a finished job is a 409.",
)
def cancel_job(
    job_id: uuid.UUID,
    response: Response,
    tenant: TenantDep,
    session: SessionDep,
    settings: SettingsDep,
) -> JobOut:
    for attempt in range(1, _CANCEL_ATTEMPTS + 1):
        try:
            job = _service(session, settings).cancel(tenant, job_id)
            commit(session)
            break
        except StaleDataError:
            # The control loop changed the job between our read and our write (SQLite has no
            # row locks to stop it): read it again and decide again.
            session.rollback()
            if attempt == _CANCEL_ATTEMPTS:
                raise
    if job.status != JobStatus.CANCELLED.value:
        response.status_code = status.HTTP_202_ACCEPTED
    return JobOut.of(job)


@router.get(
    "/{job_id}/cost",
    response_model=JobCostOut,
    operation_id="getJobCost",
    responses=problems(*AUTH, 404, 422, s404=_NO_JOB),
    summary="Job cost",
)
def job_cost(
    job_id: uuid.UUID, tenant: TenantDep, session: SessionDep, settings: SettingsDep
) -> JobCostOut:
    """The cost ledger: exactly the sum of the job's billed invocations (profiling included)."""
    return JobCostOut.of_job(_service(session, settings).cost(tenant, job_id))


@router.get(
    "/{job_id}/timeline",
    response_model=TimelineOut,
    operation_id="getJobTimeline",
    responses=problems(*AUTH, 404, 422, s404=_NO_JOB),
    summary="Job timeline",
)
def job_timeline(
    job_id: uuid.UUID, tenant: TenantDep, session: SessionDep, settings: SettingsDep
) -> TimelineOut:
    """Stage events and memory changes (with reason and predicted gain), oldest first."""
    events = _service(session, settings).timeline(tenant, job_id)
    return TimelineOut(job_id=job_id, events=[TimelineEventOut.of(e) for e in events])
