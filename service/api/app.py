"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service import __version__, ui
from service.api import (
    dashboards,
    events,
    health,
    jobs,
    metrics,
    openapi,
    problems,
    queries,
    webhooks,
)
from service.api.limits import RequestLimits
from service.api.request_id import RequestId
from service.database import Database
from service.metrics import registry_for
from service.settings import Settings, get_settings


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    owns_database = database is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop_loop = _start_control_loop(app) if settings.controller_enabled else None
        yield
        if stop_loop is not None:
            stop_loop()
        if owns_database:
            app.state.database.dispose()

    app = FastAPI(
        lifespan=lifespan,
        title="cescale",
        version=__version__,
        description="CE-scaling control plane: submit ML workflow jobs that run on serverless "
        "functions and meet their deadline at the lowest cost. Authenticate with "
        "`Authorization: Bearer <api key>`. Errors are RFC 9457 problem details.",
        docs_url=None,  # served from the package's own assets (service.ui), not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.database = database or Database(settings)
    app.state.metrics_registry = registry_for(app.state.database)
    problems.install(app)
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.max_body_bytes,
        timeout_s=settings.request_timeout_s,
    )
    app.add_middleware(RequestId)  # outermost: limit responses carry the id too
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(jobs.router)
    app.include_router(queries.router)
    app.include_router(events.router)
    app.include_router(webhooks.router)
    app.include_router(dashboards.router)
    ui.install(app)
    openapi.install(app)
    return app


def _start_control_loop(app: FastAPI):
    """The in-process real-time driver: APScheduler ticks the loop on the wall clock."""
    from service.control.loop import Controller
    from service.control.service import LoopService, start_in_background
    from service.events import webhooks as job_webhooks
    from service.platform.factory import build_platform

    settings: Settings = app.state.settings
    platform = build_platform(settings)
    controller = Controller(app.state.database, platform, settings)
    scheduler = start_in_background(LoopService(controller, settings.controller_interval_s))
    dispatcher = job_webhooks.from_settings(app.state.database, settings)
    job_webhooks.schedule(scheduler, dispatcher, settings.webhook_interval_s)

    def stop() -> None:
        scheduler.shutdown(wait=True)
        dispatcher.close()
        platform.close()

    return stop
