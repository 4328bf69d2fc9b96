"""The lifecycle core without a database: snapshots in, typed changes out, every status change
by the transition rules."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from service.control import lifecycle
from service.control.lifecycle import (
    Evidence,
    IllegalTransition,
    JobEnded,
    JobView,
    MemoryChange,
    OpenInvocation,
    Snapshot,
    StageClosed,
    StageOpened,
    StageView,
    StepSettings,
    TaskFailed,
    TaskLaunched,
    TaskOpened,
    TaskRecorded,
    TaskRetried,
    TaskView,
)
from service.control.retry import RetryPolicy
from service.domain.enums import InvocationOutcome, JobStatus, WorkStatus
from service.policies.static import Static
from service.spec import JobSpec
from service.workflows import workflow_for

NOW = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
STARTED = NOW - timedelta(minutes=10)
SPEC = JobSpec.model_validate(
    {
        "name": "unit",
        "kind": "hpo",
        "workload": {"function": "builtin:logreg"},
        "hpo": {
            "search_space": {"lr": {"log_uniform": [0.001, 0.5]}},
            "trials": 9,
            "eta": 3,
            "min_epochs": 1,
            "max_epochs": 3,
        },
        "qos": {"deadline_s": 300},
        "policy": {"name": "static", "memory_mb": 1024},
    }
)
SETTINGS = StepSettings(SPEC, in_flight_limit=4)


def job(**changes) -> JobView:
    base = JobView(uuid.uuid4(), "running", STARTED, 300.0, None)
    return JobView(**(base.__dict__ | changes))


def no_evidence() -> Evidence:
    raise AssertionError("a step that decides nothing must not read the evidence")


def snapshot(stages=(), tasks=(), open_invocations=(), evidence=no_evidence, **job_changes):
    return Snapshot(
        job(**job_changes),
        tuple(stages),
        tuple(tasks),
        tuple(open_invocations),
        Decimal(0),
        evidence,
    )


def step(snap: Snapshot):
    return lifecycle.step(snap, workflow_for(SPEC), Static(1024), NOW, SETTINGS)


def rung0(status="running", task_status="running", checkpoints=True):
    stage = StageView(uuid.uuid4(), 0, "rung-0", "rung", status, round=0)
    tasks = [
        TaskView(
            uuid.uuid4(),
            0,
            f"trial-{i:04d}",
            "default",
            task_status,
            memory_mb=1024,
            epoch_from=0,
            epoch_to=1,
            attempts=1,
            checkpoint_out=f"ckpt-{i}" if checkpoints and task_status == "succeeded" else None,
            result={"loss": 1.0 / (i + 1), "score": i / 10, "epochs_done": 1}
            if task_status == "succeeded"
            else None,
        )
        for i in range(9)
    ]
    return stage, tasks


def test_a_new_job_opens_its_first_stage_decides_and_launches_within_the_limit():
    changes = step(snapshot(evidence=Evidence))
    opened = [c for c in changes if isinstance(c, StageOpened)]
    assert [c.plan.name for c in opened] == ["rung-0"]
    assert opened[0].planned_memory_mb == 1024
    assert len([c for c in changes if isinstance(c, TaskOpened)]) == 9
    assert all(c.memory_mb == 1024 for c in changes if isinstance(c, TaskOpened))
    assert [c.decision.memory_mb for c in changes if isinstance(c, MemoryChange)] == [1024]
    launched = [c for c in changes if isinstance(c, TaskLaunched)]
    assert len(launched) == 4  # the in-flight limit
    assert all(c.attempt == 1 and c.ref[0] == 0 for c in launched)


def test_a_steady_step_changes_nothing_and_reads_no_evidence():
    stage, tasks = rung0()
    opened = [OpenInvocation(uuid.uuid4(), t.id, 1024) for t in tasks[:4]]
    assert step(snapshot([stage], tasks, opened)) == []


def test_a_finished_rung_closes_and_the_survivors_resume_from_their_checkpoints():
    stage, tasks = rung0(task_status="succeeded")
    changes = step(snapshot([stage], tasks, evidence=Evidence))
    assert changes[0] == StageClosed(0, WorkStatus.SUCCEEDED, NOW)
    opened = [c for c in changes if isinstance(c, TaskOpened)]
    assert [c.plan.key for c in opened] == ["trial-0008", "trial-0007", "trial-0006"]
    assert [c.checkpoint_in for c in opened] == ["ckpt-8", "ckpt-7", "ckpt-6"]
    assert next(c for c in changes if isinstance(c, StageOpened)).plan.round == 1


def test_a_rung_where_every_trial_failed_ends_the_job_with_the_causes():
    stage, tasks = rung0(task_status="failed")
    tasks = [TaskView(**(t.__dict__ | {"failure_reason": "timed out 2 times"})) for t in tasks]
    changes = step(snapshot([stage], tasks))
    end = changes[-1]
    assert isinstance(end, JobEnded) and end.status is JobStatus.FAILED
    assert end.reason == "every trial of rung-0 failed: timed out 2 times (9)"
    assert end.deadline_missed is True  # 600 s after its start, against 300 s


def test_cancel_waits_for_open_invocations_then_cancels_what_is_open():
    stage, tasks = rung0()
    opened = [OpenInvocation(uuid.uuid4(), tasks[0].id, 1024)]
    assert step(snapshot([stage], tasks, opened, cancel_requested=True)) == []
    (end,) = step(snapshot([stage], tasks, cancel_requested=True))
    assert end.status is JobStatus.CANCELLED and end.reason == "cancelled by user"
    assert end.cancelled_stages == (0,)
    assert len(end.cancelled_tasks) == 9


def test_the_budget_cap_ends_the_job_once_nothing_is_in_flight():
    stage, tasks = rung0()
    snap = snapshot([stage], tasks, max_cost_usd=Decimal("0.000001"))
    snap = Snapshot(snap.job, snap.stages, snap.tasks, (), Decimal("0.000002"), no_evidence)
    (end,) = step(snap)
    assert end.status is JobStatus.FAILED and end.reason.startswith("budget cap reached")


def test_end_job_closes_everything_open_and_fills_deadline_missed():
    stage, tasks = rung0()
    tasks[0] = TaskView(**(tasks[0].__dict__ | {"status": "succeeded"}))
    end = lifecycle.end_job(job(), JobStatus.FAILED, "boom", NOW, [stage], tasks)
    assert end.cancelled_stages == (0,)
    assert len(end.cancelled_tasks) == 8 and (0, "trial-0000") not in end.cancelled_tasks
    assert end.deadline_missed is True
    unstarted = job(status="pending", started_at=None)
    assert (
        lifecycle.end_job(unstarted, JobStatus.CANCELLED, None, NOW, [], []).deadline_missed is None
    )
    failed_at_once = lifecycle.end_job(unstarted, JobStatus.FAILED, "x", NOW, [], [], started=True)
    assert failed_at_once.started_at == NOW and failed_at_once.deadline_missed is False


def test_transitions_outside_the_rules_are_refused():
    with pytest.raises(IllegalTransition):
        lifecycle.end_job(job(status="succeeded"), JobStatus.FAILED, "again", NOW, [], [])
    _, tasks = rung0()
    with pytest.raises(IllegalTransition):
        lifecycle.launch(tasks[0])  # already running
    assert lifecycle.start_job(job(), NOW) is None
    assert lifecycle.start_job(job(status="pending"), NOW).at == NOW


def result_of(outcome, payload=None, problem=None, earlier=(), memory=512, peak=None):
    _, tasks = rung0()
    task = TaskView(**(tasks[0].__dict__ | {"memory_mb": memory}))
    return lifecycle.on_result(
        task,
        outcome,
        payload=payload,
        problem=problem,
        invocation_memory_mb=memory,
        peak_mb=peak,
        earlier_outcomes=list(earlier),
        retry=RetryPolicy(),
        rng=random.Random(0),
        now=NOW,
        contract="cescale.handler/1",
        function_name="f",
    )


def test_results_record_retry_or_fail_the_task():
    ok = {"metrics": {"loss": 0.5, "score": 0.9}, "epochs_done": 1, "checkpoint": "c"}
    ok |= {"peak_memory_mb": 80}
    recorded = result_of(InvocationOutcome.OK, ok)
    assert isinstance(recorded, TaskRecorded) and recorded.checkpoint_out == "c"
    assert recorded.result["loss"] == 0.5
    failed = result_of(InvocationOutcome.OK, {"error": {"type": "ValueError", "message": "no"}})
    assert failed == TaskFailed("ValueError: no", handled=True)
    off = result_of(InvocationOutcome.OK, ok, problem="$.metrics: missing")
    assert isinstance(off, TaskFailed) and off.contract and "$.metrics" in off.reason
    oom = result_of(InvocationOutcome.OUT_OF_MEMORY, earlier=["out_of_memory"], peak=600)
    assert isinstance(oom, TaskRetried) and oom.memory_mb > 512
    assert oom.memory_change is not None and oom.memory_change.rule == "oom-floor"
    timeout = result_of(InvocationOutcome.TIMEOUT, earlier=["timeout", "timeout"])
    assert isinstance(timeout, TaskFailed) and "timed out 2 times" in timeout.reason
    assert lifecycle.task_status(timeout) is WorkStatus.FAILED
