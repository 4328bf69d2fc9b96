"""The stored vocabularies, kept here for compatibility: they live in ``service.domain.enums``,
which the pure layers import without loading SQLAlchemy."""

from service.domain.enums import (
    AllocationState,
    BillState,
    IdempotencyState,
    InvocationOutcome,
    InvocationState,
    JobKind,
    JobStatus,
    StageKind,
    WorkStatus,
    check_in,
)

__all__ = [
    "AllocationState",
    "BillState",
    "IdempotencyState",
    "InvocationOutcome",
    "InvocationState",
    "JobKind",
    "JobStatus",
    "StageKind",
    "WorkStatus",
    "check_in",
]
