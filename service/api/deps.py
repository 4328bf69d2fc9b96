"""Request dependencies: the database session and the authenticated tenant."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.orm import Session

from service.database import Database
from service.errors import ProblemError
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


def authentication_error(request: Request) -> ProblemError | None:
    """Why the request's bearer key is refused, or None when it is accepted.

    FastAPI parses the body and path before it runs dependencies, so an unauthenticated request
    with a bad body would get a 422; the error handlers ask this first, to answer 401 instead.
    """
    scheme, key = get_authorization_scheme_param(request.headers.get("authorization"))
    database: Database = request.app.state.database
    with database.session() as session:
        try:
            TenantService(session).authenticate(key if scheme.lower() == "bearer" else None)
        except ProblemError as error:
            return error
    return None


TenantDep = Annotated[Tenant, Depends(get_tenant)]
