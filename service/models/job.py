"""Jobs, their stages and their tasks.

A job is driven by the control loop, which claims it with a lease (``lease_owner``,
``lease_expires_at``) so that several controller replicas share the work and a dead replica's
jobs are taken over when its lease runs out.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, Money, UtcDateTime, new_id, utcnow
from service.models.enums import JobKind, JobStatus, StageKind, WorkStatus, check_in

JsonDoc = JSON().with_variant(JSONB(), "postgresql")


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(check_in("kind", JobKind), name="kind"),
        CheckConstraint(check_in("status", JobStatus), name="status"),
        CheckConstraint("deadline_s > 0", name="deadline_positive"),
        Index("ix_jobs_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_jobs_status_lease", "status", "lease_expires_at"),
        Index("ix_jobs_tenant_finished", "tenant_id", "finished_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.PENDING.value)
    status_reason: Mapped[str | None] = mapped_column(Text)
    policy: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    deadline_s: Mapped[float] = mapped_column(Float)
    max_cost_usd: Mapped[Decimal | None] = mapped_column(Money)
    deadline_missed: Mapped[bool | None] = mapped_column(Boolean)
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Optimistic concurrency: an UPDATE from a replica whose view is stale matches no row.
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class Stage(Base):
    __tablename__ = "stages"
    __table_args__ = (
        CheckConstraint(check_in("kind", StageKind), name="kind"),
        CheckConstraint(check_in("status", WorkStatus), name="status"),
        UniqueConstraint("job_id", "position"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    # The stage's number in its workflow: a training round's r, an HPO rung's index in its
    # bracket; None for power-tuning's profiling stage. Set by the workflow, never parsed.
    round: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=WorkStatus.PENDING.value)
    planned_memory_mb: Mapped[int | None] = mapped_column(Integer)
    planned_deadline_s: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint(check_in("status", WorkStatus), name="status"),
        CheckConstraint("architecture IN ('x86_64', 'arm64')", name="architecture"),
        UniqueConstraint("stage_id", "key"),
        Index("ix_tasks_job_status", "job_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    stage_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stages.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))  # e.g. "trial-0017" or "worker-003"
    # Tasks of one shape have the same footprint (a trial configuration's model size, or the
    # training workers); policies allocate memory per shape.
    shape: Mapped[str] = mapped_column(String(200), default="default")
    worker: Mapped[int | None] = mapped_column(Integer)  # a training worker's index, else None
    status: Mapped[str] = mapped_column(String(16), default=WorkStatus.PENDING.value)
    params: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    function_name: Mapped[str] = mapped_column(String(200))
    memory_mb: Mapped[int | None] = mapped_column(Integer)
    # The architecture the policy decided for it (architecture "auto"); None: the spec's.
    architecture: Mapped[str | None] = mapped_column(String(8))
    epoch_from: Mapped[int | None] = mapped_column(Integer)
    epoch_to: Mapped[int | None] = mapped_column(Integer)
    # A checkpoint URI, or a list of them to average (the workers of the previous round).
    checkpoint_in: Mapped[str | list[str] | None] = mapped_column(JsonDoc)
    checkpoint_out: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None] = mapped_column(UtcDateTime)  # retry back-off
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
