"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service import __version__
from service.api import health, jobs, problems
from service.database import Database
from service.settings import Settings, get_settings


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    owns_database = database is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if owns_database:
            app.state.database.dispose()

    app = FastAPI(
        lifespan=lifespan,
        title="cescale",
        version=__version__,
        description="CE-scaling control plane: submit ML workflow jobs that run on serverless "
        "functions and meet their deadline at the lowest cost. Authenticate with "
        "`Authorization: Bearer <api key>`. Errors are RFC 9457 problem details.",
    )
    app.state.settings = settings
    app.state.database = database or Database(settings)
    problems.install(app)
    app.include_router(health.router)
    app.include_router(jobs.router)
    return app
