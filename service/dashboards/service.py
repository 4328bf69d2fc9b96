"""Saved dashboards: create, read, list, replace (If-Match), delete, and resolve every panel.

The ETag of a dashboard is its revision, bumped by every replacement. ``If-Match`` on PUT and
DELETE is optional; when given and stale the request is a 412 and nothing changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from service.dashboards.repository import DashboardRepository
from service.dashboards.spec import DashboardSpec, resolve_time
from service.errors import NotFound, PreconditionFailed, ProblemError
from service.jobs.service import decode_cursor
from service.models import Dashboard, Tenant
from service.models.base import utcnow
from service.usage.service import UsageService


def etag(dashboard: Dashboard) -> str:
    return f'"{dashboard.id}.{dashboard.revision}"'


def matches(if_match: str, dashboard: Dashboard) -> bool:
    """RFC 9110 If-Match: ``*`` or a list of entity tags, compared strongly."""
    tags = [tag.strip() for tag in if_match.split(",")]
    return "*" in tags or etag(dashboard) in tags


@dataclass(frozen=True)
class DashboardPage:
    dashboards: list[Dashboard]
    next_cursor: str | None


@dataclass(frozen=True)
class PanelData:
    index: int
    panel: dict[str, Any]
    data: Any | None
    error: ProblemError | None


# Renders a resolved query result as JSON (the API's response models do it).
Render = Callable[[str, Any], Any]


class DashboardService:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.dashboards = DashboardRepository(session)

    def create(self, tenant: Tenant, spec: DashboardSpec) -> Dashboard:
        now = utcnow()
        return self.dashboards.add(
            Dashboard(
                tenant_id=tenant.id,
                name=spec.name,
                document=_document(spec),
                revision=1,
                created_at=now,
                updated_at=now,
            )
        )

    def get(self, tenant: Tenant, dashboard_id: uuid.UUID, *, for_update: bool = False):
        dashboard = self.dashboards.get(tenant.id, dashboard_id, for_update=for_update)
        if dashboard is None:
            raise NotFound(f"dashboard {dashboard_id} not found")
        return dashboard

    def list(self, tenant: Tenant, cursor: str | None, limit: int) -> DashboardPage:
        after = decode_cursor(cursor) if cursor else None
        rows = self.dashboards.page(tenant.id, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return DashboardPage(rows, _cursor(rows[-1]) if more else None)

    def replace(
        self, tenant: Tenant, dashboard_id: uuid.UUID, spec: DashboardSpec, if_match: str | None
    ) -> Dashboard:
        dashboard = self._checked(tenant, dashboard_id, if_match)
        document = _document(spec)
        if document != dashboard.document:  # the same body again is a no-op: same ETag
            dashboard.name = spec.name
            dashboard.document = document
            dashboard.revision += 1
            dashboard.updated_at = utcnow()
            self.session.flush()
        return dashboard

    def delete(self, tenant: Tenant, dashboard_id: uuid.UUID, if_match: str | None) -> None:
        self.dashboards.delete(self._checked(tenant, dashboard_id, if_match))

    def _checked(self, tenant: Tenant, dashboard_id: uuid.UUID, if_match: str | None):
        dashboard = self.get(tenant, dashboard_id, for_update=True)
        if if_match is not None and not matches(if_match, dashboard):
            raise PreconditionFailed(
                f"dashboard {dashboard_id} has changed: its ETag is now {etag(dashboard)}; "
                "read it again and retry",
                etag=etag(dashboard),
            )
        return dashboard

    # -- data -------------------------------------------------------------------------------
    def data(
        self, tenant: Tenant, dashboard_id: uuid.UUID, render: Render
    ) -> tuple[Dashboard, datetime, list[PanelData]]:
        """Every panel's query, resolved now. A panel whose query fails (a deleted job, say)
        carries its problem; the others still resolve."""
        dashboard = self.get(tenant, dashboard_id)
        now = utcnow()
        usage = UsageService(self.session)
        panels = []
        for index, panel in enumerate(dashboard.document["panels"]):
            query = panel["query"]
            try:
                result = self._resolve(usage, tenant, query, now)
                panels.append(PanelData(index, panel, render(query["kind"], result), None))
            except ProblemError as error:
                panels.append(PanelData(index, panel, None, error))
        return dashboard, now, panels

    @staticmethod
    def _resolve(usage: UsageService, tenant: Tenant, query: dict[str, Any], now: datetime):
        kind = query["kind"]
        if kind == "usage":
            return usage.usage(
                tenant,
                start=resolve_time(query["from"], now),
                end=resolve_time(query["to"], now),
                step=query.get("step"),
                group_by=query.get("group_by"),
                cursor=None,
                limit=1000,
            )
        if kind == "series":
            return usage.series(tenant, uuid.UUID(query["job_id"]))
        if kind == "invocations":
            return usage.invocations(tenant, uuid.UUID(query["job_id"]), None, query["limit"])
        return usage.functions(
            tenant, since=resolve_time(query["since"], now), cursor=None, limit=query["limit"]
        )


def _document(spec: DashboardSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", by_alias=True)


def _cursor(dashboard: Dashboard) -> str:
    import base64

    raw = f"{dashboard.created_at.isoformat()}|{dashboard.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
