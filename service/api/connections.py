"""uvicorn's HTTP/1.1 (h11) protocol with two guards the stock one lacks.

- **A deadline for each request's head.** uvicorn waits forever for headers that never end (its
  keep-alive timer stops at the first byte), so a client sending half a request line holds a
  connection for good. Here a connection whose next request head is not complete within
  ``head_timeout_s`` (from the connection's start, or from the previous response) is closed,
  with a 408 if it had sent part of a request. The body has its own deadline in
  :mod:`service.api.limits`, which can still answer through the app.
- **A cap on open connections.** Past ``max_connections`` open connections (or requests in
  progress), a new connection is answered 503 and closed at once instead of being held.

Used by ``cescale serve``; :func:`guarded_protocol` binds the limits from the settings.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from service.api.problems import MEDIA_TYPE, TYPE_BASE, title_of


def _raw_problem(status: int, slug: str, detail: str) -> bytes:
    """A complete HTTP/1.1 problem+json response that closes the connection."""
    body = json.dumps(
        {
            "type": f"{TYPE_BASE}{slug}",
            "title": title_of(status),
            "status": status,
            "detail": detail,
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status} {title_of(status)}\r\n"
        f"content-type: {MEDIA_TYPE}\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode("ascii")
    return head + body


class GuardedH11Protocol(H11Protocol):
    head_timeout_s: float = 30.0
    max_connections: int = 1_000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limit_concurrency = None  # replaced by the check at connection time
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections or len(self.tasks) >= self.max_connections:
            self.logger.warning(
                "refusing a connection: %d open, CESCALE_MAX_CONNECTIONS is %d",
                len(self.connections),
                self.max_connections,
            )
            transport.write(
                _raw_problem(
                    503,
                    "overloaded",
                    f"the server holds {self.max_connections} connections already; retry later",
                )
            )
            transport.close()
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request's head arrived whole
            self._disarm_head_timer()

    def on_response_complete(self) -> None:
        if not self.transport.is_closing():
            self._arm_head_timer()  # for the next request on this keep-alive connection
        super().on_response_complete()

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being served; its body deadline is the app's
        partial, _ = self.conn.trailing_data
        if partial:  # an idle keep-alive connection is closed silently, as usual
            self.transport.write(
                _raw_problem(
                    408,
                    "request-timeout",
                    f"the request head did not arrive within {self.head_timeout_s:g} s "
                    "(CESCALE_REQUEST_TIMEOUT_S)",
                )
            )
        self.transport.close()


def guarded_protocol(head_timeout_s: float, max_connections: int) -> type[GuardedH11Protocol]:
    """The protocol class uvicorn should use (``uvicorn.run(http=...)``) for these limits."""
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {"head_timeout_s": head_timeout_s, "max_connections": max_connections},
    )
