"""The published OpenAPI document: problem responses, headers and the ``Problem`` schema.

Routes declare the error statuses they can return with :func:`problems`; each is an
``application/problem+json`` response whose schema is the ``Problem`` component, so a generated
client parses a 404 or a 422 into a typed object. Every response also declares the
``X-Request-Id`` header the service adds to it (``service.api.request_id``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

from service.api.problems import MEDIA_TYPE


class ValidationIssue(BaseModel):
    """One problem of an invalid request, and where it is."""

    loc: list[str] = Field(
        description='Where: "body", "query", "path" or "header", then the field\'s path.',
        examples=[["body", "hpo", "trials"]],
    )
    msg: str = Field(description="What is wrong, for people.")
    type: str = Field(description="A stable error code, e.g. int_type or value_error.")


class Problem(BaseModel):
    """An RFC 9457 problem document: every error the API returns."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(
        description="Stable, for programs: urn:cescale:problem:<slug> (validation-error, "
        "unprocessable, bad-request, unauthenticated, forbidden, not-found, conflict, "
        "precondition-failed, request-timeout, body-too-large, not-ready, internal), "
        "or about:blank for routing errors.",
        examples=["urn:cescale:problem:not-found"],
    )
    title: str = Field(description="A short summary of the status.", examples=["Not found"])
    status: int = Field(ge=400, le=599, description="The HTTP status.", examples=[404])
    detail: str = Field(description="What happened, for people.")
    instance: str = Field(description="The request's path.", examples=["/v1/jobs/…"])
    errors: list[ValidationIssue] = Field(
        None,
        description="On a request validation error (422 validation-error): each problem and "
        "where it is.",
    )


_DESCRIPTIONS = {
    400: "A malformed header or cursor (e.g. an Idempotency-Key or a cursor this service did "
    "not issue).",
    401: "No API key, or one that is unknown or revoked.",
    403: "A valid API key of a disabled tenant.",
    404: "No such resource for this tenant.",
    408: "The request body did not arrive within CESCALE_REQUEST_TIMEOUT_S.",
    409: "Conflict with the resource's state.",
    412: "If-Match names an ETag that is no longer current: nothing changed.",
    413: "The request body is larger than CESCALE_MAX_BODY_BYTES.",
    422: "The request is invalid; `errors` lists each problem and where it is.",
    503: "Not ready.",
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

#: Response headers, by name, as an OpenAPI Header Object.
HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-Id": {
        "description": "The request's id (the client's X-Request-Id when it is a sane token, "
        "else generated); it is on every log line of the request.",
        "schema": {"type": "string"},
    },
    "Location": {"description": "The new resource's path.", "schema": {"type": "string"}},
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request with the "
        "same Idempotency-Key and body (no new job was created).",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "WWW-Authenticate": {"description": "`Bearer`.", "schema": {"type": "string"}},
    "ETag": {"description": "The resource's version, for If-Match.", "schema": {"type": "string"}},
    "Connection": {
        "description": "`close`: the rest of the request body is not read.",
        "schema": {"type": "string"},
    },
}

# Statuses every route under /v1 can answer: authentication comes first.
AUTH = (401, 403)
# ... and routes with a request body: the body's size cap and deadline.
BODY = (408, 413)


def headers(*names: str) -> dict[str, Any]:
    return {"headers": {name: HEADERS[name] for name in names}}


def problems(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` entries of the error ``statuses`` a route can return, each a Problem.

    ``descriptions`` overrides the default description of a status (``s404="No such job."``).
    """
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        response: dict[str, Any] = {
            "description": descriptions.get(f"s{status}", _DESCRIPTIONS[status]),
            "content": {MEDIA_TYPE: {"schema": _PROBLEM_REF}},
        }
        if status == 401:
            response |= headers("WWW-Authenticate")
        if status in BODY:
            response |= headers("Connection")
        responses[status] = response
    return responses


def install(app: FastAPI) -> None:
    """Replace ``app.openapi`` with one that adds the Problem schema and the common headers."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _finish(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _finish(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    problem["properties"]["errors"].pop("default", None)  # absent unless there are errors
    schemas["Problem"] = problem
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                response.setdefault("headers", {})["X-Request-Id"] = HEADERS["X-Request-Id"]
    return document
