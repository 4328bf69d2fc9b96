"""The closed vocabularies stored in the database (as strings, checked by constraints).

Standard library only: the pure layers import these without SQLAlchemy.
"""

from __future__ import annotations

from enum import StrEnum


class JobKind(StrEnum):
    HPO = "hpo"
    TRAINING = "training"


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class StageKind(StrEnum):
    PROFILING = "profiling"  # power-tuning's billed measurement runs
    RUNG = "rung"  # a successive-halving rung of an HPO job
    ROUND = "round"  # a synchronous round of training workers


class WorkStatus(StrEnum):
    """Status of a stage or a task."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class InvocationState(StrEnum):
    INTENT = "intent"  # row written, platform call not yet known to have happened
    DONE = "done"  # result recorded
    AMBIGUOUS = "ambiguous"  # the call may have run (read timeout, 5xx after send)


class InvocationOutcome(StrEnum):
    OK = "ok"
    HANDLED = "handled"
    UNHANDLED = "unhandled"
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out_of_memory"
    THROTTLED = "throttled"


class BillState(StrEnum):
    """Whether an invocation's bill is complete."""

    FINAL = "final"  # REPORT line read (or never ran: throttled, free)
    PENDING = "pending"  # reached Lambda, REPORT not seen yet: request billed, duration to come
    MISSING = "missing"  # no REPORT found in the logs within the reconcile horizon


class AllocationState(StrEnum):
    INTENT = "intent"
    APPLIED = "applied"
    FAILED = "failed"
    VETOED = "vetoed"


class IdempotencyState(StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


def check_in(column: str, enum: type[StrEnum]) -> str:
    values = ", ".join(f"'{member.value}'" for member in enum)
    return f"{column} IN ({values})"
