"""Curves a tenant's finished jobs learned, kept for its next jobs on the same function."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, UtcDateTime, new_id, utcnow

JsonDoc = JSON().with_variant(JSONB(), "postgresql")


class CurvePrior(Base):
    """One task shape's measured memory → duration points, as the latest job of a tenant that
    ran it left them. Keyed so that a job only ever starts from what the same tenant measured
    on the same work: the function, its dataset and code version (and, for training, its
    workers and parameters) hashed into ``workload_key``, the architecture and the shape."""

    __tablename__ = "curve_priors"
    __table_args__ = (
        UniqueConstraint("tenant_id", "workload_key", "architecture", "shape"),
        Index("ix_curve_priors_source_job", "source_job_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    workload_key: Mapped[str] = mapped_column(String(64))  # sha256 hex
    function: Mapped[str] = mapped_column(String(200))
    dataset: Mapped[str] = mapped_column(Text)
    code_version: Mapped[str] = mapped_column(String(128), default="")
    architecture: Mapped[str] = mapped_column(String(8))
    shape: Mapped[str] = mapped_column(String(200))
    # {"points": [[memory_mb, ms per epoch, runs], ...], "init_ms": ..., "peak_mb": ...}
    state: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    observations: Mapped[int] = mapped_column(Integer, default=0)
    source_job_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL")
    )
    learned_at: Mapped[datetime] = mapped_column(UtcDateTime)  # the loop's clock
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
