"""Training rounds as a pure state machine."""

from __future__ import annotations

from service.spec import TrainingSpec
from service.workflows.plan import Finished, StageResult, TaskOutcome
from service.workflows.training import TrainingWorkflow


def spec(**changes) -> TrainingSpec:
    return TrainingSpec.model_validate({"workers": 4, "max_epochs": 10} | changes)


def drive(workflow, losses):
    history = []
    for loss in losses:
        stage = workflow.next_stage(history)
        if isinstance(stage, Finished):
            return history, stage
        history.append(
            StageResult(
                stage,
                {
                    t.key: TaskOutcome(
                        t.key, True, loss=loss, checkpoint=f"s3://b/{stage.name}/{t.key}"
                    )
                    for t in stage.tasks
                },
            )
        )
    return history, workflow.next_stage(history)


def test_rounds_shard_work_and_chain_models():
    workflow = TrainingWorkflow(spec(epochs_per_round=2, params={"lr": 0.1}))
    first = workflow.next_stage([])
    assert first.name == "round-0" and first.resume_model is None
    assert [t.key for t in first.tasks] == ["worker-000", "worker-001", "worker-002", "worker-003"]
    assert first.tasks[2].params == {"lr": 0.1}
    assert (first.tasks[0].epoch_from, first.tasks[0].epoch_to) == (0, 2)
    history, _ = drive(workflow, [1.0])
    second = workflow.next_stage(history)
    assert second.resume_model == 0 and (second.tasks[0].epoch_from, second.tasks[0].epoch_to) == (
        2,
        4,
    )


def test_stops_at_the_target_loss():
    _history, end = drive(TrainingWorkflow(spec(target_loss=0.3)), [1.0, 0.6, 0.29, 0.1])
    assert end.ok and end.result["target_reached"] is True
    assert end.result["rounds"] == 3 and end.result["losses"] == [1.0, 0.6, 0.29]
    assert end.result["final_loss"] == 0.29 and end.result["model_round"] == 2
    # the model: the last round's worker updates, averaged
    assert end.result["checkpoint"] == [f"s3://b/round-2/worker-00{w}" for w in range(4)]


def test_stops_at_max_epochs_with_a_partial_last_round():
    _history, end = drive(TrainingWorkflow(spec(max_epochs=5, epochs_per_round=2)), [1, 1, 1, 1])
    assert end.ok and end.result["target_reached"] is False
    assert end.result["rounds"] == 3 and end.result["epochs"] == 5


def test_a_failed_worker_fails_the_job():
    workflow = TrainingWorkflow(spec())
    stage = workflow.next_stage([])
    outcomes = {t.key: TaskOutcome(t.key, ok=t.key != "worker-001", loss=0.5) for t in stage.tasks}
    end = workflow.next_stage([StageResult(stage, outcomes)])
    assert isinstance(end, Finished) and not end.ok and "worker-001" in end.reason
