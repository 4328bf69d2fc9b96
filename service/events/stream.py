"""What a job's event stream carries, and the ids that make it resumable.

Each poll reads the job's state in a fixed number of statements — its timeline (status, stage
start and end, memory changes), its status and its cost — and returns the events a client has
not seen. An event id is ``<microseconds since the epoch>-<digest>`` of the event: ids sort in
time order, and the same event always has the same id, so a client that reconnects with
``Last-Event-ID`` gets the timeline events after the one it saw last. The status and the cost
are snapshots without an id (they leave the client's last id as it was): each connection starts
with them, and each change sends them again. An event the loop records late with an earlier
time than one already seen (rare: a memory change applied while a stage event was written) is
not replayed on resume; ``GET /v1/jobs/{id}/timeline`` stays the complete record.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from service.errors import BadRequest
from service.jobs.service import JobService
from service.models import JobStatus, Tenant
from service.models.base import utcnow


@dataclass(frozen=True, order=True)
class EventId:
    micros: int
    digest: str

    def __str__(self) -> str:
        return f"{self.micros}-{self.digest}"

    @classmethod
    def parse(cls, text: str) -> EventId:
        micros, _, digest = text.strip().partition("-")
        if not micros.isdigit() or len(digest) != 12:
            raise BadRequest("Last-Event-ID is not an id this stream sent")
        return cls(int(micros), digest)


@dataclass(frozen=True)
class Event:
    id: EventId | None  # None: a snapshot (status, cost), sent again on every connection
    type: str
    data: dict[str, Any]


def _event(at: datetime, type_: str, data: dict[str, Any], *, snapshot: bool = False) -> Event:
    body = json.dumps({"type": type_, **data}, sort_keys=True, default=str)
    digest = hashlib.sha256(body.encode()).hexdigest()[:12]
    micros = int(at.astimezone(UTC).timestamp() * 1_000_000)
    event_id = None if snapshot else EventId(micros, digest)
    return Event(event_id, type_, {"at": at.isoformat(), **data})


@dataclass
class StreamState:
    """What one connection has sent so far."""

    after: EventId | None = None  # timeline events up to here were seen (Last-Event-ID)
    sent: set[EventId] = field(default_factory=set)
    status: str | None = None
    cost: tuple[int, str] | None = None
    finished: bool = False


def poll(session: Session, tenant: Tenant, job_id: uuid.UUID, state: StreamState) -> list[Event]:
    """The events to send now (NotFound if the job is not the tenant's)."""
    jobs = JobService(session)
    job = jobs.get(tenant, job_id)
    events = []
    for item in jobs.timeline(tenant, job_id):
        event = _event(item.at, item.type, {"stage": item.stage, "detail": item.detail})
        if event.id in state.sent or (state.after is not None and event.id <= state.after):
            continue
        state.sent.add(event.id)
        events.append(event)
    now = utcnow()
    if job.status != state.status:
        state.status = job.status
        events.append(
            _event(
                now,
                "job.status",
                {"status": job.status, "reason": job.status_reason, "job_id": str(job.id)},
                snapshot=True,
            )
        )
    cost = jobs.cost(tenant, job_id)
    figures = (cost.total.invocations, str(cost.total.total_usd))
    if figures != state.cost:
        state.cost = figures
        events.append(
            _event(
                now,
                "cost.updated",
                {
                    "total_usd": float(cost.total.total_usd),
                    "compute_usd": float(cost.total.compute_usd),
                    "requests_usd": float(cost.total.requests_usd),
                    "gb_seconds": float(cost.total.gb_seconds),
                    "invocations": cost.total.invocations,
                },
                snapshot=True,
            )
        )
    state.finished = JobStatus(job.status).is_terminal
    return events
