"""Webhooks on job end: one URL per tenant; each ended job is POSTed there once, signed with
HMAC-SHA256, retried with exponential back-off, and every delivery is recorded.

``WebhookDispatcher.run_once(now)``:
1. *enqueue*: jobs of tenants with a webhook that ended after the webhook was set and have no
   delivery yet get one (``pending``, due now; a unique (webhook, job) key makes it once, even
   with several replicas);
2. *claim*: due deliveries are taken by pushing their next attempt a lease ahead and counting the
   attempt, committed before any network call (``FOR UPDATE SKIP LOCKED`` on Postgres), so two
   replicas never send the same attempt and a replica that dies mid-send leaves it to be retried;
3. *send* each claimed delivery (no transaction open), then record the outcome: a 2xx is
   ``delivered``; anything else waits ``backoff_s × 2^(attempts-1)`` (capped at an hour) and
   after ``max_attempts`` is ``failed``.

Signature: ``X-Cescale-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`` with
``X-Cescale-Timestamp`` (Unix seconds) — the receiver recomputes it and may refuse old
timestamps. Delivery is at least once: ``X-Cescale-Delivery`` is the same id on every attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import and_, exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.database import Database, commit
from service.jobs.repository import JobRepository
from service.models import Job, JobStatus, Webhook, WebhookDelivery

log = logging.getLogger(__name__)

EVENT = "job.finished"
MAX_BACKOFF_S = 3600.0
TERMINAL = [s.value for s in JobStatus if s.is_terminal]


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def backoff(attempts: int, base_s: float) -> float:
    return min(MAX_BACKOFF_S, base_s * 2 ** max(0, attempts - 1))


def payload(session: Session, job: Job) -> dict[str, Any]:
    rows = JobRepository(session).cost_by_stage(job.id)
    compute = sum((r.compute_usd for r in rows), Decimal(0))
    requests = sum((r.requests_usd for r in rows), Decimal(0))
    return {
        "event": EVENT,
        "job": {
            "id": str(job.id),
            "name": job.name,
            "kind": job.kind,
            "policy": job.policy,
            "status": job.status,
            "status_reason": job.status_reason,
            "deadline_s": job.deadline_s,
            "deadline_missed": job.deadline_missed,
            "created_at": job.created_at.isoformat(),
            "started_at": job.started_at.isoformat() if job.started_at else None,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        },
        "cost": {
            "total_usd": float(compute + requests),
            "compute_usd": float(compute),
            "requests_usd": float(requests),
            "gb_seconds": sum(r.mb_ms for r in rows) / 1024 / 1000,
            "invocations": sum(r.invocations for r in rows),
        },
    }


@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID
    url: str
    secret: str
    body: bytes
    attempts: int


@dataclass
class DispatchReport:
    enqueued: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0


class WebhookDispatcher:
    def __init__(
        self,
        database: Database,
        *,
        timeout_s: float = 5.0,
        max_attempts: int = 8,
        backoff_s: float = 10.0,
        batch: int = 50,
        lease_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.database = database
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.batch = batch
        self.lease_s = lease_s
        self.client = httpx.Client(timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self.client.close()

    def run_once(self, now: datetime) -> DispatchReport:
        report = DispatchReport(enqueued=self.enqueue(now))
        for claimed in self.claim(now):
            self._send(claimed, now, report)
        return report

    # -- 1. enqueue ---------------------------------------------------------------------------
    def enqueue(self, now: datetime) -> int:
        with self.database.session() as session:
            ended = session.execute(
                select(Job, Webhook.id)
                .join(Webhook, Webhook.tenant_id == Job.tenant_id)
                .where(
                    Job.status.in_(TERMINAL),
                    Job.finished_at >= Webhook.created_at,
                    ~exists().where(
                        and_(
                            WebhookDelivery.webhook_id == Webhook.id,
                            WebhookDelivery.job_id == Job.id,
                        )
                    ),
                )
                .order_by(Job.finished_at)
                .limit(self.batch)
            ).all()
            if not ended:
                return 0
            rows = [
                {
                    "id": uuid.uuid4(),
                    "tenant_id": job.tenant_id,
                    "webhook_id": webhook_id,
                    "job_id": job.id,
                    "event": EVENT,
                    "payload": payload(session, job),
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for job, webhook_id in ended
            ]
            dialect = session.get_bind().dialect.name
            insert = (postgresql if dialect == "postgresql" else sqlite).insert(WebhookDelivery)
            inserted = session.scalars(
                insert.values(rows)
                .on_conflict_do_nothing(index_elements=["webhook_id", "job_id"])
                .returning(WebhookDelivery.id)
            ).all()
            commit(session)
            return len(inserted)

    # -- 2. claim -----------------------------------------------------------------------------
    def claim(self, now: datetime) -> list[Claimed]:
        with self.database.session() as session:
            query = (
                select(WebhookDelivery, Webhook)
                .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                .where(WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(self.batch)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True, of=WebhookDelivery)
            claimed = []
            for delivery, webhook in session.execute(query).all():
                delivery.attempts += 1
                delivery.next_attempt_at = now + timedelta(seconds=self.lease_s)
                body = json.dumps(
                    {"delivery_id": str(delivery.id), **delivery.payload}, sort_keys=True
                ).encode()
                claimed.append(
                    Claimed(delivery.id, webhook.url, webhook.secret, body, delivery.attempts)
                )
            commit(session)
            return claimed

    # -- 3. send and record -------------------------------------------------------------------
    def _send(self, claimed: Claimed, now: datetime, report: DispatchReport) -> None:
        timestamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "cescale-webhooks",
            "X-Cescale-Event": EVENT,
            "X-Cescale-Delivery": str(claimed.id),
            "X-Cescale-Timestamp": str(timestamp),
            "X-Cescale-Signature": signature(claimed.secret, timestamp, claimed.body),
        }
        status, error = None, None
        try:
            response = self.client.post(claimed.url, content=claimed.body, headers=headers)
            status = response.status_code
            if not response.is_success:
                error = f"HTTP {status}: {response.text[:200]}"
        except httpx.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}"[:500]
        with self.database.session() as session:
            delivery = session.get(WebhookDelivery, claimed.id)
            if delivery is None:  # the job or the webhook was deleted meanwhile
                return
            delivery.last_status = status
            delivery.last_error = error
            if error is None:
                delivery.state = "delivered"
                delivery.delivered_at = now
                report.delivered += 1
            elif claimed.attempts >= self.max_attempts:
                delivery.state = "failed"
                report.failed += 1
            else:
                wait = backoff(claimed.attempts, self.backoff_s)
                delivery.next_attempt_at = now + timedelta(seconds=wait)
                report.retried += 1
            commit(session)
        if error is not None:
            log.warning("webhook delivery %s attempt %d: %s", claimed.id, claimed.attempts, error)


def from_settings(database: Database, settings) -> WebhookDispatcher:
    return WebhookDispatcher(
        database,
        timeout_s=settings.webhook_timeout_s,
        max_attempts=settings.webhook_max_attempts,
        backoff_s=settings.webhook_backoff_s,
    )


def schedule(scheduler, dispatcher: WebhookDispatcher, interval_s: float) -> None:
    """Run the dispatcher every ``interval_s`` on an APScheduler (beside the loop's ticks, in
    its own thread: a slow receiver never delays a tick)."""
    from datetime import UTC

    def tick() -> None:
        try:
            dispatcher.run_once(datetime.now(UTC))
        except Exception:
            log.exception("webhook dispatch failed; the next run retries")

    scheduler.add_job(
        tick, "interval", seconds=interval_s, id="webhooks", max_instances=1, coalesce=True
    )
