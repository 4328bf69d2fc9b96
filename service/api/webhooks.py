"""/v1/webhook: the tenant's job-end webhook (one URL), and its deliveries."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from service.api.deps import SessionDep, SettingsDep, TenantDep
from service.api.openapi import AUTH, BODY, problems
from service.database import commit
from service.errors import NotFound
from service.events.repository import WebhookRepository
from service.events.webhooks import new_secret
from service.jobs.service import decode_cursor
from service.models import Webhook, WebhookDelivery
from service.models.base import utcnow

router = APIRouter(prefix="/v1/webhook", tags=["webhooks"])

_NO_WEBHOOK = "No webhook is set."


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(description="http(s) URL that receives a POST when a job ends.")
    rotate_secret: bool = Field(False, description="Issue a new signing secret.")


class WebhookOut(BaseModel):
    url: str
    secret: str | None = Field(
        description="The HMAC signing secret: shown when the webhook is created or its "
        "secret rotated, never again."
    )
    created_at: datetime
    updated_at: datetime


class DeliveryOut(BaseModel):
    id: uuid.UUID
    job_id: uuid.UUID
    event: str
    state: str = Field(description="pending, delivered or failed")
    attempts: int
    next_attempt_at: datetime | None = Field(description="While pending.")
    last_status: int | None = Field(description="HTTP status of the last attempt.")
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, d: WebhookDelivery) -> DeliveryOut:
        return cls(
            id=d.id,
            job_id=d.job_id,
            event=d.event,
            state=d.state,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at if d.state == "pending" else None,
            last_status=d.last_status,
            last_error=d.last_error,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
        )


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


def _out(webhook: Webhook, secret: str | None) -> WebhookOut:
    return WebhookOut(
        url=webhook.url,
        secret=secret,
        created_at=webhook.created_at,
        updated_at=webhook.updated_at,
    )


@router.put(
    "",
    response_model=WebhookOut,
    operation_id="putWebhook",
    responses={
        201: {"model": WebhookOut, "description": "Created, with its secret."},
        **problems(*AUTH, *BODY, 422),
    },
    summary="Set the job-end webhook",
    description="Creates (201, with its secret) or changes (200) the tenant's webhook. Jobs that "
    "end from now on are POSTed to it, signed; `rotate_secret` issues a new secret.",
)
def put_webhook(
    body: WebhookIn, response: Response, tenant: TenantDep, session: SessionDep
) -> WebhookOut:
    webhooks = WebhookRepository(session)
    webhook = webhooks.get(tenant.id, for_update=True)
    now = utcnow()
    secret = None
    if webhook is None:
        secret = new_secret()
        webhook = webhooks.add(
            Webhook(
                tenant_id=tenant.id,
                url=str(body.url),
                secret=secret,
                created_at=now,
                updated_at=now,
            )
        )
        response.status_code = status.HTTP_201_CREATED
    else:
        webhook.url = str(body.url)
        webhook.updated_at = now
        if body.rotate_secret:
            secret = webhook.secret = new_secret()
    commit(session)
    return _out(webhook, secret)


@router.get(
    "",
    response_model=WebhookOut,
    operation_id="getWebhook",
    responses=problems(*AUTH, 404, s404=_NO_WEBHOOK),
    summary="The job-end webhook",
)
def get_webhook(tenant: TenantDep, session: SessionDep) -> WebhookOut:
    webhook = WebhookRepository(session).get(tenant.id)
    if webhook is None:
        raise NotFound("no webhook is set: PUT /v1/webhook sets one")
    return _out(webhook, None)


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="deleteWebhook",
    responses=problems(*AUTH, 404, s404=_NO_WEBHOOK),
    summary="Remove the webhook",
)
def delete_webhook(tenant: TenantDep, session: SessionDep) -> Response:
    """Removes the webhook and its delivery records; nothing more is sent."""
    webhooks = WebhookRepository(session)
    webhook = webhooks.get(tenant.id, for_update=True)
    if webhook is None:
        raise NotFound("no webhook is set")
    webhooks.delete(webhook)
    commit(session)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/deliveries",
    response_model=DeliveryPage,
    operation_id="listWebhookDeliveries",
    responses=problems(400, *AUTH, 422, s400="A cursor this service did not issue."),
    summary="Webhook deliveries",
)
def list_deliveries(
    tenant: TenantDep,
    session: SessionDep,
    settings: SettingsDep,
    job_id: Annotated[uuid.UUID | None, Query(description="Only this job's.")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
) -> DeliveryPage:
    """Every delivery, newest first: state, attempts, the last HTTP status or error."""
    size = min(limit or settings.page_size_default, settings.page_size_max)
    after = decode_cursor(cursor) if cursor else None
    rows = WebhookRepository(session).deliveries(tenant.id, after, size + 1, job_id)
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = None
    if more:
        raw = f"{rows[-1].created_at.isoformat()}|{rows[-1].id}"
        next_cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    return DeliveryPage(items=[DeliveryOut.of(d) for d in rows], next_cursor=next_cursor)
