"""The control loop runs real jobs on the emulator (real training, virtual clock), on Postgres."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

from sqlalchemy import func, select

from service.control.drive import drive
from service.control.loop import Controller
from service.database import Database, commit
from service.models import Allocation, Invocation, Job, Stage, Task
from service.platform.clock import VirtualClock
from service.platform.emulator.backend import EmulatorPlatform
from tests.conftest import truncate_all
from tests.control.helpers import HPO, START, TRAINING, assert_invariants, submit


def test_hpo_and_training_jobs_run_to_the_end(loop_env):
    database, platform, clock, settings = loop_env
    ids = submit(database, HPO, TRAINING)
    controller = Controller(database, platform, settings, seed=3)
    report = drive(controller, clock, ids, max_ticks=500)
    assert report.finished == set(ids)
    assert_invariants(database, ids)

    with database.session() as session:
        hpo, training = (session.get(Job, i) for i in ids)
        assert hpo.status == "succeeded", hpo.status_reason
        assert training.status == "succeeded", training.status_reason
        best = hpo.result["best"]
        assert 0.001 <= best["params"]["lr"] <= 0.5 and best["epochs"] == 3
        assert best["score"] > 0.5
        stages = session.scalars(
            select(Stage).where(Stage.job_id == hpo.id).order_by(Stage.position)
        ).all()
        assert [(s.name, s.status) for s in stages] == [
            ("rung-0", "succeeded"),
            ("rung-1", "succeeded"),
        ]
        losses = training.result["losses"]
        assert training.result["rounds"] == 4 and losses[-1] < losses[0]
        model = training.result["checkpoint"]  # the last round's 3 worker updates
        assert len(model) == 3 and all(Path(urlparse(uri).path).is_file() for uri in model)
        assert Path(urlparse(best["checkpoint"]).path).is_file()
        for job in (hpo, training):
            invocations = session.scalars(
                select(Invocation).where(Invocation.job_id == job.id)
            ).all()
            assert invocations and all(i.state == "done" for i in invocations)
            ledger = sum(i.compute_cost_usd + i.request_cost_usd for i in invocations)
            assert ledger > Decimal(0)
            assert job.deadline_missed is False
            assert job.lease_owner is None
        # one allocation per job: the static size, applied
        allocations = session.scalars(select(Allocation)).all()
        assert sorted((a.to_mb, a.state) for a in allocations) == [
            (512, "applied"),
            (1024, "applied"),
        ]
        tasks = session.scalar(select(func.count()).select_from(Task))
        assert tasks == 9 + 3 + 3 * 4


def test_out_of_memory_raises_memory_and_retries(loop_env):
    database, platform, clock, settings = loop_env
    spec = HPO | {
        "workload": {
            "function": "builtin:logreg",
            "dataset": "builtin:synthetic?n=400000&d=100",
        },  # ~200 MB of data
        "hpo": HPO["hpo"] | {"trials": 1, "max_epochs": 1},
        "policy": {"name": "static", "memory_mb": 128},
    }
    (job_id,) = submit(database, spec)
    controller = Controller(database, platform, settings, seed=3)
    drive(controller, clock, [job_id], max_ticks=200)
    with database.session() as session:
        job = session.get(Job, job_id)
        assert job.status == "succeeded", job.status_reason
        invocations = session.scalars(
            select(Invocation).where(Invocation.job_id == job_id).order_by(Invocation.attempt)
        ).all()
        outcomes = [(i.memory_mb, i.outcome) for i in invocations]
        assert outcomes[0] == (128, "out_of_memory")
        assert outcomes[-1][1] == "ok" and outcomes[-1][0] > 128
        memories = [m for m, _ in outcomes]
        assert memories == sorted(memories)  # memory only goes up on OOM
        bumps = session.scalars(select(Allocation).where(Allocation.rule == "oom-floor")).all()
        assert len(bumps) == len(invocations) - 1
        assert all(b.to_mb >= b.from_mb * 1.2 for b in bumps)


def test_cancel_stops_a_running_job(loop_env):
    database, platform, clock, settings = loop_env
    (job_id,) = submit(database, HPO)
    controller = Controller(database, platform, settings, seed=3)
    controller.run_once(datetime_of(clock))  # starts it, dispatches rung-0
    with database.session() as session:
        job = session.get(Job, job_id)
        assert job.status == "running"
        job.cancel_requested_at = datetime_of(clock)
        commit(session)
    drive(controller, clock, [job_id], max_ticks=100)
    with database.session() as session:
        job = session.get(Job, job_id)
        assert job.status == "cancelled"
        stages = session.scalars(select(Stage).where(Stage.job_id == job_id)).all()
        assert len(stages) == 1  # nothing launched after the request
        assert (
            session.scalar(
                select(func.count()).select_from(Invocation).where(Invocation.state == "intent")
            )
            == 0
        )


def test_budget_cap_stops_launching(loop_env):
    database, platform, clock, settings = loop_env
    (job_id,) = submit(database, HPO | {"budget": {"max_cost_usd": 0.0000001}})
    controller = Controller(database, platform, settings, seed=3)
    drive(controller, clock, [job_id], max_ticks=100)
    with database.session() as session:
        job = session.get(Job, job_id)
        assert job.status == "failed" and "budget cap" in job.status_reason
        assert (
            session.scalar(select(func.count()).select_from(Stage).where(Stage.job_id == job_id))
            == 1
        )


def datetime_of(clock):
    from service.control.loop import to_datetime

    return to_datetime(clock.now())


def test_ce_scaling_pilots_then_plans_and_records_each_decision(loop_env):
    database, platform, clock, settings = loop_env
    spec = HPO | {"hpo": HPO["hpo"] | {"trials": 12}, "policy": {"name": "ce-scaling"}}
    (job_id,) = submit(database, spec)
    controller = Controller(database, platform, settings, seed=3, stage_overhead_s=0.0)
    drive(controller, clock, [job_id], max_ticks=500)
    assert_invariants(database, [job_id])
    with database.session() as session:
        allocations = session.scalars(
            select(Allocation).where(Allocation.job_id == job_id).order_by(Allocation.created_at)
        ).all()
        rules = [a.rule for a in allocations]
        assert rules[0] == "explore"  # the pilot of rung-0, at one vCPU
        assert "deadline-split" in rules  # then the rest of rung-0, planned
        planned = [a for a in allocations if a.rule == "deadline-split"]
        assert all(a.reason and "deadline split" in a.reason for a in planned)
        rung0 = session.scalars(
            select(Task)
            .join(Stage, Stage.id == Task.stage_id)
            .where(Stage.job_id == job_id, Stage.position == 0)
        ).all()
        assert len({t.memory_mb for t in rung0}) >= 2 and all(t.memory_mb for t in rung0)


def test_power_tuning_profiles_first_and_bills_it(loop_env):
    database, platform, clock, settings = loop_env
    spec = HPO | {
        "policy": {
            "name": "power-tuning",
            "strategy": "cost",
            "memory_mb_candidates": [256, 1024],
            "invocations_per_size": 2,
        }
    }
    (job_id,) = submit(database, spec)
    controller = Controller(database, platform, settings, seed=3)
    drive(controller, clock, [job_id], max_ticks=500)
    assert_invariants(database, [job_id])
    with database.session() as session:
        stages = session.scalars(
            select(Stage).where(Stage.job_id == job_id).order_by(Stage.position)
        ).all()
        assert [s.kind for s in stages][:2] == ["profiling", "rung"]
        profiling = session.scalars(
            select(Invocation).where(Invocation.stage_id == stages[0].id)
        ).all()
        assert sorted(i.memory_mb for i in profiling) == [256, 256, 1024, 1024]
        assert all(i.compute_cost_usd > 0 for i in profiling)  # billed, in the ledger
        chosen = {
            t.memory_mb
            for t in session.scalars(
                select(Task).where(Task.job_id == job_id, Task.stage_id != stages[0].id)
            )
        }
        assert len(chosen) == 1 and chosen <= {256, 1024}


def test_a_job_the_backend_cannot_run_fails_with_the_reason(loop_env):
    database, platform, clock, settings = loop_env
    spec = HPO | {"workload": {"function": "my-own-lambda", "dataset": "builtin:digits"}}
    ids = submit(database, spec, TRAINING)
    controller = Controller(database, platform, settings, seed=3)
    drive(controller, clock, ids, max_ticks=500)
    with database.session() as session:
        mine, other = (session.get(Job, i) for i in ids)
        assert mine.status == "failed"
        assert "emulator runs only the built-in workloads" in mine.status_reason
        assert other.status == "succeeded"  # one bad job does not hold up the others


def test_platform_refusals_fail_the_job_after_retries(loop_env, monkeypatch):
    database, platform, clock, settings = loop_env
    (job_id,) = submit(database, HPO)
    from service.platform.interface import PlatformError

    def refuse(*_args, **_kwargs):
        raise PlatformError("AccessDeniedException: not allowed to invoke")

    monkeypatch.setattr(platform, "start_invoke", refuse)
    controller = Controller(database, platform, settings, seed=3)
    drive(controller, clock, [job_id], max_ticks=50)
    with database.session() as session:
        job = session.get(Job, job_id)
        assert job.status == "failed"
        assert "AccessDeniedException" in job.status_reason


def test_a_timeout_is_retried_once_then_the_job_fails_with_the_cause(loop_env):
    database, platform, clock, settings = loop_env
    spec = HPO | {
        "workload": {
            "function": "builtin:logreg",
            "dataset": "builtin:synthetic?n=20000&d=50",
            "timeout_s": 1,  # seconds of work at 128 MB (0.07 vCPU): it cannot finish
        },
        "hpo": HPO["hpo"] | {"trials": 1, "max_epochs": 30},
        "policy": {"name": "static", "memory_mb": 128},
    }
    (job_id,) = submit(database, spec)
    controller = Controller(database, platform, settings, seed=3)
    drive(controller, clock, [job_id], max_ticks=200)
    with database.session() as session:
        job = session.get(Job, job_id)
        invocations = session.scalars(
            select(Invocation).where(Invocation.job_id == job_id).order_by(Invocation.attempt)
        ).all()
        assert [(i.attempt, i.memory_mb, i.outcome) for i in invocations] == [
            (1, 128, "timeout"),
            (2, 128, "timeout"),  # once more, at the same memory: a timeout is no memory signal
        ]
        assert all(i.compute_cost_usd > 0 for i in invocations)  # a timeout is billed
        task = session.scalar(select(Task).where(Task.job_id == job_id))
        assert task.status == "failed" and task.failure_reason == "timed out 2 times at 128 MB"
        assert job.status == "failed"
        assert job.status_reason == "every trial of rung-0 failed: timed out 2 times at 128 MB (1)"


def test_throttles_back_off_and_every_task_still_runs_once(pg_engine, settings, tmp_path):
    settings = settings.model_copy(update={"store_url": (tmp_path / "store").as_uri()})
    database = Database(settings, engine=pg_engine)
    clock = VirtualClock(START)
    # an account limit of 2 concurrent invocations, and two jobs that each send 2 at once
    platform = EmulatorPlatform(clock, seed=1, workers=2, concurrency_limit=2)
    try:
        ids = submit(database, HPO, HPO)
        controller = Controller(database, platform, settings, seed=3)
        drive(controller, clock, ids, max_ticks=2000)
        figures = assert_invariants(database, ids)  # each task succeeded exactly once
        with database.session() as session:
            throttled = session.scalars(
                select(Invocation).where(Invocation.outcome == "throttled")
            ).all()
            assert throttled, "the account limit was never hit"
            assert all(i.compute_cost_usd == 0 == i.request_cost_usd for i in throttled)
            # a throttled attempt is retried (after a back-off) until it runs
            assert figures["retries"] == len(throttled)
    finally:
        platform.close()
        truncate_all(pg_engine)
