"""ORM tables. Importing this package registers every table on ``Base.metadata``."""

from service.models.base import Base
from service.models.dashboard import Dashboard
from service.models.enums import (
    AllocationState,
    BillState,
    IdempotencyState,
    InvocationOutcome,
    InvocationState,
    JobKind,
    JobStatus,
    StageKind,
    WorkStatus,
)
from service.models.idempotency import IdempotencyKey
from service.models.job import Job, Stage, Task
from service.models.ledger import Allocation, Invocation, Observation, PredictorState
from service.models.prior import CurvePrior
from service.models.tenant import ApiKey, Tenant
from service.models.usage import UsageHour
from service.models.webhook import Webhook, WebhookDelivery

__all__ = [
    "Allocation",
    "AllocationState",
    "ApiKey",
    "Base",
    "BillState",
    "CurvePrior",
    "Dashboard",
    "IdempotencyKey",
    "IdempotencyState",
    "Invocation",
    "InvocationOutcome",
    "InvocationState",
    "Job",
    "JobKind",
    "JobStatus",
    "Observation",
    "PredictorState",
    "Stage",
    "StageKind",
    "Task",
    "Tenant",
    "UsageHour",
    "Webhook",
    "WebhookDelivery",
    "WorkStatus",
]
