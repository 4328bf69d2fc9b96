"""SQL for a tenant's webhook and its deliveries. Every query is scoped to a tenant."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from service.models import Webhook, WebhookDelivery


class WebhookRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, tenant_id: uuid.UUID, *, for_update: bool = False) -> Webhook | None:
        query = select(Webhook).where(Webhook.tenant_id == tenant_id)
        if for_update:
            query = query.with_for_update()
        return self.session.scalar(query)

    def add(self, webhook: Webhook) -> Webhook:
        self.session.add(webhook)
        self.session.flush()
        return webhook

    def delete(self, webhook: Webhook) -> None:
        self.session.delete(webhook)
        self.session.flush()

    def deliveries(
        self,
        tenant_id: uuid.UUID,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
        job_id: uuid.UUID | None = None,
    ) -> list[WebhookDelivery]:
        """Newest first."""
        query = select(WebhookDelivery).where(WebhookDelivery.tenant_id == tenant_id)
        if job_id is not None:
            query = query.where(WebhookDelivery.job_id == job_id)
        if after is not None:
            created_at, delivery_id = after
            query = query.where(
                or_(
                    WebhookDelivery.created_at < created_at,
                    and_(
                        WebhookDelivery.created_at == created_at,
                        WebhookDelivery.id < delivery_id,
                    ),
                )
            )
        query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        return list(self.session.scalars(query.limit(limit)))
