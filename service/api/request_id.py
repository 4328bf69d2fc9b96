"""A request id for every HTTP request: taken from the client's ``X-Request-Id`` when it is a
sane token, else generated; returned as the ``X-Request-Id`` response header (limit responses
included), attached to every log line emitted while the request is handled, and logged once
per request with its method, path, status and duration (the service's access log).

Pure ASGI, so streamed responses (the event stream) are not buffered."""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from typing import Any

HEADER = b"x-request-id"
_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
current: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
log = logging.getLogger("service.api.requests")


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on a log record (``record.request_id``), if there is one."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = current.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


class RequestId:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(HEADER, b"").decode("latin-1")
        request_id = given if _SANE.match(given) else uuid.uuid4().hex
        token = current.set(request_id)
        started = time.perf_counter()
        status = [500]

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "%s %s %d %.1fms request_id=%s",
                scope.get("method"),
                scope.get("path"),
                status[0],
                (time.perf_counter() - started) * 1000,
                request_id,
            )
            current.reset(token)
