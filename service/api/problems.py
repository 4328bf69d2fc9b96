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

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "urn:cescale:problem:"

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    500: "Internal server error",
    503: "Service unavailable",
}


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
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


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
    errors = [
        {
            "loc": [str(part) for part in item.get("loc", ())],
            "msg": item.get("msg", ""),
            "type": item.get("type", ""),
        }
        for item in error.errors()
    ]
    if errors and errors[0]["type"] == "json_invalid":
        detail = "the request body is not valid JSON"
    else:
        detail = "; ".join(f"{'.'.join(e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in errors)
    return problem(
        request, 422, detail, slug="validation-error", title="Invalid request", errors=errors
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 400 and (denied := await _authentication_error(request)):
        return await _business_error(request, denied)  # a body that cannot be parsed
    return problem(request, error.status_code, str(error.detail), headers=error.headers)


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
