"""/v1/dashboards: saved dashboards (create, list, read, replace, delete) and their data.

Another tenant's dashboard is a 404. Each dashboard has an ETag; PUT and DELETE accept
``If-Match`` (optional) and answer 412 when it is stale.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status
from pydantic import BaseModel, Field

from service.api.deps import SessionDep, SettingsDep, TenantDep
from service.api.openapi import AUTH, BODY, headers, problems
from service.api.query_schemas import FunctionPageOut, InvocationPageOut, SeriesOut, UsageOut
from service.dashboards.service import DashboardService, etag
from service.dashboards.spec import DashboardSpec
from service.database import commit
from service.models import Dashboard

router = APIRouter(prefix="/v1/dashboards", tags=["dashboards"])

_NO_DASHBOARD = "No such dashboard for this tenant."
_ETAG = {200: {"description": "The dashboard.", **headers("ETag")}}

IfMatch = Annotated[
    str | None,
    Header(
        description="The ETag you read: the request fails with 412 if the dashboard changed "
        "since. Optional; without it the request applies unconditionally."
    ),
]


class DashboardOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str | None
    panels: list[dict[str, Any]]
    etag: str = Field(description="Also in the ETag header; send it back as If-Match.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, dashboard: Dashboard) -> DashboardOut:
        return cls(
            id=dashboard.id,
            name=dashboard.name,
            description=dashboard.document.get("description"),
            panels=dashboard.document["panels"],
            etag=etag(dashboard),
            created_at=dashboard.created_at,
            updated_at=dashboard.updated_at,
        )


class DashboardPageOut(BaseModel):
    items: list[DashboardOut]
    next_cursor: str | None


class PanelDataOut(BaseModel):
    index: int
    title: str
    chart: str
    query: dict[str, Any]
    data: dict[str, Any] | None = Field(
        description="The query's answer, as its own route returns it (null on error)."
    )
    error: dict[str, Any] | None = Field(
        description="A problem document when this panel's query failed (e.g. its job is gone)."
    )


class DashboardDataOut(BaseModel):
    dashboard_id: uuid.UUID
    etag: str
    resolved_at: datetime = Field(description="The instant relative times (now-7d) resolve to.")
    panels: list[PanelDataOut]


_RENDER = {
    "usage": UsageOut.of,
    "series": SeriesOut.of,
    "functions": FunctionPageOut.of,
    "invocations": InvocationPageOut.of,
}


def _render(kind: str, result: Any) -> dict[str, Any]:
    return _RENDER[kind](result).model_dump(mode="json", by_alias=True)


def _with_etag(response: Response, dashboard: Dashboard) -> DashboardOut:
    response.headers["ETag"] = etag(dashboard)
    return DashboardOut.of(dashboard)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DashboardOut,
    operation_id="createDashboard",
    responses={
        201: {"description": "The saved dashboard.", **headers("Location", "ETag")},
        **problems(*AUTH, *BODY, 422),
    },
    summary="Save a dashboard",
)
def create_dashboard(
    spec: DashboardSpec,
    request: Request,
    response: Response,
    tenant: TenantDep,
    session: SessionDep,
) -> DashboardOut:
    dashboard = DashboardService(session).create(tenant, spec)
    commit(session)
    response.headers["Location"] = str(
        request.url_for("get_dashboard", dashboard_id=dashboard.id).path
    )
    return _with_etag(response, dashboard)


@router.get(
    "",
    response_model=DashboardPageOut,
    operation_id="listDashboards",
    responses=problems(400, *AUTH, 422, s400="A cursor this service did not issue."),
    summary="List dashboards",
)
def list_dashboards(
    tenant: TenantDep,
    session: SessionDep,
    settings: SettingsDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
) -> DashboardPageOut:
    size = min(limit or settings.page_size_default, settings.page_size_max)
    page = DashboardService(session).list(tenant, cursor, size)
    return DashboardPageOut(
        items=[DashboardOut.of(d) for d in page.dashboards], next_cursor=page.next_cursor
    )


@router.get(
    "/{dashboard_id}",
    response_model=DashboardOut,
    operation_id="getDashboard",
    responses={**_ETAG, **problems(*AUTH, 404, 422, s404=_NO_DASHBOARD)},
    summary="Get a dashboard",
)
def get_dashboard(
    dashboard_id: uuid.UUID, response: Response, tenant: TenantDep, session: SessionDep
) -> DashboardOut:
    return _with_etag(response, DashboardService(session).get(tenant, dashboard_id))


@router.put(
    "/{dashboard_id}",
    response_model=DashboardOut,
    operation_id="replaceDashboard",
    responses={**_ETAG, **problems(*AUTH, 404, *BODY, 412, 422, s404=_NO_DASHBOARD)},
    summary="Replace a dashboard",
    description="Replaces the whole document. Sending the same document again changes nothing "
    "(same ETag). With If-Match, a stale ETag is a 412 and nothing changes.",
)
def replace_dashboard(
    dashboard_id: uuid.UUID,
    spec: DashboardSpec,
    response: Response,
    tenant: TenantDep,
    session: SessionDep,
    if_match: IfMatch = None,
) -> DashboardOut:
    dashboard = DashboardService(session).replace(tenant, dashboard_id, spec, if_match)
    commit(session)
    return _with_etag(response, dashboard)


@router.delete(
    "/{dashboard_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="deleteDashboard",
    responses=problems(*AUTH, 404, 412, 422, s404=_NO_DASHBOARD),
    summary="Delete a dashboard",
)
def delete_dashboard(
    dashboard_id: uuid.UUID, tenant: TenantDep, session: SessionDep, if_match: IfMatch = None
) -> Response:
    DashboardService(session).delete(tenant, dashboard_id, if_match)
    commit(session)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{dashboard_id}/data",
    response_model=DashboardDataOut,
    operation_id="getDashboardData",
    responses={
        200: {"description": "Every panel's data.", **headers("ETag")},
        **problems(*AUTH, 404, 422, s404=_NO_DASHBOARD),
    },
    summary="Resolve every panel",
    description="Runs every panel's query in one call, relative times resolved at "
    "`resolved_at`. A panel whose query fails carries a problem document in `error`.",
)
def dashboard_data(
    dashboard_id: uuid.UUID, response: Response, tenant: TenantDep, session: SessionDep
) -> DashboardDataOut:
    dashboard, now, panels = DashboardService(session).data(tenant, dashboard_id, _render)
    response.headers["ETag"] = etag(dashboard)
    return DashboardDataOut(
        dashboard_id=dashboard.id,
        etag=etag(dashboard),
        resolved_at=now,
        panels=[
            PanelDataOut(
                index=p.index,
                title=p.panel["title"],
                chart=p.panel["chart"],
                query=p.panel["query"],
                data=p.data,
                error=(
                    {
                        "type": f"urn:cescale:problem:{p.error.slug}",
                        "title": p.error.title,
                        "status": p.error.status,
                        "detail": p.error.detail,
                    }
                    if p.error
                    else None
                ),
            )
            for p in panels
        ],
    )
