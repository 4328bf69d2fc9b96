"""Submitting jobs and checking the loop's invariants (docs/safety.md), shared by loop tests."""

from __future__ import annotations

import uuid
from collections import Counter
from decimal import Decimal

from sqlalchemy import func, select

from service.database import Database, commit
from service.jobs.service import JobService
from service.models import Allocation, Invocation, Job, Task, Tenant
from service.spec import JobSpec

START = 1_767_225_600.0  # the virtual clock's start: 2026-01-01T00:00:00Z
SMALL_DATA = "builtin:synthetic?n=3000&d=10"

HPO = {
    "name": "loop-hpo",
    "kind": "hpo",
    "workload": {"function": "builtin:logreg", "dataset": SMALL_DATA},
    "hpo": {
        "search_space": {"lr": {"log_uniform": [0.001, 0.5]}},
        "trials": 9,
        "eta": 3,
        "min_epochs": 1,
        "max_epochs": 3,
    },
    "qos": {"deadline_s": 600},
    "policy": {"name": "static", "memory_mb": 1024},
}
TRAINING = {
    "name": "loop-training",
    "kind": "training",
    "workload": {"function": "builtin:mlp", "dataset": SMALL_DATA},
    "training": {"workers": 3, "max_epochs": 4, "params": {"lr": 0.05, "hidden": 16}},
    "qos": {"deadline_s": 600},
    "policy": {"name": "static", "memory_mb": 512},
}


def submit(database: Database, *specs: dict) -> list[uuid.UUID]:
    with database.session() as session:
        tenant = Tenant(name=f"t-{uuid.uuid4().hex[:6]}")
        session.add(tenant)
        session.flush()
        ids = [
            JobService(session).submit(tenant, JobSpec.model_validate(s), lambda j: {}).job_id
            for s in specs
        ]
        commit(session)
    return ids


def statuses(database: Database, ids) -> dict[uuid.UUID, str]:
    with database.session() as session:
        return dict(session.execute(select(Job.id, Job.status).where(Job.id.in_(ids))).all())


def assert_invariants(database: Database, ids) -> dict[str, int]:
    """Every job ended well; no attempt recorded twice; each task succeeded exactly once; the
    ledger is the sum of invocations; each memory change is one row, applied once."""
    with database.session() as session:
        for job_id in ids:
            job = session.get(Job, job_id)
            assert job.status == "succeeded", (job.name, job.status_reason)
            assert job.lease_owner is None
        invocations = session.scalars(select(Invocation).where(Invocation.job_id.in_(ids))).all()
        attempts = Counter((i.task_id, i.attempt) for i in invocations)
        assert max(attempts.values()) == 1
        assert all(i.state == "done" for i in invocations), "an intent was left behind"
        ok = Counter(i.task_id for i in invocations if i.outcome == "ok")
        tasks = session.scalars(select(Task).where(Task.job_id.in_(ids))).all()
        for task in tasks:
            assert task.status == "succeeded"
            assert ok[task.id] == 1, f"{task.key} recorded {ok[task.id]} successes"
        for job_id in ids:
            own = [i for i in invocations if i.job_id == job_id]
            tenant_id = session.get(Job, job_id).tenant_id
            cost = JobService(session).cost(session.get(Tenant, tenant_id), job_id)
            ledger = sum((i.compute_cost_usd + i.request_cost_usd for i in own), Decimal(0))
            assert cost.total.total_usd == ledger > 0
            assert cost.total.invocations == len(own)
        allocations = session.scalars(select(Allocation).where(Allocation.job_id.in_(ids))).all()
        keys = Counter(
            (a.job_id, a.stage_id, a.task_id, (a.detail or {}).get("shape"), a.rule, a.to_mb)
            for a in allocations
        )
        assert max(keys.values()) == 1, "a memory change was recorded twice"
        changes = [a for a in allocations if a.state != "vetoed"]  # a veto changes nothing
        assert all(a.state == "applied" and a.applied_at is not None for a in changes)
        assert all(a.applied_at is None for a in allocations if a.state == "vetoed")
        extra = session.scalar(
            select(func.count())
            .select_from(Invocation)
            .where(Invocation.job_id.in_(ids), Invocation.attempt > 1)
        )
    return {
        "invocations": len(invocations),
        "tasks": len(tasks),
        "retries": extra,
        "memory_changes": len(changes),
    }
