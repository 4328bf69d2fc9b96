"""Idempotency keys for job submission.

A key is claimed in its own short transaction (the *recovery point*, as in Stripe's design)
before the job is created, and completed together with the job in the request's commit. That is
what lets a concurrent duplicate see the claim and get 409 instead of waiting, on Postgres and on
SQLite alike. If creating the job fails, the claim is released so the client can retry; a claim
left behind by a crashed process expires after ``lock_seconds``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.database import commit
from service.errors import BadRequest, Conflict, Unprocessable
from service.models import IdempotencyKey, IdempotencyState

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict[str, Any]


def request_hash(document: dict[str, Any]) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise BadRequest(f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable ASCII characters")
    return key


class IdempotencyKeys:
    def __init__(self, session: Session, lock_seconds: float) -> None:
        self.session = session
        self.lock = timedelta(seconds=lock_seconds)

    def claim(
        self, tenant_id: uuid.UUID, key: str, digest: str, now: datetime
    ) -> Replay | IdempotencyKey:
        """Either the stored response of a finished request, or a fresh claim (committed)."""
        existing = self._find(tenant_id, key)
        if existing is None:
            claim = IdempotencyKey(tenant_id=tenant_id, key=key, request_hash=digest, locked_at=now)
            self.session.add(claim)
            try:
                commit(self.session)
                return claim
            except IntegrityError:
                self.session.rollback()
                existing = self._find(tenant_id, key)
                if existing is None:  # the other claim was released meanwhile
                    raise Conflict("a request with this Idempotency-Key is in progress") from None
        return self._resolve(existing, digest, now)

    def complete(self, claim: IdempotencyKey, job_id: uuid.UUID, status: int, body: dict) -> None:
        claim.state = IdempotencyState.COMPLETED.value
        claim.job_id = job_id
        claim.response_status = status
        claim.response_body = body

    def release(self, claim: IdempotencyKey) -> None:
        """Drop a claim whose request failed, so that a retry is not refused."""
        self.session.rollback()
        self.session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.id == claim.id,
                IdempotencyKey.state == IdempotencyState.IN_PROGRESS.value,
            )
        )
        commit(self.session)

    def _find(self, tenant_id: uuid.UUID, key: str) -> IdempotencyKey | None:
        return self.session.scalar(
            select(IdempotencyKey).where(
                IdempotencyKey.tenant_id == tenant_id, IdempotencyKey.key == key
            )
        )

    def _resolve(
        self, existing: IdempotencyKey, digest: str, now: datetime
    ) -> Replay | IdempotencyKey:
        if existing.request_hash != digest:
            raise Unprocessable(
                "this Idempotency-Key was already used with a different request body"
            )
        if existing.state == IdempotencyState.COMPLETED.value:
            assert existing.response_status is not None and existing.response_body is not None
            return Replay(existing.response_status, existing.response_body)
        if now - existing.locked_at < self.lock:
            raise Conflict("a request with this Idempotency-Key is in progress")
        # An abandoned claim (its process died): take it over, unless someone else just did.
        taken = self.session.execute(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.id == existing.id,
                IdempotencyKey.locked_at == existing.locked_at,
                IdempotencyKey.state == IdempotencyState.IN_PROGRESS.value,
            )
            .values(locked_at=now)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:
            self.session.rollback()
            raise Conflict("a request with this Idempotency-Key is in progress")
        commit(self.session)
        self.session.refresh(existing)
        return existing
