"""Dashboard queries: a job's invocations and series, the tenant's usage and functions.

Tenant-scoped like every /v1 route (another tenant's job is a 404); lists are cursor-paged.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from service.api.deps import SessionDep, SettingsDep, TenantDep
from service.api.openapi import AUTH, problems
from service.api.query_schemas import FunctionPageOut, InvocationPageOut, SeriesOut, UsageOut
from service.usage.service import MAX_BUCKETS, UsageService

router = APIRouter(tags=["dashboards"])

_CURSOR = "A cursor this service did not issue."
_JOB_ERRORS = problems(400, *AUTH, 404, 422, s400=_CURSOR, s404="No such job for this tenant.")

Cursor = Annotated[str | None, Query(max_length=400, description="A previous next_cursor.")]
Limit = Annotated[int | None, Query(ge=1, le=1000)]


def _size(limit: int | None, settings) -> int:
    return min(limit or settings.page_size_default, settings.page_size_max)


@router.get(
    "/v1/jobs/{job_id}/invocations",
    response_model=InvocationPageOut,
    operation_id="listJobInvocations",
    responses=_JOB_ERRORS,
    summary="A job's invocations",
)
def job_invocations(
    job_id: uuid.UUID,
    tenant: TenantDep,
    session: SessionDep,
    settings: SettingsDep,
    cursor: Cursor = None,
    limit: Limit = None,
) -> InvocationPageOut:
    """Every invocation (one row per attempt), oldest first: stage, task, attempt,
    function and alias, memory, duration, billed and init ms, cold start, peak memory, outcome
    and cost. In-flight attempts have no bill yet."""
    page = UsageService(session).invocations(tenant, job_id, cursor, _size(limit, settings))
    return InvocationPageOut.of(page)


@router.get(
    "/v1/jobs/{job_id}/series",
    response_model=SeriesOut,
    operation_id="getJobSeries",
    responses=problems(*AUTH, 404, 422, s404="No such job for this tenant."),
    summary="A job's time series",
)
def job_series(job_id: uuid.UUID, tenant: TenantDep, session: SessionDep) -> SeriesOut:
    """What a job's charts need, in one call: memory per stage and shape over time, duration
    per round (actual, the fitted memory curve's prediction, and the next round's forecast
    interval), cumulative cost (about 200 buckets over the job's life) and loss per round.
    Its size is bounded by the job's stages, so it is not paged."""
    return SeriesOut.of(UsageService(session).series(tenant, job_id))


@router.get(
    "/v1/usage",
    response_model=UsageOut,
    operation_id="getUsage",
    responses=problems(
        400,
        *AUTH,
        422,
        s400="A cursor this service did not issue.",
        s422="Invalid parameters: a malformed step, a time without a time zone, from after to, "
        "too many buckets…",
    ),
    summary="Usage over time",
)
def usage(
    tenant: TenantDep,
    session: SessionDep,
    from_: Annotated[
        datetime | None,
        Query(alias="from", description="Window start, with a time zone (default: to − 7 d)."),
    ] = None,
    to: Annotated[
        datetime | None, Query(description="Window end, exclusive (default: now).")
    ] = None,
    step: Annotated[
        str | None,
        Query(
            max_length=20,
            description="Bucket width: seconds or 15m, 1h, 1d, 1w (default: ~100 buckets). "
            "Buckets are aligned to multiples of the step since the Unix epoch (UTC).",
        ),
    ] = None,
    group_by: Annotated[
        Literal["policy", "workload", "status", "architecture", "kind"] | None,
        Query(description="Split each bucket by this job attribute."),
    ] = None,
    cursor: Cursor = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_BUCKETS, description="Buckets per page.")
    ] = MAX_BUCKETS,
) -> UsageOut:
    """Per bucket (and group): cost, GB-s, invocations (billed, by finishing time), jobs active
    and jobs ended, deadline attainment of the jobs that ended, and the saving against one
    static size (``static_size`` in the body says what that estimate is)."""
    return UsageOut.of(
        UsageService(session).usage(
            tenant,
            start=from_,
            end=to,
            step=step,
            group_by=group_by,
            cursor=cursor,
            limit=limit,
        )
    )


@router.get(
    "/v1/functions",
    response_model=FunctionPageOut,
    operation_id="listFunctions",
    responses=problems(400, *AUTH, 422, s400=_CURSOR),
    summary="Functions in use",
)
def functions(
    tenant: TenantDep,
    session: SessionDep,
    settings: SettingsDep,
    since: Annotated[
        datetime | None,
        Query(description="Figures over invocations finished since then (default: 24 h ago)."),
    ] = None,
    cursor: Cursor = None,
    limit: Limit = None,
) -> FunctionPageOut:
    """Each function whose invocations by the tenant finished since ``since``: its current memory
    (its last applied change, with the rule and reason) and, per memory variant (alias),
    invocations, errors, throttles, cold starts and durations."""
    page = UsageService(session).functions(
        tenant, since=since, cursor=cursor, limit=_size(limit, settings)
    )
    return FunctionPageOut.of(page)
