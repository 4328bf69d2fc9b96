"""GET /metrics: Prometheus text exposition (``service.metrics``).

Open when ``CESCALE_METRICS_TOKEN`` is unset, as exporters usually are; when it is set, the
scraper sends ``Authorization: Bearer <token>`` (Prometheus: ``authorization: {credentials: …}``).
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from fastapi.security.utils import get_authorization_scheme_param
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from service.api.openapi import problems
from service.errors import Unauthenticated

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    operation_id="getMetrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition.",
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
        },
        **problems(401, s401="CESCALE_METRICS_TOKEN is set and the request does not carry it."),
    },
)
async def metrics(request: Request) -> Response:
    """The control loop's metrics (when it runs in this process) and the fleet's, read from the
    database at scrape time."""
    token = request.app.state.settings.metrics_token
    if token:
        scheme, given = get_authorization_scheme_param(request.headers.get("authorization"))
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            raise Unauthenticated(
                "GET /metrics needs Authorization: Bearer <CESCALE_METRICS_TOKEN>"
            )
    registry = request.app.state.metrics_registry
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
