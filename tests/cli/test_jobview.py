"""The watch view folded from the API's JSON, and its live (terminal) rendering."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
import typer
from rich.console import Console

from service.cli import jobs, jobview

JOB = {
    "id": "j-1",
    "name": "digits [hpo]",
    "kind": "hpo",
    "status": "running",
    "status_reason": None,
    "policy": "ce-scaling",
    "deadline_s": 900.0,
    "deadline_missed": None,
    "max_cost_usd": 2.0,
    "cancel_requested": False,
    "created_at": "2026-12-03T10:00:00Z",
    "started_at": "2026-12-03T10:00:00Z",
    "finished_at": None,
    "result": None,
    "spec": {"hpo": {"trials": 27}},
}
COST = {
    "total_usd": 0.0001,
    "invocations": 30,
    "stages": [
        {"name": "rung-0", "total_usd": 0.00009, "invocations": 27},
        {"name": "rung-1", "total_usd": 0.00001, "invocations": 3},
    ],
}


def event(event_type, stage=None, **detail):
    return {"at": "2026-12-03T10:00:01Z", "type": event_type, "stage": stage, "detail": detail}


TIMELINE = {
    "events": [
        event("job.submitted", status="pending"),
        event("stage.started", "rung-0", kind="rung", tasks={"total": 27, "succeeded": 27}),
        event(
            "allocation.changed",
            "rung-0",
            shape="hidden=32",
            to_mb=256,
            state="applied",
            rule="explore",
        ),
        event(
            "allocation.changed",
            "rung-0",
            shape="hidden=32",
            to_mb=128,
            state="applied",
            rule="deadline-split",
        ),
        event("allocation.vetoed", "rung-0", shape="hidden=64", to_mb=64, state="vetoed"),
        event("stage.finished", "rung-0", status="succeeded", tasks={"total": 27, "succeeded": 27}),
        event(
            "stage.started",
            "rung-1",
            kind="rung",
            tasks={"total": 9, "succeeded": 3, "running": 6, "failed": 0},
        ),
    ]
}
NOW = datetime(2026, 12, 3, 10, 1, 0, tzinfo=UTC)


def test_fold_counts_trials_memory_per_shape_cost_and_time_left():
    progress = jobview.fold(JOB, COST, TIMELINE, now=NOW)
    assert [(s.name, s.status, s.succeeded, s.total) for s in progress.stages] == [
        ("rung-0", "succeeded", 27, 27),
        ("rung-1", "running", 3, 9),
    ]
    assert progress.memory == {"hidden=32": (128, "deadline-split")}  # the veto changed nothing
    assert progress.stages[0].cost_usd == 0.00009
    assert progress.left_s == pytest.approx(840.0) and not progress.finished
    assert progress.units_done() == "trial runs done 30, first rung 27/27"
    assert progress.line(clock=False) == (
        "running: rung-1 3/9, trial runs done 30, first rung 27/27, cost $0.000100, "
        "memory hidden=32: 128 MB"
    )


def test_the_live_view_shows_stages_memory_cost_and_deadline():
    console = Console(file=io.StringIO(), width=140, force_terminal=True, color_system=None)
    console.print(jobview.watch_view(jobview.fold(JOB, COST, TIMELINE, now=NOW)))
    text = console.file.getvalue()
    assert "digits [hpo]" in text  # a name is data, not Rich markup
    assert "14m00s left of the 15m00s deadline" in text
    assert "cost so far $0.000100 over 30 invocation(s) (cap $2.00)" in text
    assert "rung-1" in text and "3/9" in text
    assert "hidden=32" in text and "128 MB" in text and "deadline-split" in text


def test_watch_on_a_terminal_redraws_until_the_end_and_exits_1_if_cancelled(monkeypatch):
    screen = io.StringIO()
    monkeypatch.setattr(
        jobs,
        "_console",
        lambda err=False: Console(file=screen, width=140, force_terminal=True, color_system=None),
    )
    ended = {**JOB, "status": "cancelled", "finished_at": "2026-12-03T10:00:30Z"}
    states = iter([JOB, JOB, ended])

    class FakeClient:
        def job(self, job_id):
            return next(states)

        def cost(self, job_id):
            return COST

        def timeline(self, job_id):
            return TIMELINE

    with pytest.raises(typer.Exit) as exit_:
        jobs._watch(FakeClient(), "j-1", 0.0, jobs.Output.table)
    assert exit_.value.exit_code == 1
    assert "cescale jobs watch" in screen.getvalue() and "cancelled" in screen.getvalue()
