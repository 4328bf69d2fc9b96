"""Polling each running function's CloudWatch metrics, re-reading minutes until they close.

CloudWatch's AWS/Lambda metrics arrive per minute and late: a minute read while its
invocations are still being counted shows part of them (a poll stored 2 and 8 invocations
where 21 and 60 ran), and a datapoint can appear minutes after its minute. So every poll reads
from the oldest minute that is not yet *closed* (``settle_s`` after its end), aligned to minute
boundaries, and writes each datapoint over the stored one of the same function, metric and
minute: a minute's figure is revised until it closes, and a late minute is added when it
shows up. A minute with no datapoint stays absent: unknown, never zero.

When a minute closes, its ``Invocations`` are cross-checked against the ledger (invocations
of that function started in that minute that reached Lambda): a disagreement is stored as a
``ledger_mismatch`` observation (CloudWatch minus ledger), which the timeline of every job
that ran the function in that minute shows (``jobs/service.py``). And what REPORT lines lack
is filled from the closed minute: an invocation recorded without its peak memory (an async
invoke, a truncated log tail) takes the minute's Lambda Insights ``used_memory_max`` — an upper
bound, so the memory floor it sets errs on the safe side.

Each run's CPU time is late too: Lambda Insights writes it (``cpu_total_time``) to its own log
group seconds to minutes after the result, which is recorded without it. Every poll of a
function asks the platform (``find_cpu_times``) for the CPU times of its runs that finished
since the oldest open minute and still have none, of the jobs the caller holds, and fills them
in one statement: a run is asked for at each poll until its minute closes. The report names
the jobs whose runs got one, so that the learn step refits their curves (``learning.py``).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from service.control.repository import LoopRepository
from service.models import Observation
from service.platform.interface import Platform, PlatformError

log = logging.getLogger(__name__)

METRICS = ("invocations", "duration_avg", "duration_max", "errors", "throttles", "memory_used_max")
PERIOD_S = 60
SETTLE_S = 300.0  # a minute's figures are final this long after its end (Lambda: ~1–3 min)
FIRST_LOOKBACK_S = 900.0  # how far back the first poll of a function reads
MISMATCH = "ledger_mismatch"
LOG_SKEW_S = 60.0  # an Insights event's time against the loop's clock, either way


def series_of(function: str) -> str:
    return f"function:{function}"


def _minute(moment: datetime) -> datetime:
    seconds = math.floor(moment.timestamp() / PERIOD_S) * PERIOD_S
    return datetime.fromtimestamp(seconds, UTC)


@dataclass
class PollReport:
    stored: int = 0  # new datapoints
    revised: int = 0  # datapoints of a minute read before, whose figure changed
    mismatches: int = 0  # closed minutes whose invocations disagree with the ledger
    filled: int = 0  # invocations whose missing peak memory came from Lambda Insights
    cpu_filled: int = 0  # invocations whose CPU time came from Lambda Insights' events
    cpu_jobs: set[uuid.UUID] = field(default_factory=set)  # the jobs of those invocations


class MetricsPoller:
    def __init__(self, interval_s: float = 60.0, settle_s: float = SETTLE_S) -> None:
        self.interval = timedelta(seconds=interval_s)
        self.settle = timedelta(seconds=settle_s)
        self._polled: dict[str, datetime] = {}
        self._closed_until: dict[str, datetime] = {}  # minutes before this are checked

    def poll(
        self,
        repo: LoopRepository,
        platform: Platform,
        functions: set[str],
        now: datetime,
        jobs: Iterable[uuid.UUID] | None = None,
    ) -> PollReport:
        """``jobs``: fill the CPU times of these jobs' runs only (the ones whose curves the
        caller's learn step keeps); None: of every job's."""
        report = PollReport()
        jobs = None if jobs is None else set(jobs)
        due: dict[str, datetime] = {}  # function -> where this poll reads from
        for name in sorted(functions):
            last = self._polled.get(name)
            if last is not None and now - last < self.interval:
                continue
            self._polled[name] = now
            open_from, checked, start = self._window(repo, name, now)
            due[name] = start
            try:
                self._poll_one(repo, platform, name, now, (open_from, checked, start), report)
            except PlatformError as error:
                log.warning("metrics of %s unavailable: %s", name, error)
        if not due:
            return report
        # the runs still without a CPU time, of every function due, in one statement
        missing = repo.cpu_missing(list(due), min(due.values()), now, jobs)
        for name, runs in sorted(missing.items()):
            start = due[name]
            asked = frozenset(rid for rid, finished in runs.items() if finished >= start)
            try:
                self._fill_cpu(repo, platform, name, start, now, asked, report)
            except PlatformError as error:
                log.warning("CPU times of %s unavailable: %s", name, error)
        return report

    def _window(self, repo: LoopRepository, name: str, now: datetime):
        """(first minute still open, first minute not cross-checked yet or None, where this
        poll reads from): the oldest open or unchecked minute, at most FIRST_LOOKBACK_S back."""
        open_from = _minute(now - self.settle)  # minutes from here on may still change
        checked = self._closed_until.get(name)
        if checked is None:
            stored = repo.last_observed(series_of(name))
            checked = _minute(stored) if stored is not None else None
        earliest = _minute(now - timedelta(seconds=FIRST_LOOKBACK_S))
        start = max(min(open_from, checked), earliest) if checked is not None else earliest
        return open_from, checked, start

    def _fill_cpu(self, repo, platform, name, start, now, missing, report: PollReport) -> None:
        """CPU times of ``missing`` (request ids of runs that finished from ``start`` on and have
        none yet), from the platform's late figures (Lambda Insights' events on AWS)."""
        if not missing:
            return  # nothing to ask for: no call
        found = platform.find_cpu_times(
            name, start.timestamp() - LOG_SKEW_S, now.timestamp() + LOG_SKEW_S, missing
        )
        found = {request_id: cpu for request_id, cpu in found.items() if request_id in missing}
        filled = repo.fill_cpu_times(name, found)
        report.cpu_filled += len(filled)
        report.cpu_jobs.update(filled)

    def _poll_one(
        self, repo: LoopRepository, platform: Platform, name: str, now: datetime, window, report
    ) -> None:
        series = series_of(name)
        open_from, checked, start = window
        metrics = platform.metrics(name, start.timestamp(), now.timestamp(), period_s=PERIOD_S)
        known = repo.cloudwatch_points(series, start)
        closed: dict[datetime, dict[str, float]] = {}
        for metric in METRICS:
            for timestamp, value in getattr(metrics, metric):
                if not math.isfinite(value):
                    continue
                minute = _minute(datetime.fromtimestamp(timestamp, UTC))
                row = known.get((metric, minute))
                if row is None:
                    row = Observation(
                        series=series,
                        metric=metric,
                        value=float(value),
                        source="cloudwatch",
                        observed_at=minute,
                        recorded_at=now,
                    )
                    repo.add(row)
                    known[(metric, minute)] = row
                    report.stored += 1
                elif row.value != float(value):
                    row.value, row.recorded_at = float(value), now
                    report.revised += 1
                if minute < open_from:
                    closed.setdefault(minute, {})[metric] = float(value)
        newly_closed = [m for m in sorted(closed) if checked is None or m >= checked]
        if not newly_closed or self._cross_check(
            repo, name, series, newly_closed, closed, known, now, report
        ):
            self._closed_until[name] = open_from

    def _cross_check(self, repo, name, series, minutes, closed, known, now, report) -> bool:
        """False when the ledger is not complete for these minutes yet (check them later)."""
        end = minutes[-1] + timedelta(seconds=PERIOD_S)
        if repo.open_invocations_before(name, end):
            return False  # results not all recorded yet: check these minutes at the next poll
        ledger = repo.invocations_per_minute(name, minutes[0], end, PERIOD_S)
        for minute in minutes:
            figures = closed[minute]
            counted = figures.get("invocations")
            if counted is None:
                continue
            difference = counted - ledger.get(minute, 0)
            if difference and (MISMATCH, minute) not in known:
                repo.add(
                    Observation(
                        series=series,
                        metric=MISMATCH,
                        value=float(difference),
                        source="cloudwatch",
                        observed_at=minute,
                        recorded_at=now,
                    )
                )
                known[(MISMATCH, minute)] = True
                report.mismatches += 1
                log.warning(
                    "%s: CloudWatch counts %d invocations in the minute from %s, the ledger %d",
                    name,
                    counted,
                    minute.isoformat(),
                    ledger.get(minute, 0),
                )
            peak = figures.get("memory_used_max")
            if peak is not None:
                report.filled += repo.fill_peak_memory(
                    name, minute, minute + timedelta(seconds=PERIOD_S), math.ceil(peak)
                )
        return True
