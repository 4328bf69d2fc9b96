"""Business errors. Each carries the HTTP status it maps to; the API renders them as RFC 9457
problem details, and the CLI prints their detail."""

from __future__ import annotations

from typing import Any


class ProblemError(Exception):
    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class BadRequest(ProblemError):
    pass


class Unauthenticated(ProblemError):
    status, slug, title = 401, "unauthenticated", "Authentication required"


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(ProblemError):
    status, slug, title = 409, "conflict", "Conflict"


class Unprocessable(ProblemError):
    status, slug, title = 422, "unprocessable", "Unprocessable request"


class PreconditionFailed(ProblemError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"
