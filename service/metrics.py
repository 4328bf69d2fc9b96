"""Prometheus metrics: the control loop's own (in the process that runs it) and the fleet's
(read from the database at scrape time).

- ``LOOP_REGISTRY`` holds what only the loop's process can see: tick and per-step durations,
  ticks, dispatched invocations and dispatch errors. It lives in whichever process runs the loop
  (``cescale serve`` with the in-process loop, or ``cescale controller --metrics-port``).
- ``DatabaseCollector`` computes everything else when scraped, with a fixed handful of aggregate
  queries whatever the number of jobs: jobs by status, leases held, intents pending, invocations,
  throttles, cost and GB-s by tenant and policy, memory changes by rule, deadline misses. Any
  replica's scrape gives the same fleet-wide figures.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select, text, type_coerce

from service.database import Database
from service.models import Allocation, Invocation, Job, Tenant
from service.models.base import Money, utcnow

log = logging.getLogger(__name__)

LOOP_REGISTRY = CollectorRegistry(auto_describe=True)

_TICK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

TICK_SECONDS = Histogram(
    "cescale_loop_tick_seconds",
    "Duration of one control-loop tick.",
    buckets=_TICK_BUCKETS,
    registry=LOOP_REGISTRY,
)
STEP_SECONDS = Histogram(
    "cescale_loop_step_seconds",
    "Duration of one step of a tick (collect, claim, load, record, learn, advance, commit, "
    "dispatch, reconcile).",
    ["step"],
    buckets=_TICK_BUCKETS,
    registry=LOOP_REGISTRY,
)
TICKS = Counter(
    "cescale_loop_ticks",
    "Control-loop ticks, by result (ok, error).",
    ["result"],
    registry=LOOP_REGISTRY,
)
DISPATCHED = Counter(
    "cescale_loop_dispatched_invocations",
    "Invocations this process started on the platform.",
    registry=LOOP_REGISTRY,
)
DISPATCH_ERRORS = Counter(
    "cescale_loop_dispatch_errors",
    "Platform calls (memory changes, invocations) that failed after the commit.",
    registry=LOOP_REGISTRY,
)


def record_tick(seconds: float, timings: dict[str, float], dispatched: int) -> None:
    TICK_SECONDS.observe(seconds)
    for step, took in timings.items():
        STEP_SECONDS.labels(step=step).observe(took)
    TICKS.labels(result="ok").inc()
    DISPATCHED.inc(dispatched)


def record_failed_tick(seconds: float) -> None:
    TICK_SECONDS.observe(seconds)
    TICKS.labels(result="error").inc()


class _Delegate(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


class DatabaseCollector(Collector):
    """Fleet figures read from the database at scrape time (five aggregate statements)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def describe(self) -> Iterable[Metric]:
        return []  # computed at scrape time only; describing would query the database

    def collect(self) -> Iterator[Metric]:
        try:
            with self.database.session() as session:
                yield from self._collect(session, utcnow())
        except Exception:
            log.exception("metrics: the database could not be read")
            up = GaugeMetricFamily(
                "cescale_metrics_database_up", "Whether the last scrape read the database."
            )
            up.add_metric([], 0)
            yield up
            return

    def _collect(self, session, now: datetime) -> Iterator[Metric]:
        if session.get_bind().dialect.name == "postgresql":
            # JIT compiles these aggregates for longer than they run
            session.execute(text("SET LOCAL jit = off"))
        up = GaugeMetricFamily(
            "cescale_metrics_database_up", "Whether the last scrape read the database."
        )
        jobs = GaugeMetricFamily(
            "cescale_jobs",
            "Jobs by tenant, policy and status.",
            labels=["tenant", "policy", "status"],
        )
        misses = CounterMetricFamily(
            "cescale_deadline_misses",
            "Jobs that ended after their deadline.",
            labels=["tenant", "policy"],
        )
        ended = CounterMetricFamily(
            "cescale_jobs_ended",
            "Jobs that ended with a known deadline outcome.",
            labels=["tenant", "policy"],
        )
        per_policy: dict[tuple[str, str], list[int]] = {}
        rows = session.execute(
            select(
                Tenant.name,
                Job.policy,
                Job.status,
                func.count(Job.id),
                func.count(case((Job.deadline_missed.is_(True), 1))),
                func.count(Job.deadline_missed),
            )
            .join(Tenant, Tenant.id == Job.tenant_id)
            .group_by(Tenant.name, Job.policy, Job.status)
        )
        for tenant, policy, status, count, missed, known in rows:
            jobs.add_metric([tenant, policy, status], count)
            totals = per_policy.setdefault((tenant, policy), [0, 0])
            totals[0] += missed
            totals[1] += known
        for (tenant, policy), (missed, known) in sorted(per_policy.items()):
            misses.add_metric([tenant, policy], missed)
            ended.add_metric([tenant, policy], known)

        leases = GaugeMetricFamily(
            "cescale_leases_held", "Jobs leased by each controller replica.", labels=["owner"]
        )
        for owner, count in session.execute(
            select(Job.lease_owner, func.count(Job.id))
            .where(Job.lease_owner.is_not(None), Job.lease_expires_at > now)
            .group_by(Job.lease_owner)
        ):
            leases.add_metric([owner], count)

        active = select(Job.id).where(Job.status.in_(("pending", "running")))
        invocation_intents = (
            select(func.count(Invocation.id))
            .where(Invocation.job_id.in_(active), Invocation.state == "intent")
            .scalar_subquery()
        )
        allocation_intents = (
            select(func.count(Allocation.id))
            .where(Allocation.job_id.in_(active), Allocation.state == "intent")
            .scalar_subquery()
        )
        intents = GaugeMetricFamily(
            "cescale_intents_pending",
            "Intents written but not yet carried out on the platform.",
            labels=["kind"],
        )
        pending_invocations, pending_allocations = session.execute(
            select(invocation_intents, allocation_intents)
        ).one()
        intents.add_metric(["invocation"], pending_invocations)
        intents.add_metric(["memory_change"], pending_allocations)

        invocations = CounterMetricFamily(
            "cescale_invocations",
            "Completed invocations by tenant, policy and outcome.",
            labels=["tenant", "policy", "outcome"],
        )
        throttles = CounterMetricFamily(
            "cescale_throttles",
            "Invocations the platform throttled.",
            labels=["tenant", "policy"],
        )
        cost = CounterMetricFamily(
            "cescale_cost_usd", "Billed cost (the ledger).", labels=["tenant", "policy"]
        )
        gb_seconds = CounterMetricFamily(
            "cescale_gb_seconds", "Billed GB-seconds.", labels=["tenant", "policy"]
        )
        money: dict[tuple[str, str], list[float]] = {}
        for tenant, policy, outcome, count, compute, requests, mb_ms in session.execute(
            select(
                Tenant.name,
                Job.policy,
                Invocation.outcome,
                func.count(Invocation.id),
                type_coerce(func.coalesce(func.sum(Invocation.compute_cost_usd), 0), Money),
                type_coerce(func.coalesce(func.sum(Invocation.request_cost_usd), 0), Money),
                func.coalesce(func.sum(Invocation.memory_mb * Invocation.billed_ms), 0),
            )
            .join(Job, Job.id == Invocation.job_id)
            .join(Tenant, Tenant.id == Job.tenant_id)
            .where(Invocation.state == "done")
            .group_by(Tenant.name, Job.policy, Invocation.outcome)
        ):
            invocations.add_metric([tenant, policy, outcome or "unknown"], count)
            if outcome == "throttled":
                throttles.add_metric([tenant, policy], count)
            totals = money.setdefault((tenant, policy), [0.0, 0.0])
            totals[0] += float(compute + requests)
            totals[1] += int(mb_ms) / 1024 / 1000
        for (tenant, policy), (usd, gbs) in sorted(money.items()):
            cost.add_metric([tenant, policy], usd)
            gb_seconds.add_metric([tenant, policy], gbs)

        changes = CounterMetricFamily(
            "cescale_memory_changes",
            "Memory changes by the rule that decided (or vetoed) them, and their state.",
            labels=["rule", "state"],
        )
        for rule, state, count in session.execute(
            select(Allocation.rule, Allocation.state, func.count(Allocation.id)).group_by(
                Allocation.rule, Allocation.state
            )
        ):
            changes.add_metric([rule or "none", state], count)

        up.add_metric([], 1)
        yield from (up, jobs, ended, misses, leases, intents, invocations, throttles, cost)
        yield from (gb_seconds, changes)


def registry_for(database: Database | None, *, loop: bool = True) -> CollectorRegistry:
    """A registry to expose: the loop's metrics of this process, and the database's."""
    registry = CollectorRegistry(auto_describe=False)
    if loop:
        registry.register(_Delegate(LOOP_REGISTRY))
    if database is not None:
        registry.register(DatabaseCollector(database))
    return registry
