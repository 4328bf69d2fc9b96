"""GET /v1/jobs/{id}/events: the job's events as Server-Sent Events, until it ends."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from fastapi.security.utils import get_authorization_scheme_param
from fastapi.sse import format_sse_event
from starlette.concurrency import run_in_threadpool

from service.api.openapi import AUTH, problems
from service.database import Database
from service.events.stream import EventId, StreamState, poll
from service.tenants.service import TenantService

router = APIRouter(tags=["jobs"])

KEEPALIVE_S = 15.0


def _poll(database: Database, key: str | None, job_id: uuid.UUID, state: StreamState):
    """One short session per poll: a stream never holds a connection while it waits."""
    with database.session() as session:
        tenant = TenantService(session).authenticate(key)
        return poll(session, tenant, job_id, state)


@router.get(
    "/v1/jobs/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "The event stream.",
        },
        **problems(
            400,
            *AUTH,
            404,
            422,
            s400="Last-Event-ID is not an id this stream sent.",
            s404="No such job for this tenant.",
        ),
    },
    operation_id="streamJobEvents",
    summary="Follow a job (Server-Sent Events)",
)
async def job_events(
    job_id: uuid.UUID,
    request: Request,
    last_event_id: Annotated[
        str | None,
        Header(description="Resume after this event (EventSource sends it when it reconnects)."),
    ] = None,
) -> StreamingResponse:
    """``text/event-stream`` of the job's events, oldest first: `job.submitted`, `job.started`,
    `stage.started`, `stage.finished`, `allocation.changed` / `allocation.vetoed` (memory
    changes with their reason), `job.<final status>`, … (the timeline's types, each with an id),
    and the snapshots `job.status` and `cost.updated` (no id: sent on connect and on every
    change). The stream ends once the job has ended and everything is sent. Resumable: with
    ``Last-Event-ID`` only the timeline events after that one are sent."""
    database: Database = request.app.state.database
    scheme, key = get_authorization_scheme_param(request.headers.get("authorization"))
    key = key if scheme.lower() == "bearer" else None
    state = StreamState(after=EventId.parse(last_event_id) if last_event_id else None)
    interval = request.app.state.settings.events_poll_s
    # the first poll runs before the response starts: a bad key or job is a plain problem
    first = await run_in_threadpool(_poll, database, key, job_id, state)
    return StreamingResponse(
        _stream(database, key, job_id, state, first, interval, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(database, key, job_id, state, first, interval, request) -> AsyncIterator[bytes]:
    events, idle = first, 0.0
    yield format_sse_event(retry=int(max(interval, 1.0) * 1000))
    while True:
        for event in events:
            yield format_sse_event(
                data_str=json.dumps(event.data, default=str),
                event=event.type,
                id=str(event.id) if event.id else None,
            )
        if state.finished or await request.is_disconnected():
            return
        idle = 0.0 if events else idle + interval
        if idle >= KEEPALIVE_S:
            yield format_sse_event(comment="keep-alive")
            idle = 0.0
        await asyncio.sleep(interval)  # the poll period, not a synchronisation
        events = await run_in_threadpool(_poll, database, key, job_id, state)
