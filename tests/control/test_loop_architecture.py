"""Architecture ``auto`` through the control loop on Postgres, real handler code on the
emulator: every task carries the architecture decided for it, every invocation ran and was
billed at it, and the timeline says so."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from service.api.query_schemas import InvocationPageOut
from service.control.drive import drive
from service.control.loop import Controller
from service.jobs.service import JobService
from service.models import Invocation, Job, Task, Tenant
from service.platform import pricing
from service.platform.interface import Report
from service.usage.service import UsageService
from tests.control.helpers import HPO, assert_invariants, submit


def test_an_auto_job_runs_each_task_on_its_decided_architecture(loop_env):
    database, platform, clock, settings = loop_env
    spec = HPO | {
        "workload": HPO["workload"] | {"architecture": "auto"},
        "policy": {"name": "ce-scaling"},
    }
    [job_id] = submit(database, spec)
    report = drive(Controller(database, platform, settings, seed=3), clock, [job_id], max_ticks=500)
    assert report.finished == {job_id}
    assert_invariants(database, [job_id])
    with database.session() as session:
        job = session.get(Job, job_id)
        assert job.status == "succeeded", job.status_reason
        tasks = {t.id: t for t in session.scalars(select(Task).where(Task.job_id == job_id))}
        invocations = session.scalars(select(Invocation).where(Invocation.job_id == job_id)).all()
        assert all(t.architecture in ("x86_64", "arm64") for t in tasks.values())
        assert {i.architecture for i in invocations} == {"x86_64", "arm64"}  # pilots on both
        for invocation in invocations:
            assert invocation.architecture == tasks[invocation.task_id].architecture
            report = Report(
                invocation.request_id or "",
                invocation.duration_ms,
                invocation.billed_ms,
                invocation.memory_mb,
                invocation.max_memory_used_mb or 0,
            )
            other = "x86_64" if invocation.architecture == "arm64" else "arm64"
            billed = pricing.compute_usd(report, invocation.architecture)
            elsewhere = pricing.compute_usd(report, other)
            # at the price of where it ran (the ledger keeps 12 decimals)
            assert abs(invocation.compute_cost_usd - billed) < Decimal("1e-12")
            assert abs(invocation.compute_cost_usd - elsewhere) > Decimal("1e-10")
        assert sum(i.compute_cost_usd for i in invocations) > Decimal(0)
        tenant = session.get(Tenant, job.tenant_id)
        # the listing names the variant each attempt ran: arm64's own, or the function's
        page = InvocationPageOut.of(UsageService(session).invocations(tenant, job_id, None, 500))
        assert {(i.architecture, i.alias) for i in page.items} == {
            (i.architecture, f"mem-{i.memory_mb}" + ("-arm64" if i.architecture == "arm64" else ""))
            for i in page.items
        }
        assert any(i.alias.endswith("-arm64") for i in page.items)
        events = JobService(session).timeline(tenant, job_id)
        changes = [e.detail for e in events if e.type == "allocation.changed"]
        assert any(c.get("rule") == "architecture-pilot" for c in changes)
        assert all(c.get("architecture") in ("x86_64", "arm64") for c in changes)
