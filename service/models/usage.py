"""Hourly usage rollups, kept by database triggers on ``invocations`` (migration 0004).

One row per (job, hour, memory size) with the sums of the billed invocations that finished in
that hour. A trigger adds each invocation when it gets its bill (and moves it if its bill, size
or finishing time is rewritten), in the same transaction as the write, whatever code writes it;
so the rollup always equals the ledger. ``/v1/usage`` reads whole hours from here and only the
partial hours at the window's edges from ``invocations``.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, Integer, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, Money


class UsageHour(Base):
    __tablename__ = "usage_hours"

    job_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # floor(epoch s / 3600)
    memory_mb: Mapped[int] = mapped_column(Integer, primary_key=True)
    compute_usd: Mapped[Decimal] = mapped_column(Money)
    request_usd: Mapped[Decimal] = mapped_column(Money)
    mb_ms: Mapped[int] = mapped_column(BigInteger)
    invocations: Mapped[int] = mapped_column(Integer)
