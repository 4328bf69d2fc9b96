"""Tenants: creation, key issue and revocation, and authentication of a bearer key."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.orm import Session

from service.errors import Conflict, Forbidden, NotFound, Unauthenticated, Unprocessable
from service.models import ApiKey, Tenant
from service.models.base import utcnow
from service.tenants import keys
from service.tenants.repository import TenantRepository

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class IssuedKey:
    tenant: Tenant
    api_key: str  # plaintext, shown once


class TenantService:
    def __init__(self, session: Session, key_prefix: str = "cesk") -> None:
        self.repository = TenantRepository(session)
        self.key_prefix = key_prefix

    def create(self, name: str) -> IssuedKey:
        if not _NAME.match(name):
            raise Unprocessable(
                f"invalid tenant name {name!r}: 1-100 letters, digits, '.', '_' or '-'"
            )
        if self.repository.by_name(name) is not None:
            raise Conflict(f"tenant {name!r} already exists")
        tenant = self.repository.add(Tenant(name=name))
        return IssuedKey(tenant, self._issue(tenant))

    def issue_key(self, name: str) -> IssuedKey:
        tenant = self._by_name(name)
        return IssuedKey(tenant, self._issue(tenant))

    def revoke_keys(self, name: str) -> int:
        tenant = self._by_name(name)
        revoked = 0
        for key in self.repository.keys_of(tenant.id):
            if key.revoked_at is None:
                key.revoked_at = utcnow()
                revoked += 1
        return revoked

    def set_disabled(self, name: str, disabled: bool) -> None:
        tenant = self._by_name(name)
        tenant.disabled_at = utcnow() if disabled else None

    def list(self) -> list[Tenant]:
        return self.repository.list()

    def has_any(self) -> bool:
        return self.repository.count() > 0

    def authenticate(self, plaintext: str | None) -> Tenant:
        if not plaintext:
            raise Unauthenticated("missing API key: send 'Authorization: Bearer <key>'")
        found = self.repository.key_with_tenant(keys.digest(plaintext))
        if found is None:
            raise Unauthenticated("invalid API key")
        key, tenant = found
        if key.revoked_at is not None:
            raise Unauthenticated("API key revoked")
        if tenant.disabled_at is not None:
            raise Forbidden(f"tenant {tenant.name!r} is disabled")
        return tenant

    def _by_name(self, name: str) -> Tenant:
        tenant = self.repository.by_name(name)
        if tenant is None:
            raise NotFound(f"no tenant named {name!r}")
        return tenant

    def _issue(self, tenant: Tenant) -> str:
        new = keys.generate(self.key_prefix)
        self.repository.add_key(
            ApiKey(tenant_id=tenant.id, display_prefix=new.display_prefix, key_hash=new.key_hash)
        )
        return new.plaintext
