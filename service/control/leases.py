"""Claiming jobs with a lease, so that any number of controller replicas share the work.

A replica owns a job while its lease is unexpired; it renews the lease every tick. A replica that
dies stops renewing, and once the lease runs out another one takes the job over and reconciles
what was left in between (intents without results).

On Postgres the claim is ``SELECT … FOR UPDATE SKIP LOCKED``: replicas never wait on each other's
rows. SQLite has one writer at a time, so a conditional UPDATE that re-checks the lease is enough
there and is correct on Postgres too.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, defer

from service.models import Job, JobStatus

ACTIVE = (JobStatus.PENDING.value, JobStatus.RUNNING.value)


def _claimable(owner: str, now: datetime):
    return and_(
        Job.status.in_(ACTIVE),
        or_(
            Job.lease_owner.is_(None),
            Job.lease_owner == owner,
            Job.lease_expires_at.is_(None),
            Job.lease_expires_at < now,
        ),
    )


def claim(session: Session, owner: str, now: datetime, ttl_s: float, limit: int) -> list[Job]:
    """Take (or keep) the leases of up to ``limit`` active jobs; oldest first. Uncommitted."""
    expires = now + timedelta(seconds=ttl_s)
    query = (
        select(Job.id).where(_claimable(owner, now)).order_by(Job.created_at, Job.id).limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        ids = list(session.scalars(query.with_for_update(skip_locked=True, of=Job)))
        if ids:
            session.execute(
                update(Job)
                .where(Job.id.in_(ids))
                .values(lease_owner=owner, lease_expires_at=expires, version=Job.version + 1)
                .execution_options(synchronize_session=False)
            )
    else:
        ids = []
        for job_id in session.scalars(query).all():
            taken = session.execute(
                update(Job)
                .where(Job.id == job_id, _claimable(owner, now))
                .values(lease_owner=owner, lease_expires_at=expires, version=Job.version + 1)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount == 1:
                ids.append(job_id)
    if not ids:
        return []
    return list(
        session.scalars(
            select(Job)
            .where(Job.id.in_(ids))
            .order_by(Job.created_at, Job.id)
            # the spec never changes and the loop keeps it parsed: read when first needed
            # (``LoopRepository.load_specs``); the result is only ever written here
            .options(defer(Job.spec), defer(Job.result))
            .execution_options(populate_existing=True)
        )
    )


def release(job: Job) -> None:
    """Give up the lease of a job that has ended."""
    job.lease_owner = None
    job.lease_expires_at = None


def new_owner_id() -> str:
    return f"controller-{uuid.uuid4().hex[:12]}"
