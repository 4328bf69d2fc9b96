"""SQL for saved dashboards. Every query is scoped to a tenant."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from service.models import Dashboard


class DashboardRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, dashboard: Dashboard) -> Dashboard:
        self.session.add(dashboard)
        self.session.flush()
        return dashboard

    def get(
        self, tenant_id: uuid.UUID, dashboard_id: uuid.UUID, *, for_update: bool = False
    ) -> Dashboard | None:
        query = select(Dashboard).where(
            Dashboard.id == dashboard_id, Dashboard.tenant_id == tenant_id
        )
        if for_update:
            query = query.with_for_update()
        return self.session.scalar(query)

    def page(
        self, tenant_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[Dashboard]:
        """Newest first; ``after`` is the (created_at, id) of the previous page's last row."""
        query = select(Dashboard).where(Dashboard.tenant_id == tenant_id)
        if after is not None:
            created_at, dashboard_id = after
            query = query.where(
                or_(
                    Dashboard.created_at < created_at,
                    and_(Dashboard.created_at == created_at, Dashboard.id < dashboard_id),
                )
            )
        query = query.order_by(Dashboard.created_at.desc(), Dashboard.id.desc()).limit(limit)
        return list(self.session.scalars(query))

    def delete(self, dashboard: Dashboard) -> None:
        self.session.delete(dashboard)
        self.session.flush()
