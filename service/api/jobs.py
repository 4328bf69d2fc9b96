"""/v1/jobs: submit, list, read, cancel, cost and timeline. Another tenant's job is a 404."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse

from service.api.deps import SessionDep, SettingsDep, TenantDep
from service.api.schemas import JobCostOut, JobOut, JobPage, TimelineEventOut, TimelineOut
from service.database import commit
from service.jobs.service import JobService
from service.models import JobKind, JobStatus
from service.spec import JobSpec

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

_PROBLEM = {"content": {"application/problem+json": {}}}


def _problem(description: str) -> dict:
    return {"description": description, **_PROBLEM}


_ERRORS = {
    401: _problem("No API key, or one that is unknown or revoked."),
    403: _problem("A valid API key of a disabled tenant."),
    404: _problem("No such job for this tenant."),
    408: _problem("The request body did not arrive within CESCALE_REQUEST_TIMEOUT_S."),
    413: _problem("The request body is larger than CESCALE_MAX_BODY_BYTES."),
    422: _problem("The request is invalid; `errors` lists each problem and where it is."),
}


def _service(session, settings) -> JobService:
    return JobService(session, idempotency_lock_seconds=settings.idempotency_lock_seconds)


def _render(job) -> dict:
    return JobOut.of(job).model_dump(mode="json")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=JobOut,
    responses={
        400: _PROBLEM,
        409: _problem("The same Idempotency-Key is still being processed."),
        **_ERRORS,
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
            "the same key with another body is a 422; a concurrent duplicate is a 409."
        ),
    ] = None,
) -> JSONResponse:
    submitted = _service(session, settings).submit(tenant, spec, _render, idempotency_key)
    commit(session)
    headers = {"Location": str(request.url_for("get_job", job_id=submitted.job_id).path)}
    if submitted.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(submitted.body, status_code=submitted.status, headers=headers)


@router.get("", response_model=JobPage, responses={400: _PROBLEM, **_ERRORS}, summary="List jobs")
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


@router.get("/{job_id}", response_model=JobOut, responses=_ERRORS, summary="Get a job")
def get_job(job_id: uuid.UUID, tenant: TenantDep, session: SessionDep, settings: SettingsDep):
    return JobOut.of(_service(session, settings).get(tenant, job_id))


@router.post(
    "/{job_id}/cancel",
    response_model=JobOut,
    responses={202: {"model": JobOut}, 409: _PROBLEM, **_ERRORS},
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
    job = _service(session, settings).cancel(tenant, job_id)
    commit(session)
    if job.status != JobStatus.CANCELLED.value:
        response.status_code = status.HTTP_202_ACCEPTED
    return JobOut.of(job)


@router.get("/{job_id}/cost", response_model=JobCostOut, responses=_ERRORS, summary="Job cost")
def job_cost(
    job_id: uuid.UUID, tenant: TenantDep, session: SessionDep, settings: SettingsDep
) -> JobCostOut:
    """The cost ledger: exactly the sum of the job's billed invocations (profiling included)."""
    return JobCostOut.of_job(_service(session, settings).cost(tenant, job_id))


@router.get(
    "/{job_id}/timeline", response_model=TimelineOut, responses=_ERRORS, summary="Job timeline"
)
def job_timeline(
    job_id: uuid.UUID, tenant: TenantDep, session: SessionDep, settings: SettingsDep
) -> TimelineOut:
    """Stage events and memory changes (with reason and predicted gain), oldest first."""
    events = _service(session, settings).timeline(tenant, job_id)
    return TimelineOut(job_id=job_id, events=[TimelineEventOut.of(e) for e in events])
