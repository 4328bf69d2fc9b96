"""Request body limits as pure ASGI middleware: a size cap (413) and a deadline (408).

A body declared larger than the cap (``Content-Length``) is refused before a byte of it is read;
a chunked body is counted as it streams and refused as soon as it passes the cap. A body that
has not arrived whole ``timeout_s`` after the request's head is refused too, so a client that
declares a megabyte and sends nine bytes holds its connection for ``timeout_s``, not forever.
Both answers are problem+json with ``Connection: close``: the server stops reading the rest.

Any response sent while the request's body is still unread carries ``Connection: close`` as
well, so the server never drains a body nobody asked for.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.problems import MEDIA_TYPE, TYPE_BASE, title_of

_CLOSE = (b"connection", b"close")


class RequestLimitExceeded(HTTPException):
    """Raised from ``receive``: FastAPI passes HTTPExceptions through its body parsing, so the
    app's problem handler answers (and the middleware answers itself if nothing did)."""

    slug: str = "request-limit"

    def __init__(self, status_code: int, detail: str, slug: str) -> None:
        super().__init__(status_code, detail, headers={"Connection": "close"})
        self.slug = slug


def body_too_large(limit: int) -> RequestLimitExceeded:
    return RequestLimitExceeded(
        413,
        f"the request body is larger than {limit} bytes (CESCALE_MAX_BODY_BYTES)",
        "body-too-large",
    )


def body_too_slow(timeout_s: float) -> RequestLimitExceeded:
    return RequestLimitExceeded(
        408,
        f"the request body did not arrive within {timeout_s:g} s (CESCALE_REQUEST_TIMEOUT_S)",
        "request-timeout",
    )


class RequestLimits:
    """``max_body_bytes`` and ``timeout_s`` for every HTTP request's body."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _answer(scope, send, body_too_large(self.max_body_bytes))
            return
        has_body = (declared or 0) > 0 or _header(scope, b"transfer-encoding") is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        state = {"received": 0, "done": not has_body, "started": False}

        async def limited_receive() -> Message:
            if state["done"]:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise body_too_slow(self.timeout_s) from None
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_body_bytes:
                    raise body_too_large(self.max_body_bytes)
                state["done"] = not message.get("more_body", False)
            else:  # http.disconnect
                state["done"] = True
            return message

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
                if not state["done"]:
                    headers = list(message.get("headers", []))
                    if _CLOSE not in headers:
                        message = {**message, "headers": [*headers, _CLOSE]}
            await send(message)

        try:
            await self.app(scope, limited_receive, closing_send)
        except RequestLimitExceeded as error:
            if state["started"]:
                raise
            await _answer(scope, send, error)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value
    return None


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None  # the server refuses a malformed Content-Length before we see it


async def _answer(scope: Scope, send: Send, error: RequestLimitExceeded) -> None:
    body: dict[str, Any] = {
        "type": f"{TYPE_BASE}{error.slug}",
        "title": title_of(error.status_code),
        "status": error.status_code,
        "detail": error.detail,
        "instance": scope.get("path", ""),
    }
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.status_code,
            "headers": [
                (b"content-type", MEDIA_TYPE.encode()),
                (b"content-length", str(len(payload)).encode()),
                _CLOSE,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
