"""Request dependencies: the database session and the authenticated tenant."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from service.database import Database
from service.models import Tenant
from service.settings import Settings
from service.tenants.service import TenantService

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer cesk_…`")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """One session per request; the endpoint commits through ``service.database.commit``."""
    database: Database = request.app.state.database
    with database.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_tenant(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Tenant:
    return TenantService(session).authenticate(credentials.credentials if credentials else None)


TenantDep = Annotated[Tenant, Depends(get_tenant)]
