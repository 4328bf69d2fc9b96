"""Completing bills from CloudWatch Logs: the control loop's reconcile step.

An invocation that reached Lambda but whose REPORT line the loop did not see (a truncated log
tail, a read timeout or a 5xx after sending) is recorded with its request charge and
``bill_state = pending``. At most every ``reconcile_interval_s`` this step looks its REPORT up in
the function's log group and fills duration, billed duration, init, peak memory and the duration
charge, at the architecture the invocation ran on. One that is still not found
``reconcile_horizon_s`` after it finished is marked ``missing``, logged, and keeps being counted
by the cost API as unreconciled: never silently $0.

By request id when the invocation has one. An ambiguous invocation has none (the response never
arrived), so it is matched by time and size instead, and only when that cannot be wrong from
the ledger's point of view: once the function's timeout has passed (no REPORT of it can still
come), exactly one REPORT of that memory size was logged in its window that no invocation in the
ledger owns, and no other invocation of the function without a request id overlaps it. Anything
else stays pending, and becomes missing at the horizon. (An invocation of the same function by a
caller outside cescale, at the same size and in the same window, cannot be told apart.)

It does not touch tasks or outcomes: an ambiguous attempt was retried as a new attempt when it
was recorded, so finding its REPORT bills it and nothing else. Rows are claimed with
``FOR UPDATE SKIP LOCKED``, so replicas never reconcile the same row at once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from service.models import BillState, Invocation, InvocationState, Job
from service.platform import pricing
from service.platform.interface import Platform, PlatformError, Report

log = logging.getLogger(__name__)

SKEW_S = 60.0  # clock difference allowed between this process and CloudWatch Logs
BATCH = 500  # pending invocations looked at per pass
DEFAULT_TIMEOUT_S = 300.0


@dataclass
class ReconcileReport:
    pending: int = 0  # looked at this pass
    reconciled: int = 0
    missing: int = 0  # passed the horizon this pass


class Reconciler:
    def __init__(self, platform: Platform, *, interval_s: float, horizon_s: float) -> None:
        self.platform = platform
        self.interval = timedelta(seconds=interval_s)
        self.horizon = timedelta(seconds=horizon_s)
        self._last: datetime | None = None

    def due(self, now: datetime) -> bool:
        return self._last is None or now - self._last >= self.interval

    def run(self, session: Session, now: datetime) -> ReconcileReport:
        """One pass; the caller commits."""
        self._last = now
        rows = list(
            session.scalars(
                select(Invocation)
                .where(Invocation.bill_state == BillState.PENDING.value)
                .order_by(Invocation.finished_at, Invocation.id)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
        )
        report = ReconcileReport(pending=len(rows))
        by_function: dict[str, list[Invocation]] = defaultdict(list)
        for invocation in rows:
            by_function[invocation.function_name].append(invocation)
        for name, invocations in sorted(by_function.items()):
            try:
                report.reconciled += self._by_request_id(name, invocations, now)
                report.reconciled += self._by_window(session, name, invocations, now)
            except PlatformError as error:
                log.warning("could not read the REPORT lines of %s: %s", name, error)
        for invocation in rows:
            if invocation.bill_state != BillState.PENDING.value:
                continue
            if (invocation.finished_at or invocation.created_at) + self.horizon <= now:
                self._give_up(invocation)
                report.missing += 1
        return report

    # -- matching ------------------------------------------------------------------------------
    def _by_request_id(self, name: str, invocations: list[Invocation], now: datetime) -> int:
        known = {i.request_id: i for i in invocations if i.request_id}
        if not known:
            return 0
        start = min(_started(i) for i in known.values()) - SKEW_S
        reports = self.platform.find_reports(
            name, start, now.timestamp() + SKEW_S, request_ids=frozenset(known)
        )
        done = 0
        for found in reports:
            invocation = known.pop(found.request_id, None)
            if invocation is not None:
                _fill(invocation, found)
                done += 1
        return done

    def _by_window(
        self, session: Session, name: str, invocations: list[Invocation], now: datetime
    ) -> int:
        unknown = [i for i in invocations if not i.request_id]
        done = 0
        for invocation in unknown:
            # The run ended by its timeout, or by the time the call gave up (a read timeout
            # waits longer than Lambda's 900 s maximum, so it covers a function whose own
            # timeout is longer than the job spec says).
            waited_s = (invocation.finished_at or invocation.created_at).timestamp()
            waited_s -= _started(invocation)
            start = _started(invocation) - SKEW_S
            end = _started(invocation) + max(_timeout_s(session, invocation), waited_s) + SKEW_S
            if end > now.timestamp():
                continue  # its REPORT may still be written
            if _overlapping_unknowns(session, invocation, start, end):
                continue  # two invocations without a request id: cannot tell which is which
            reports = [
                r
                for r in self.platform.find_reports(name, start, end)
                if r.memory_mb == invocation.memory_mb
            ]
            owned = _owned(session, name, {r.request_id for r in reports})
            candidates = [r for r in reports if r.request_id not in owned]
            if len(candidates) == 1:
                _fill(invocation, candidates[0])
                done += 1
        return done

    def _give_up(self, invocation: Invocation) -> None:
        invocation.bill_state = BillState.MISSING.value
        note = (
            f"no REPORT line found in CloudWatch Logs within {self.horizon.total_seconds():g} s; "
            "duration charge unknown (request charge counted)"
        )
        invocation.error = f"{invocation.error}; {note}" if invocation.error else note
        log.warning(
            "invocation %s of %s (request %s, job %s): %s",
            invocation.id,
            invocation.function_name,
            invocation.request_id or "unknown",
            invocation.job_id,
            note,
        )


def _started(invocation: Invocation) -> float:
    return (invocation.started_at or invocation.created_at).timestamp()


def _fill(invocation: Invocation, report: Report) -> None:
    invocation.request_id = invocation.request_id or report.request_id
    invocation.duration_ms = report.duration_ms
    invocation.billed_ms = report.billed_ms
    invocation.init_ms = report.init_ms
    invocation.max_memory_used_mb = report.max_memory_used_mb
    invocation.cpu_ms = report.cpu_ms
    invocation.cold_start = report.cold
    architecture = "arm64" if invocation.architecture == "arm64" else "x86_64"
    invocation.compute_cost_usd = pricing.compute_usd(report, architecture)
    invocation.request_cost_usd = pricing.REQUEST_USD
    invocation.bill_state = BillState.FINAL.value


def _timeout_s(session: Session, invocation: Invocation) -> float:
    spec = session.scalar(select(Job.spec).where(Job.id == invocation.job_id)) or {}
    return float((spec.get("workload") or {}).get("timeout_s") or DEFAULT_TIMEOUT_S)


def _overlapping_unknowns(
    session: Session, invocation: Invocation, start: float, end: float
) -> bool:
    """Another invocation of the function without a request id that may have run in the
    window: an intent (sent, or about to be, and not answered yet) created before the window
    ended, or another one still waiting for its REPORT that started in it."""
    others = session.execute(
        select(Invocation.state, Invocation.started_at, Invocation.created_at).where(
            Invocation.function_name == invocation.function_name,
            Invocation.id != invocation.id,
            Invocation.request_id.is_(None),
            or_(
                Invocation.state == InvocationState.INTENT.value,
                Invocation.bill_state.in_([BillState.PENDING.value, BillState.MISSING.value]),
            ),
        )
    )
    for state, started_at, created_at in others:
        if state == InvocationState.INTENT.value:
            if created_at.timestamp() <= end:
                return True
        elif 2 * start - end <= (started_at or created_at).timestamp() <= end:
            return True  # started at most one timeout before the window: may overlap it
    return False


def _owned(session: Session, name: str, request_ids: set[str]) -> set[str]:
    if not request_ids:
        return set()
    return set(
        session.scalars(
            select(Invocation.request_id).where(
                Invocation.function_name == name, Invocation.request_id.in_(request_ids)
            )
        )
    )
