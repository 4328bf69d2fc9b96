"""Successive halving as a pure state machine."""

from __future__ import annotations

import itertools

import pytest

from service.spec import HpoSpec
from service.workflows.hpo import HpoWorkflow, rung_schedule
from service.workflows.plan import Finished, StagePlan, StageResult, TaskOutcome

SPACE = {"lr": {"log_uniform": [1e-4, 1e-1]}, "hidden": {"choice": [32, 64, 256]}}


def hpo(**changes) -> HpoSpec:
    return HpoSpec.model_validate(
        {"search_space": SPACE, "trials": 27, "eta": 3, "min_epochs": 1, "max_epochs": 27} | changes
    )


def run(workflow: HpoWorkflow, score=lambda plan, task: task.params["lr"]):
    """Drive the workflow, scoring each trial with ``score``; return stages and the end."""
    history: list[StageResult] = []
    while True:
        step = workflow.next_stage(history)
        if isinstance(step, Finished):
            return history, step
        outcomes = {
            t.key: TaskOutcome(
                t.key,
                True,
                loss=1 - score(step, t),
                score=score(step, t),
                epochs_done=t.epoch_to,
                checkpoint=f"mem://{step.position}/{t.key}",
            )
            for t in step.tasks
        }
        history.append(StageResult(step, outcomes))


@pytest.mark.parametrize(
    ("trials", "eta", "r", "big_r", "expected"),
    [
        (27, 3, 1, 27, [(27, 1), (9, 3), (3, 9), (1, 27)]),
        (81, 3, 1, 27, [(81, 1), (27, 3), (9, 9), (3, 27)]),
        (16, 2, 1, 16, [(16, 1), (8, 2), (4, 4), (2, 8), (1, 16)]),
        (10, 3, 2, 10, [(10, 2), (3, 10)]),
        (1, 3, 1, 27, [(1, 27)]),
        (5, 4, 3, 3, [(5, 3)]),
    ],
)
def test_rung_schedule(trials, eta, r, big_r, expected):
    assert [(x.keep, x.epochs) for x in rung_schedule(trials, eta, r, big_r)] == expected


def test_survivors_resume_from_their_checkpoints_and_the_best_wins():
    history, end = run(HpoWorkflow(hpo()))
    assert [len(s.plan.tasks) for s in history] == [27, 9, 3, 1]
    for previous, current in itertools.pairwise(history):
        kept = {t.key for t in current.plan.tasks}
        best_before = sorted(previous.plan.tasks, key=lambda t: -t.params["lr"])[: len(kept)]
        assert kept == {t.key for t in best_before}  # the top 1/eta by score continue
        for task in current.plan.tasks:
            assert task.resume == (previous.plan.position, task.key)
            prior = next(t for t in previous.plan.tasks if t.key == task.key)
            assert task.epoch_from == prior.epoch_to
    assert end.ok
    best_lr = max(t.params["lr"] for t in history[0].plan.tasks)
    assert end.result["best"]["params"]["lr"] == best_lr
    assert end.result["best"]["epochs"] == 27
    assert end.result["best"]["checkpoint"] == f"mem://3/{end.result['best']['trial']}"


def test_sampling_is_seeded_and_within_the_space():
    a = HpoWorkflow(hpo()).next_stage([])
    b = HpoWorkflow(hpo()).next_stage([])
    c = HpoWorkflow(hpo(seed=7)).next_stage([])
    assert isinstance(a, StagePlan)
    assert [t.params for t in a.tasks] == [t.params for t in b.tasks]
    assert [t.params for t in a.tasks] != [t.params for t in c.tasks]
    for task in a.tasks:
        assert 1e-4 <= task.params["lr"] <= 1e-1
        assert task.params["hidden"] in (32, 64, 256)
        assert task.shape == f"hidden={task.params['hidden']}"


def test_failed_trials_do_not_survive_and_an_all_failed_rung_fails_the_job():
    workflow = HpoWorkflow(hpo(trials=9, max_epochs=9))
    first = workflow.next_stage([])
    outcomes = {
        t.key: TaskOutcome(t.key, ok=i < 4, score=float(i)) for i, t in enumerate(first.tasks)
    }
    second = workflow.next_stage([StageResult(first, outcomes)])
    assert {t.key for t in second.tasks} == {first.tasks[i].key for i in (3, 2, 1)}
    dead = {t.key: TaskOutcome(t.key, ok=False) for t in second.tasks}
    end = workflow.next_stage([StageResult(first, outcomes), StageResult(second, dead)])
    assert isinstance(end, Finished) and not end.ok
    assert "rung-1" in end.reason


def test_hyperband_runs_brackets_from_exploratory_to_conservative():
    history, end = run(HpoWorkflow(hpo(hyperband=True, trials=27)))
    names = [s.plan.name for s in history]
    assert names[:4] == ["b0-rung-0", "b0-rung-1", "b0-rung-2", "b0-rung-3"]
    assert names[-1] == "b3-rung-0"
    first_rungs = [s for s in history if s.plan.name.endswith("rung-0")]
    assert [len(s.plan.tasks) for s in first_rungs] == [27, 12, 6, 4]
    assert [s.plan.tasks[0].epoch_to for s in first_rungs] == [1, 3, 9, 27]
    keys = [t.key for s in first_rungs for t in s.plan.tasks]
    assert len(keys) == len(set(keys))  # task keys unique across brackets
    assert end.ok and end.result["trials"] == 49
