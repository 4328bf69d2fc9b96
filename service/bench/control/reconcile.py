"""Timing the reconcile pass (``Controller.run_once``) over many running jobs on Postgres.

The state is made by the real code, not by hand-written rows: ``jobs`` training jobs of
``workers`` workers are submitted, and one setup pass of the loop opens their first round and
writes one invocation intent per worker, which it "starts" on a platform that never finishes
anything (``IdlePlatform``). That is the steady state of a busy control plane: every job running,
every function in flight. A measured replica then starts after the setup replica's leases have
run out, so its first pass is a *takeover* (claim every job, send every open intent again, as
after a crash) and the following passes are *steady* (claim, record nothing, advance, dispatch
nothing new). Replicas run in their own processes; with two, they pass in lockstep and share the
jobs through their leases (``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import cProfile
import io
import math
import multiprocessing
import pstats
import time
import uuid
from datetime import UTC, datetime
from statistics import median
from typing import Any

from sqlalchemy import func, select

from service.control.loop import Controller, to_datetime
from service.database import Database, commit
from service.jobs.service import JobService
from service.models import Invocation, InvocationState, Job, JobStatus, Tenant
from service.platform.interface import (
    FunctionMetrics,
    FunctionSpec,
    InvocationHandle,
    InvokeResult,
    Report,
    variant_alias,
)
from service.settings import Settings
from service.spec import JobSpec

SETUP_OWNER = "bench-setup"
START = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
PROFILE_OVER_S = 1.0  # passes slower than this are profiled once, to say where the time goes


class IdlePlatform:
    """A platform on which every invocation starts and none finishes: the loop's cost with
    nothing to record, so a pass measures claim, advance and dispatch queries alone."""

    def ensure_function(self, spec: FunctionSpec) -> None:
        pass

    def ensure_variant(self, name: str, memory_mb: int) -> str:
        return variant_alias(memory_mb)

    def set_memory(self, name: str, memory_mb: int) -> None:
        pass

    def memory_of(self, name: str) -> int:
        return 1024

    def concurrency_limit(self) -> int:
        return 1000

    def start_invoke(
        self, name: str, payload: Any, *, memory_mb: int | None = None
    ) -> InvocationHandle:
        return InvocationHandle(uuid.uuid4().hex, name, memory_mb, time.time())

    def poll(self, handle: InvocationHandle) -> InvokeResult | None:
        return None

    def invoke(self, name: str, payload: Any, *, memory_mb: int | None = None) -> InvokeResult:
        # Its invocations never finish (a steady pass sees them all still running), so a call
        # that waits for one would wait forever: refuse it. The loop only starts and polls.
        raise RuntimeError("the idle platform never finishes an invocation: start_invoke and poll")

    def metrics(
        self,
        name: str,
        start: float,
        end: float,
        *,
        period_s: int = 60,
        memory_mb: int | None = None,
    ) -> FunctionMetrics:
        return FunctionMetrics(function=name, period_s=period_s)

    def find_reports(
        self, name: str, start: float, end: float, *, request_ids: frozenset[str] | None = None
    ) -> list[Report]:
        return []

    def find_cpu_times(
        self, name: str, start: float, end: float, request_ids: frozenset[str]
    ) -> dict[str, float]:
        return {}

    def close(self) -> None:
        pass


def job_spec(workers: int) -> JobSpec:
    return JobSpec.model_validate(
        {
            "name": "bench-control-training",
            "kind": "training",
            "workload": {"function": "builtin:mlp", "dataset": "builtin:digits"},
            "training": {"workers": workers, "max_epochs": 10, "params": {"hidden": 64}},
            "qos": {"deadline_s": 3600},
            # static: every worker of the first round is decided at once (ce-scaling would
            # hold all but a pilot), so each job has ``workers`` functions in flight
            "policy": {"name": "static", "memory_mb": 1024},
        }
    )


def settings(url: str, batch: int) -> Settings:
    return Settings(
        database_url=url,
        controller_enabled=False,
        controller_batch=batch,
        store_url="file:///bench-control",
    )


def populate(url: str, jobs: int, workers: int) -> dict[str, Any]:
    """Submit the jobs and run the setup pass; return what the database then holds."""
    config = settings(url, batch=jobs)
    database = Database(config)
    started = time.perf_counter()
    try:
        with database.session() as session:
            tenant = Tenant(name=f"bench-control-{uuid.uuid4().hex[:6]}")
            session.add(tenant)
            session.flush()
            service = JobService(session)
            spec = job_spec(workers)
            for _ in range(jobs):
                service.submit(tenant, spec, lambda job: {})
            commit(session)
        controller = Controller(database, IdlePlatform(), config, owner=SETUP_OWNER, seed=0)
        controller.run_once(to_datetime(START))
        with database.session() as session:
            running = session.scalar(
                select(func.count()).select_from(Job).where(Job.status == JobStatus.RUNNING.value)
            )
            intents = session.scalar(
                select(func.count())
                .select_from(Invocation)
                .where(Invocation.state == InvocationState.INTENT.value)
            )
    finally:
        database.engine.dispose()
    return {
        "jobs": jobs,
        "workers_per_job": workers,
        "running_jobs": running,
        "running_functions": intents,
        "setup_s": round(time.perf_counter() - started, 2),
    }


def measure(
    url: str, jobs: int, replicas: int, passes: int, start_s: float, profile: bool = True
) -> dict[str, Any]:
    """``replicas`` controllers in their own processes, ``passes`` passes each, in lockstep,
    starting at clock ``start_s`` (after every earlier lease has expired)."""
    batch = math.ceil(jobs / replicas)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(replicas)  # shared by inheritance: Process arguments, not a pool
    results = context.Queue()
    processes = [
        context.Process(
            target=_replica_process,
            args=(results, url, f"bench-replica-{i}", batch, passes, start_s, barrier, profile),
        )
        for i in range(replicas)
    ]
    for process in processes:
        process.start()
    try:
        outcomes = [results.get(timeout=3600) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=60)
    failed = [o["error"] for o in outcomes if "error" in o]
    if failed:
        raise RuntimeError(f"a replica failed: {failed[0]}")
    outcomes.sort(key=lambda o: o["owner"])
    return {
        "replicas": replicas,
        "batch_per_replica": batch,
        "passes": passes,
        "per_replica": outcomes,
        "takeover_pass_s": max(o["passes"][0]["wall_s"] for o in outcomes),
        "takeover_pass_cpu_s": max(o["passes"][0]["cpu_s"] for o in outcomes),
        "steady_pass_cpu_s": {
            "median": round(median(p["cpu_s"] for o in outcomes for p in o["passes"][1:]), 4)
            if passes > 1
            else None,
        },
        "steady_pass_s": {
            "median": round(median(p["wall_s"] for o in outcomes for p in o["passes"][1:]), 4)
            if passes > 1
            else None,
            "max": round(max(p["wall_s"] for o in outcomes for p in o["passes"][1:]), 4)
            if passes > 1
            else None,
        },
        "jobs_per_pass": [sum(o["passes"][k]["jobs"] for o in outcomes) for k in range(passes)],
    }


def _replica_process(results, *args: Any) -> None:
    try:
        results.put(_replica(*args))
    except Exception as error:  # reported by the parent
        results.put({"owner": args[1], "error": f"{type(error).__name__}: {error}"})


def _replica(
    url: str, owner: str, batch: int, passes: int, start_s: float, barrier, profile: bool
) -> dict[str, Any]:
    config = settings(url, batch)
    database = Database(config)
    controller = Controller(database, IdlePlatform(), config, owner=owner, seed=0)
    records = []
    try:
        for k in range(passes):
            barrier.wait()
            started, cpu = time.perf_counter(), time.process_time()
            report = controller.run_once(to_datetime(start_s + k))
            records.append(
                {
                    "wall_s": round(time.perf_counter() - started, 4),
                    # this replica's process only (Postgres works in its own processes)
                    "cpu_s": round(time.process_time() - cpu, 4),
                    "jobs": report.jobs,
                    "dispatched": report.dispatched,
                    "steps_s": {name: round(v, 4) for name, v in report.timings.items()},
                }
            )
        hotspots = None
        steady = [r["wall_s"] for r in records[1:]] or [records[0]["wall_s"]]
        if profile and median(steady) > PROFILE_OVER_S:
            hotspots = _profiled_pass(controller, to_datetime(start_s + passes))
    finally:
        database.engine.dispose()
    return {"owner": owner, "passes": records, "profile": hotspots}


def _profiled_pass(controller: Controller, now: datetime, top: int = 25) -> str:
    """One more steady pass under cProfile: the functions with the most cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    controller.run_once(now)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()
