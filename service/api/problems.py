"""RFC 9457 problem details for every error the API returns.

Validation errors, unknown routes, business errors and unexpected failures all leave as
``application/problem+json`` with ``type``, ``title``, ``status``, ``detail`` and ``instance``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api.deps import authentication_error
from service.errors import ProblemError
from service.spec import printable

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "urn:cescale:problem:"

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    409: "Conflict",
    412: "Precondition failed",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    500: "Internal server error",
    503: "Service unavailable",
}


def title_of(status: int) -> str:
    return _TITLES.get(status, "Error")


def problem(
    request: Request,
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": f"{TYPE_BASE}{slug}" if slug else "about:blank",
        "title": title or title_of(status),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    return JSONResponse(
        _encodable(body), status_code=status, media_type=MEDIA_TYPE, headers=headers
    )


def _encodable(node: Any) -> Any:
    """Strings with lone surrogates (which UTF-8 cannot encode) spelled out as ``\\udXXX``: an
    error report that echoes the bad input must not itself fail."""
    if isinstance(node, str):
        return printable(node)
    if isinstance(node, dict):
        return {_encodable(key): _encodable(value) for key, value in node.items()}
    if isinstance(node, list | tuple):
        return [_encodable(value) for value in node]
    return node


def install(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _business_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


async def _business_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ProblemError)
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return problem(
        request,
        error.status,
        error.detail,
        slug=error.slug,
        title=error.title,
        headers=headers,
        **error.extra,
    )


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    if denied := await _authentication_error(request):
        return await _business_error(request, denied)
    errors = [_error_item(item) for item in error.errors()]
    if errors and errors[0]["type"] == "json_invalid":
        detail = "the request body is not valid JSON"
    else:
        detail = "; ".join(f"{'.'.join(e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in errors)
    return problem(
        request, 422, detail, slug="validation-error", title="Invalid request", errors=errors
    )


def _error_item(item: dict[str, Any]) -> dict[str, Any]:
    loc = [str(part) for part in item.get("loc", ())]
    message = item.get("msg", "")
    context = item.get("ctx") or {}
    if "path" in context and "reason" in context:
        # A spec-wide check that names the field it refuses (service.spec._invalid).
        loc += [str(part) for part in context["path"]]
        message = context["reason"]
    return {"loc": loc, "msg": message, "type": item.get("type", "")}


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 400 and (denied := await _authentication_error(request)):
        return await _business_error(request, denied)  # a body that cannot be parsed
    return problem(
        request,
        error.status_code,
        str(error.detail),
        slug=getattr(error, "slug", None),
        headers=error.headers,
    )


async def _authentication_error(request: Request) -> ProblemError | None:
    """Every /v1 route needs a tenant: an unauthenticated request is refused before its input
    is judged."""
    if not request.url.path.startswith("/v1/"):
        return None
    return await run_in_threadpool(authentication_error, request)


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(
        request, 500, "an unexpected error occurred; it has been logged", slug="internal"
    )
