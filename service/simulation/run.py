"""``cescale simulate``: one job spec, run to completion by the real control loop, on the emulator
and a virtual clock, in a private in-memory database. Deterministic for a given seed."""

from __future__ import annotations

import gc
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select, type_coerce

from service.control.drive import drive
from service.control.loop import Controller
from service.database import Database, commit, make_engine
from service.jobs.service import JobService
from service.migrate import upgrade_engine
from service.models import Allocation, Invocation, Job, Stage, Task, Tenant
from service.models.base import Money
from service.platform.clock import VirtualClock
from service.platform.emulator.backend import EmulatorPlatform
from service.policies.architecture import with_architecture
from service.policies.base import Policy
from service.policies.oracle import Oracle, Truth
from service.policies.registry import policy_for
from service.settings import Settings
from service.simulation.drift import Drift
from service.simulation.platform import SimulatedPlatform, noise_key, rounds_to_target
from service.simulation.work import AnalyticWorkload, WorkloadModel
from service.spec import JobSpec

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z; any fixed origin keeps runs reproducible
TICK_S = 0.1  # the simulated loop ticks every 100 ms (the live default is 1 s)
REPEAT_GAP_S = 3600.0  # between repeated jobs: longer than any keep-alive, nothing stays warm


_schema_lock = threading.Lock()
# this process's migrated, empty database (by process id: a forked worker makes its own)
_schema: tuple[int, sqlite3.Connection] | None = None


def _migrate(engine: Engine) -> None:
    """Bring a new in-memory database to the head revision. The migrations run once per
    process, into an empty template database; every later simulation copies the template
    (SQLite's backup API: the same schema, byte for byte, in well under a millisecond instead
    of ~0.1 s of Alembic). A bench runs hundreds of simulations in one process."""
    global _schema
    with _schema_lock:
        first = _schema is None or _schema[0] != os.getpid()
        if first:
            upgrade_engine(engine)
        with engine.connect() as connection:
            target = connection.connection.dbapi_connection
            if first:
                _schema = (os.getpid(), sqlite3.connect(":memory:", check_same_thread=False))
                target.backup(_schema[1])
            else:
                _schema[1].backup(target)


def truth_for(spec: JobSpec, workload: WorkloadModel | None = None) -> Truth:
    """The simulator's ground truth of a spec's tasks, for the oracle: the workload model's work
    through the emulator's performance model, without noise."""
    shard = spec.training.workers if spec.training is not None else 1
    model = workload or AnalyticWorkload()

    def truth(params: dict[str, Any], epochs: int, memory_mb: int) -> tuple[float, float, float]:
        true = model.truth(
            spec.workload.function, spec.workload.dataset, params, epochs, shard, memory_mb
        )
        return true.duration_ms, true.init_ms, true.peak_mb

    return truth


def simulate(
    spec: JobSpec,
    *,
    seed: int = 0,
    oracle: bool = False,
    max_ticks: int = 200_000,
    workload: WorkloadModel | None = None,
    learn: bool = True,
    drift: Drift | None = None,
    timeline: bool = False,
    policy: Callable[[JobSpec], Policy] | None = None,
    common_draws: bool = False,
    repeat: int = 1,
) -> dict[str, Any]:
    """Run ``spec`` to its end; with ``oracle`` the spec's policy is replaced by the oracle,
    with ``policy`` by what it makes of the spec (the benchmark's published peers).
    ``common_draws`` keys each invocation's noise by its task (``platform.noise_key``) instead
    of drawing it from one stream in invocation order, so that runs of one spec under
    different policies at one seed see the same draw for the same task (the benchmark's
    comparison does this).
    ``workload`` stands in for the built-in's code (default: the analytic model); ``learn``
    False switches the loop's learn step off (the policies then fit what they need from raw
    runs at each decision, with a fixed planning margin); ``drift`` slows runs down as the job
    goes on; ``timeline`` adds the job's timeline (seconds since submission, in order).
    ``repeat`` > 1 submits the same spec again, by the same tenant, each job
    ``REPEAT_GAP_S`` after the previous one ended (its environments gone cold): the summary is
    the last job's, with the earlier ones' under ``previous_jobs`` (a repeat job starts from
    what the earlier ones measured, the priors)."""
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    with _young_heap():
        return _simulate(
            spec,
            seed=seed,
            oracle=oracle,
            max_ticks=max_ticks,
            workload=workload,
            learn=learn,
            drift=drift,
            timeline=timeline,
            policy=policy,
            common_draws=common_draws,
            repeat=repeat,
        )


@contextmanager
def _young_heap() -> Iterator[None]:
    """Run with what the process held before (its imports: NumPy, SQLAlchemy, pydantic
    models, statement caches) out of the cyclic garbage collector's reach (``gc.freeze``),
    and give it back afterwards (``gc.unfreeze``): a full collection then scans only what the
    simulation made instead of the whole process, many times per job (a 729-trial job
    spent 1 s of its 8 in ~11 full collections). Nothing is lost: what the freeze held is
    collectable again once the simulation ends. Left alone when something else froze the
    heap (a server before it forks)."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _simulate(
    spec: JobSpec,
    *,
    seed: int,
    oracle: bool,
    max_ticks: int,
    workload: WorkloadModel | None,
    learn: bool,
    drift: Drift | None,
    timeline: bool,
    policy: Callable[[JobSpec], Policy] | None,
    common_draws: bool,
    repeat: int,
) -> dict[str, Any]:
    model = workload or AnalyticWorkload()
    settings = Settings(
        database_url="sqlite://", controller_enabled=False, store_url="file:///simulated"
    )
    engine = make_engine(settings.database_url)
    _migrate(engine)
    database = Database(settings, engine=engine)
    clock = VirtualClock(START)
    # Loss noise keyed by the seed: a spec learns the same way under every policy at one seed.
    platform = SimulatedPlatform(
        EmulatorPlatform(
            clock,
            seed=seed,
            slowdown=(lambda now: drift.factor_at(now - START)) if drift is not None else None,
            noise_key=noise_key if common_draws else None,
        ),
        model,
        loss_salt=f"seed-{seed}",
    )
    try:
        with database.session() as session:
            tenant = Tenant(name="simulation")
            session.add(tenant)
            session.flush()
            commit(session)
        controller = Controller(
            database,
            platform,
            settings,
            owner="simulation",
            seed=seed,
            policy_for=(
                (
                    lambda _spec: with_architecture(
                        Oracle(
                            truth=truth_for(spec, model),
                            sigma=model.sigma,
                            rounds=rounds_to_target(spec, f"seed-{seed}"),
                        ),
                        model.arm64_speed,
                    )
                )
                if oracle
                else policy or policy_for
            ),
            stage_overhead_s=TICK_S,  # a stage ends at most one tick after its last task
            learn=learn,
        )
        summaries = []
        for index in range(repeat):
            if index:
                clock.advance(REPEAT_GAP_S)
            with database.session() as session:
                # submitted on the virtual clock, as everything after it is stamped
                submitted_at = datetime.fromtimestamp(clock.now(), UTC)
                job_id = JobService(session).submit(tenant, spec, lambda job: {}, now=submitted_at)
                job_id = job_id.job_id
                commit(session)
            drive(controller, clock, [job_id], max_ticks=max_ticks, tick_s=TICK_S)
            summaries.append(summary(database, tenant, job_id))
            if timeline:
                summaries[-1]["timeline"] = _timeline(database, tenant, job_id)
        result = summaries[-1]
        if repeat > 1:
            result["previous_jobs"] = summaries[:-1]
        return result
    finally:
        platform.close()
        engine.dispose()


def _timeline(database: Database, tenant: Tenant, job_id) -> list[dict[str, Any]]:
    with database.session() as session:
        events = JobService(session).timeline(tenant, job_id)
    origin = events[0].at
    return [
        {
            "at_s": round((event.at - origin).total_seconds(), 6),
            "type": event.type,
            "stage": event.stage,
        }
        for event in events
    ]


def summary(database: Database, tenant: Tenant, job_id) -> dict[str, Any]:
    with database.session() as session:
        job = session.get(Job, job_id)
        cost = JobService(session).cost(tenant, job_id)
        stage_cost = {item.stage.id: item.cost for item in cost.stages}
        stages = session.scalars(
            select(Stage).where(Stage.job_id == job_id).order_by(Stage.position)
        ).all()
        counts = dict(
            session.execute(
                select(Invocation.stage_id, func.count(func.distinct(Invocation.task_id)))
                .where(Invocation.job_id == job_id)
                .group_by(Invocation.stage_id)
            ).all()
        )
        invocations = session.scalar(
            select(func.count()).select_from(Invocation).where(Invocation.job_id == job_id)
        )
        costliest = session.scalar(
            select(
                type_coerce(
                    func.max(Invocation.compute_cost_usd + Invocation.request_cost_usd), Money
                )
            ).where(Invocation.job_id == job_id)
        )
        cold = session.scalar(
            select(func.count())
            .select_from(Invocation)
            .where(Invocation.job_id == job_id, Invocation.cold_start.is_(True))
        )
        by_shape: dict[Any, dict[str, dict[int, int]]] = {}
        for stage_id, shape, memory_mb, n in session.execute(
            select(Invocation.stage_id, Task.shape, Invocation.memory_mb, func.count())
            .join(Task, Task.id == Invocation.task_id)
            .where(Invocation.job_id == job_id)
            .group_by(Invocation.stage_id, Task.shape, Invocation.memory_mb)
        ):
            by_shape.setdefault(stage_id, {}).setdefault(shape, {})[memory_mb] = n
        by_architecture: dict[Any, dict[str, int]] = {}
        for stage_id, architecture, n in session.execute(
            select(Invocation.stage_id, Invocation.architecture, func.count())
            .where(Invocation.job_id == job_id)
            .group_by(Invocation.stage_id, Invocation.architecture)
        ):
            by_architecture.setdefault(stage_id, {})[architecture] = n
        names = {stage.id: stage.name for stage in stages}
        changes = [
            {
                "stage": names.get(a.stage_id),
                "shape": (a.detail or {}).get("shape"),
                "from_mb": a.from_mb,
                "to_mb": a.to_mb,
                **(
                    {"architecture": a.detail["architecture"]}
                    if (a.detail or {}).get("architecture")
                    else {}
                ),
                "state": a.state,
                "rule": a.rule,
                "reason": a.reason,
            }
            for a in session.scalars(
                select(Allocation)
                .where(Allocation.job_id == job_id)
                .order_by(Allocation.created_at, Allocation.id)
            )
        ]
        jct = (job.finished_at - job.started_at).total_seconds()
        return {
            "policy": job.policy,
            "status": job.status,
            "status_reason": job.status_reason,
            "jct_s": round(jct, 3),
            "cost_usd": float(cost.total.total_usd),
            "deadline_s": job.deadline_s,
            "deadline_met": jct <= job.deadline_s,
            "invocations": invocations,
            "costliest_invocation_usd": float(costliest or 0),
            "cold_starts": cold,
            # invocations per architecture they ran on (retries included)
            "architectures": dict(
                sorted(sum((Counter(n) for n in by_architecture.values()), Counter()).items())
            ),
            "stages": [
                {
                    "name": stage.name,
                    "tasks": counts.get(stage.id, 0),
                    "memory_mb": stage.planned_memory_mb,
                    # invocations per task shape and memory size (retries included)
                    "memory_by_shape": by_shape.get(stage.id, {}),
                    "architectures": by_architecture.get(stage.id, {}),
                    "started_s": round((stage.started_at - job.started_at).total_seconds(), 3)
                    if stage.started_at and job.started_at
                    else None,
                    "duration_s": round((stage.finished_at - stage.started_at).total_seconds(), 3)
                    if stage.finished_at and stage.started_at
                    else None,
                    "cost_usd": float(stage_cost[stage.id].total_usd),
                }
                for stage in stages
            ],
            "memory_changes": changes,
            "result": job.result,
        }
