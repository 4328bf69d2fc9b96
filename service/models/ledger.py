"""What the control loop did: invocations (the cost ledger), memory changes, metric samples.

Each invocation and each memory change is written as an *intent* before the platform call and
completed after it (docs/safety.md), so a restarted controller can tell what may have happened.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
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
from sqlalchemy.orm import Mapped, mapped_column

from service.domain.lambda_limits import MAX_MEMORY_MB, MIN_MEMORY_MB
from service.models.base import Base, Money, UtcDateTime, new_id, utcnow
from service.models.enums import (
    AllocationState,
    BillState,
    InvocationOutcome,
    InvocationState,
    check_in,
)
from service.models.job import JsonDoc


class Invocation(Base):
    __tablename__ = "invocations"
    __table_args__ = (
        CheckConstraint(check_in("state", InvocationState), name="state"),
        CheckConstraint(f"outcome IS NULL OR {check_in('outcome', InvocationOutcome)}", "outcome"),
        CheckConstraint(
            f"memory_mb BETWEEN {MIN_MEMORY_MB} AND {MAX_MEMORY_MB}", name="memory_range"
        ),
        CheckConstraint("architecture IN ('x86_64', 'arm64')", name="architecture"),
        CheckConstraint(f"bill_state IS NULL OR {check_in('bill_state', BillState)}", "bill_state"),
        # One row per attempt: a re-run of the loop cannot record the same attempt twice.
        UniqueConstraint("task_id", "attempt"),
        Index("ix_invocations_job_state", "job_id", "state"),
        Index("ix_invocations_bill_state", "bill_state"),
        # dashboard queries: a job's invocations in order, and a tenant's usage over time
        Index("ix_invocations_job_created", "job_id", "created_at", "id"),
        Index("ix_invocations_finished", "finished_at"),
        Index(
            "ix_invocations_job_finished",
            "job_id",
            "finished_at",
            postgresql_include=[
                "memory_mb",
                "billed_ms",
                "compute_cost_usd",
                "request_cost_usd",
            ],
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    stage_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stages.id", ondelete="CASCADE"))
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    function_name: Mapped[str] = mapped_column(String(200))
    memory_mb: Mapped[int] = mapped_column(Integer)
    # the architecture the function really ran on (the spec's claim until the result is in)
    architecture: Mapped[str] = mapped_column(String(8), default="x86_64")
    state: Mapped[str] = mapped_column(String(16), default=InvocationState.INTENT.value)
    outcome: Mapped[str | None] = mapped_column(String(16))
    request_id: Mapped[str | None] = mapped_column(String(64))
    duration_ms: Mapped[float | None] = mapped_column(Float)
    billed_ms: Mapped[int | None] = mapped_column(Integer)
    init_ms: Mapped[float | None] = mapped_column(Float)
    max_memory_used_mb: Mapped[int | None] = mapped_column(Integer)
    # CPU time the run used (Lambda Insights' cpu_total_time; the emulator measures it): with
    # the duration it splits a run into CPU work and I/O. NULL when the platform did not say.
    cpu_ms: Mapped[float | None] = mapped_column(Float)
    cold_start: Mapped[bool | None] = mapped_column(Boolean)
    compute_cost_usd: Mapped[Decimal | None] = mapped_column(Money)
    request_cost_usd: Mapped[Decimal | None] = mapped_column(Money)
    # NULL for an intent; "pending" until the REPORT line is found (see BillState)
    bill_state: Mapped[str | None] = mapped_column(String(8))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Allocation(Base):
    """One memory change of one function (or the vetoed proposal of one), with its reason."""

    __tablename__ = "allocations"
    __table_args__ = (
        CheckConstraint(check_in("state", AllocationState), name="state"),
        CheckConstraint(f"to_mb BETWEEN {MIN_MEMORY_MB} AND {MAX_MEMORY_MB}", name="to_range"),
        Index("ix_allocations_job_created", "job_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    stage_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("stages.id", ondelete="CASCADE"))
    task_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    function_name: Mapped[str] = mapped_column(String(200))
    from_mb: Mapped[int | None] = mapped_column(Integer)
    to_mb: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=AllocationState.INTENT.value)
    rule: Mapped[str | None] = mapped_column(String(64))  # the guard rule that decided or vetoed
    reason: Mapped[str] = mapped_column(Text)
    predicted_gain_usd: Mapped[float | None] = mapped_column(Float)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    applied_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Observation(Base):
    """A metric sample the predictors learn from (REPORT line, CloudWatch or Insights datapoint)."""

    __tablename__ = "observations"
    __table_args__ = (
        CheckConstraint("source IN ('report', 'cloudwatch', 'insights')", name="source"),
        Index("ix_observations_series", "series", "metric", "observed_at"),
        Index("ix_observations_job", "job_id", "observed_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    series: Mapped[str] = mapped_column(String(255))  # e.g. "<job>/<stage>/<function>"
    metric: Mapped[str] = mapped_column(String(64))  # duration_ms, max_memory_used_mb, loss, ...
    value: Mapped[float] = mapped_column(Float)
    memory_mb: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))
    observed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class PredictorState(Base):
    """What a predictor has learned, small and JSON (parameters and recent points, never a
    pickled object): a restarted or second controller resumes from it without relearning."""

    __tablename__ = "predictor_states"
    __table_args__ = (UniqueConstraint("scope", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    # "job:<id>" for a job's predictors, "function:<name>" for a platform function's metrics
    scope: Mapped[str] = mapped_column(String(255))
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))  # e.g. "memory-curve:hidden=64"
    kind: Mapped[str] = mapped_column(String(32))  # memory-curve, forecaster, loss-curve
    state: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    observations: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
