"""Dashboard queries: a job's invocations and series, a tenant's usage and functions.

A fixed number of statements per call, whatever the number of jobs or invocations (the SQL is in
``repository.py``); the predictors' stored states are read to add what was forecast.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from service.errors import BadRequest, Unprocessable
from service.jobs.repository import JobRepository
from service.jobs.service import JobService
from service.models import Allocation, Job, Stage, Tenant
from service.models.base import utcnow
from service.platform.interface import variant_alias
from service.prediction.forecaster import ROUND_DURATIONS, ForecasterBank
from service.prediction.loss_curve import LossCurve
from service.prediction.memory_curve import MemoryCurve
from service.usage.repository import (
    GROUP_BY,
    AliasRow,
    InvocationRow,
    MemoryRow,
    UsageRepository,
)

MAX_BUCKETS = 1000
SERIES_COST_POINTS = 200
FORECAST_LEVEL = 0.9
STATIC_SIZE = (
    "each job's billed invocations re-priced at the largest memory size that job used in the "
    "window, for the same billed time (compute $ × largest MB / MB; request charges unchanged). "
    "Duration is held fixed: a function is never slower with more memory, so this is an upper "
    "bound on the static cost and the saving is an upper bound too; a job that never changed "
    "size shows no saving."
)

_STEP = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_step(text: str) -> int:
    """'3600', '15m', '1h', '1d' → seconds."""
    match = _STEP.match(text)
    if not match or int(match.group(1)) == 0:
        raise Unprocessable(
            f"step {text!r} is not a positive duration: use seconds or a number with s, m, h, "
            "d or w (e.g. 3600, 15m, 1h, 1d)"
        )
    return int(match.group(1)) * _UNITS[match.group(2)]


def _encode(*parts: object) -> str:
    raw = "|".join(str(p) for p in parts)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str, count: int) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise BadRequest("invalid cursor: pass the next_cursor of a previous page") from None
    parts = raw.split("|", count - 1)
    if len(parts) != count:
        raise BadRequest("invalid cursor: pass the next_cursor of a previous page")
    return parts


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise Unprocessable(f"timestamp {value.isoformat()} has no time zone; add Z or +00:00")
    return value.astimezone(UTC)


# -- results ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InvocationPage:
    job_id: uuid.UUID
    rows: list[InvocationRow]
    next_cursor: str | None
    # the architecture the job's function was created on: an invocation on another one ran
    # that architecture's variant (architecture "auto": ``mem-<MB>-arm64``)
    base_architecture: str = "x86_64"


@dataclass(frozen=True)
class RoundPoint:
    stage: Stage
    actual_s: float | None
    slowest_invocation_ms: float | None
    predicted_ms: float | None
    memory_mb: int | None
    epochs: int | None
    invocations: int
    loss: float | None
    best_loss: float | None
    predicted_loss: float | None


@dataclass(frozen=True)
class Forecast:
    shape: str
    memory_mb: int | None
    epochs: int | None
    mean_ms: float | None
    lower_ms: float | None
    upper_ms: float | None
    level: float
    observations: int


@dataclass(frozen=True)
class CostPoint:
    at: datetime
    usd: Decimal
    cumulative_usd: Decimal
    invocations: int


@dataclass(frozen=True)
class JobSeries:
    job: Job
    memory: list[MemoryRow]
    rounds: list[RoundPoint]
    forecasts: list[Forecast]
    cost_step_s: int
    cost: list[CostPoint]


@dataclass
class UsagePoint:
    at: datetime
    group: str | None
    compute_usd: Decimal = Decimal(0)
    requests_usd: Decimal = Decimal(0)
    mb_ms: int = 0
    invocations: int = 0
    active_jobs: int = 0
    static_compute_usd: Decimal = Decimal(0)
    jobs_finished: int = 0
    deadline_met: int = 0
    deadline_known: int = 0

    @property
    def cost_usd(self) -> Decimal:
        return self.compute_usd + self.requests_usd

    @property
    def static_cost_usd(self) -> Decimal:
        return self.static_compute_usd + self.requests_usd

    @property
    def gb_seconds(self) -> Decimal:
        return Decimal(self.mb_ms) / 1024 / 1000

    @property
    def deadline_attainment(self) -> float | None:
        return self.deadline_met / self.deadline_known if self.deadline_known else None


@dataclass(frozen=True)
class Usage:
    start: datetime
    end: datetime
    step_s: int
    group_by: str | None
    points: list[UsagePoint]
    totals: list[UsagePoint]
    next_cursor: str | None


@dataclass(frozen=True)
class FunctionUsage:
    function_name: str
    current_memory_mb: int | None
    last_change: Allocation | None
    aliases: list[AliasRow] = field(default_factory=list)

    @staticmethod
    def alias_name(memory_mb: int) -> str:
        return variant_alias(memory_mb)


@dataclass(frozen=True)
class FunctionPage:
    since: datetime
    functions: list[FunctionUsage]
    next_cursor: str | None


class UsageService:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.jobs = JobService(session)
        self.repo = UsageRepository(session)

    # -- one job ----------------------------------------------------------------------------
    def invocations(
        self, tenant: Tenant, job_id: uuid.UUID, cursor: str | None, limit: int
    ) -> InvocationPage:
        job = self.jobs.get(tenant, job_id)
        after = None
        if cursor:
            created, invocation_id = _decode(cursor, 2)
            try:
                at = datetime.fromisoformat(created)
                if at.tzinfo is None:
                    raise ValueError("naive")
                after = (at.astimezone(UTC), uuid.UUID(invocation_id))
            except (ValueError, OverflowError):
                raise BadRequest(
                    "invalid cursor: pass the next_cursor of a previous page"
                ) from None
        rows = self.repo.invocations(job.id, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1].invocation if rows else None
        architecture = (job.spec.get("workload") or {}).get("architecture") or "x86_64"
        return InvocationPage(
            job.id,
            rows,
            _encode(last.created_at.isoformat(), last.id) if more and last else None,
            "x86_64" if architecture == "auto" else architecture,
        )

    def series(self, tenant: Tenant, job_id: uuid.UUID) -> JobSeries:
        job = self.jobs.get(tenant, job_id)
        stages = JobRepository(self.session).stages(job.id)
        memory = self.repo.memory_by_stage(job.id)
        by_stage = {row.stage_id: row for row in self.repo.rounds(job.id)}
        states = {state.name: state for state in self.repo.predictor_states(job.id)}
        curves = {
            name.split(":", 1)[1]: MemoryCurve.from_state(state.state)
            for name, state in states.items()
            if state.kind == "memory-curve"
        }
        loss_curve = (
            LossCurve.from_state(states["loss-curve"].state) if "loss-curve" in states else None
        )
        rounds: list[RoundPoint] = []
        for index, stage in enumerate(stages):
            row = by_stage.get(stage.id)
            memory_mb = row.memory_mb if row else stage.planned_memory_mb
            epochs = row.epochs if row else None
            predicted = None
            if curves and memory_mb and epochs:
                predicted = max(c.predict(memory_mb) for c in curves.values()) * epochs
            predicted_loss = None
            if loss_curve is not None and loss_curve.fitted and stage.kind == "round":
                predicted_loss = float(loss_curve.predict(np.array([index + 1.0]))[0])
            rounds.append(
                RoundPoint(
                    stage=stage,
                    actual_s=(
                        (stage.finished_at - stage.started_at).total_seconds()
                        if stage.started_at and stage.finished_at
                        else None
                    ),
                    slowest_invocation_ms=row.slowest_ms if row else None,
                    predicted_ms=predicted,
                    memory_mb=memory_mb,
                    epochs=epochs,
                    invocations=row.invocations if row else 0,
                    loss=_finite(row.mean_loss) if row else None,
                    best_loss=_finite(row.best_loss) if row else None,
                    predicted_loss=_finite(predicted_loss),
                )
            )
        forecasts = self._forecasts(states, curves, rounds)
        step = self._cost_step(job)
        cost, total = [], Decimal(0)
        for index, compute, requests, count in self.repo.cost_buckets(job.id, step):
            total += compute + requests
            cost.append(
                CostPoint(
                    datetime.fromtimestamp(index * step, UTC), compute + requests, total, count
                )
            )
        return JobSeries(job, memory, rounds, forecasts, step, cost)

    @staticmethod
    def _forecasts(states, curves, rounds: list[RoundPoint]) -> list[Forecast]:
        """The next round's duration per shape: the memory curve at the last round's size and
        epochs, times the forecaster's interval for the ratio of actual to curve."""
        last = next((r for r in reversed(rounds) if r.memory_mb and r.epochs), None)
        forecasts = []
        for name, state in sorted(states.items()):
            if state.kind != "forecaster" or not name.startswith("duration:"):
                continue
            shape = name.split(":", 1)[1]
            bank = ForecasterBank(1, ROUND_DURATIONS)
            bank.load_series_state(0, state.state)
            ratio = bank.forecast(np.array([0]), horizon=1, level=FORECAST_LEVEL)
            curve = curves.get(shape)
            base = (
                curve.predict(last.memory_mb) * last.epochs
                if curve is not None and last is not None and last.memory_mb and last.epochs
                else None
            )

            def scaled(values: np.ndarray, base: float | None = base) -> float | None:
                value = float(values[0, 0])
                return _finite(value * base) if base is not None else None

            forecasts.append(
                Forecast(
                    shape=shape,
                    memory_mb=last.memory_mb if last else None,
                    epochs=last.epochs if last else None,
                    mean_ms=scaled(ratio.mean),
                    lower_ms=scaled(ratio.lower),
                    upper_ms=scaled(ratio.upper),
                    level=FORECAST_LEVEL,
                    observations=state.observations,
                )
            )
        return forecasts

    @staticmethod
    def _cost_step(job: Job) -> int:
        """Whole seconds such that the job's life fits in about ``SERIES_COST_POINTS`` buckets."""
        start = job.started_at or job.created_at
        end = job.finished_at or utcnow()
        span = max((end - start).total_seconds(), 1.0)
        return max(1, math.ceil(span / SERIES_COST_POINTS))

    # -- a tenant's usage -------------------------------------------------------------------
    def usage(
        self,
        tenant: Tenant,
        *,
        start: datetime | None,
        end: datetime | None,
        step: str | None,
        group_by: str | None,
        cursor: str | None,
        limit: int,
    ) -> Usage:
        if group_by is not None and group_by not in GROUP_BY:
            raise Unprocessable(f"group_by must be one of {', '.join(GROUP_BY)}")
        end = _aware(end) if end else utcnow()
        start = _aware(start) if start else end - timedelta(days=7)
        if start >= end:
            raise Unprocessable("from must be before to")
        step_s = parse_step(step) if step else _default_step(end - start)
        # Buckets are aligned to multiples of the step since the epoch; a page holds ``limit``.
        first = math.floor(start.timestamp() / step_s)
        if cursor:
            (text,) = _decode(cursor, 1)
            if not text.isdigit():
                raise BadRequest("invalid cursor: pass the next_cursor of a previous page")
            first = max(first, int(text))
        page_start = max(start, datetime.fromtimestamp(first * step_s, UTC))
        page_end = min(end, datetime.fromtimestamp((first + limit) * step_s, UTC))
        next_cursor = _encode(first + limit) if page_end < end else None
        if page_start >= page_end:
            return Usage(start, end, step_s, group_by, [], [], None)

        points: dict[tuple[int, str | None], UsagePoint] = {}

        def point(index: int, group: str | None) -> UsagePoint:
            key = (index, group)
            if key not in points:
                points[key] = UsagePoint(datetime.fromtimestamp(index * step_s, UTC), group)
            return points[key]

        for row in self.repo.usage(tenant.id, page_start, page_end, step_s, group_by):
            p = point(row.bucket, row.key)
            p.compute_usd, p.requests_usd, p.mb_ms = row.compute_usd, row.requests_usd, row.mb_ms
            p.invocations, p.active_jobs = row.invocations, row.active_jobs
            p.static_compute_usd = row.static_compute_usd
        for row in self.repo.outcomes(tenant.id, page_start, page_end, step_s, group_by):
            p = point(row.bucket, row.key)
            p.jobs_finished, p.deadline_met = row.finished, row.deadline_met
            p.deadline_known = row.deadline_known
        ordered = [points[k] for k in sorted(points, key=lambda k: (k[0], k[1] or ""))]
        totals: dict[str | None, UsagePoint] = {}
        for p in ordered:
            t = totals.setdefault(p.group, UsagePoint(page_start, p.group))
            t.compute_usd += p.compute_usd
            t.requests_usd += p.requests_usd
            t.mb_ms += p.mb_ms
            t.invocations += p.invocations
            t.static_compute_usd += p.static_compute_usd
            t.jobs_finished += p.jobs_finished
            t.deadline_met += p.deadline_met
            t.deadline_known += p.deadline_known
            t.active_jobs = max(t.active_jobs, p.active_jobs)
        return Usage(
            page_start,
            page_end,
            step_s,
            group_by,
            ordered,
            [totals[k] for k in sorted(totals, key=lambda k: k or "")],
            next_cursor,
        )

    # -- a tenant's functions ---------------------------------------------------------------
    def functions(
        self, tenant: Tenant, *, since: datetime | None, cursor: str | None, limit: int
    ) -> FunctionPage:
        since = _aware(since) if since else utcnow() - timedelta(days=1)
        after = _decode(cursor, 1)[0] if cursor else None
        names = self.repo.function_names(tenant.id, since, after, limit + 1)
        more = len(names) > limit
        names = names[:limit]
        aliases = self.repo.aliases(tenant.id, since, names)
        changes = self.repo.last_changes(tenant.id, names)
        functions = [
            FunctionUsage(
                name,
                changes[name].to_mb if name in changes else None,
                changes.get(name),
                [a for a in aliases if a.function_name == name],
            )
            for name in names
        ]
        return FunctionPage(since, functions, _encode(names[-1]) if more and names else None)


def _default_step(span: timedelta) -> int:
    """About 100 buckets, rounded up to a whole minute, hour or day."""
    raw = span.total_seconds() / 100
    for unit in (60, 300, 900, 3600, 21600, 86400, 604800):
        if raw <= unit:
            return unit
    return 604800 * math.ceil(raw / 604800)


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
