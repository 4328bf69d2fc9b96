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

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.orm import Session, defer

from service.models import Job, JobStatus

ACTIVE = (JobStatus.PENDING.value, JobStatus.RUNNING.value)


# The claim's statements, built once (every tick runs them); their parameters: the claiming
# ``owner``, the loop's clock ``now`` (also the rows' ``updated_at``: the loop's clock, not the
# database's), the lease's end ``expires``, and the jobs.
_CLAIMABLE = and_(
    Job.status.in_(ACTIVE),
    or_(
        Job.lease_owner.is_(None),
        Job.lease_owner == bindparam("owner"),
        Job.lease_expires_at.is_(None),
        Job.lease_expires_at < bindparam("now"),
    ),
)
_CANDIDATES = (
    select(Job.id).where(_CLAIMABLE).order_by(Job.created_at, Job.id).limit(bindparam("limit"))
)
_CANDIDATES_LOCKED = _CANDIDATES.with_for_update(skip_locked=True, of=Job)  # Postgres
_LEASE = {
    "lease_owner": bindparam("owner"),
    "lease_expires_at": bindparam("expires"),
    "version": Job.version + 1,
    "updated_at": bindparam("now"),
}
_TAKE_MANY = (
    update(Job)
    .where(Job.id.in_(bindparam("ids", expanding=True)))
    .values(_LEASE)
    .execution_options(synchronize_session=False)
)
# SQLite (one writer at a time): the oldest claimable jobs, taken in one statement that
# re-checks the lease and returns the rows it took — as ``_CLAIMED`` reads them (their spec and
# result left unread), so the claim is one statement
_TAKE_OLDEST = (
    select(Job)
    .from_statement(
        update(Job)
        .where(Job.id.in_(_CANDIDATES), _CLAIMABLE)
        .values(_LEASE)
        .returning(*(c for c in Job.__table__.columns if c.key not in ("spec", "result")))
    )
    .execution_options(synchronize_session=False, populate_existing=True)
)
_CLAIMED = (
    select(Job)
    .where(Job.id.in_(bindparam("ids", expanding=True)))
    .order_by(Job.created_at, Job.id)
    # the spec never changes and the loop keeps it parsed: read when first needed
    # (``LoopRepository.load_specs``); the result is only ever written here
    .options(defer(Job.spec), defer(Job.result))
    .execution_options(populate_existing=True)
)


def claim(session: Session, owner: str, now: datetime, ttl_s: float, limit: int) -> list[Job]:
    """Take (or keep) the leases of up to ``limit`` active jobs; oldest first. Uncommitted."""
    params = {"owner": owner, "now": now, "expires": now + timedelta(seconds=ttl_s)}
    if session.get_bind().dialect.name == "postgresql":
        ids = list(session.scalars(_CANDIDATES_LOCKED, params | {"limit": limit}))
        if ids:
            session.execute(_TAKE_MANY, params | {"ids": ids})
    else:
        taken = list(session.scalars(_TAKE_OLDEST, params | {"limit": limit}))
        return sorted(taken, key=lambda job: (job.created_at, job.id))  # as ``_CLAIMED`` orders
    if not ids:
        return []
    return list(session.scalars(_CLAIMED, {"ids": ids}))


def release(job: Job) -> None:
    """Give up the lease of a job that has ended."""
    job.lease_owner = None
    job.lease_expires_at = None


def new_owner_id() -> str:
    return f"controller-{uuid.uuid4().hex[:12]}"
