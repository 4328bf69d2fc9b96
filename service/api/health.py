"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from service.api.openapi import problems
from service.api.problems import problem
from service.database import Database
from service.migrate import current_revision_of, head_revision

router = APIRouter(tags=["health"])


class Live(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    migration: str = Field(description="The database's Alembic revision (the head).")


@router.get(
    "/healthz", response_model=Live, operation_id="getLiveness", summary="The process is up"
)
def healthz() -> dict:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Ready,
    operation_id="getReadiness",
    responses=problems(
        503, s503="The database is unreachable or not migrated to head (`detail` says which)."
    ),
    summary="The database is reachable and migrated to head",
)
def readyz(request: Request) -> JSONResponse:
    database: Database = request.app.state.database
    try:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = current_revision_of(database.engine)
    except SQLAlchemyError as error:
        return problem(
            request, 503, f"database unreachable: {type(error).__name__}", slug="not-ready"
        )
    head = head_revision()
    if current != head:
        return problem(
            request,
            503,
            f"database at migration {current or 'base'}, head is {head}: run 'cescale db upgrade'",
            slug="not-ready",
        )
    return JSONResponse({"status": "ready", "migration": current})
