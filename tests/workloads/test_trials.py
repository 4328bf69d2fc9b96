"""HPO trials: real learning, exact resume across rungs, and idempotent re-delivery."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from service.workloads.checkpoint import read_checkpoint
from service.workloads.classifiers import MultilayerPerceptron
from service.workloads.handlers import logreg_trial, mlp_trial

SYNTHETIC = "builtin:synthetic?n=4000&d=20&classes=3&seed=1"


@pytest.mark.parametrize(
    ("handler", "params"),
    [
        (logreg_trial, {"lr": 0.1}),
        (mlp_trial, {"lr": 0.1, "hidden": 32, "batch_size": 32}),
    ],
)
@pytest.mark.parametrize("dataset", ["builtin:digits", SYNTHETIC])
def test_trial_losses_fall_and_the_model_learns(make_event, handler, params, dataset):
    response = handler(make_event(params=params, epoch_to=4, dataset=dataset), None)
    losses = response["metrics"]["train_losses"]
    assert len(losses) == 4 and response["epochs_done"] == 4
    assert all(later < earlier for earlier, later in itertools.pairwise(losses))
    assert losses[-1] < 0.8 * losses[0]
    chance = 1 / (10 if dataset == "builtin:digits" else 3)
    assert response["metrics"]["score"] > chance + 0.3
    assert response["metrics"]["loss"] == losses[-1]


def test_mlp_beats_logreg_on_the_synthetic_mixture(make_event):
    """Each class is two blobs: a linear model cannot separate it, a hidden layer can."""
    common = {"epoch_to": 6, "dataset": SYNTHETIC}
    linear = logreg_trial(make_event(task_id="lin", params={"lr": 0.3}, **common), None)
    mlp = mlp_trial(make_event(task_id="mlp", params={"lr": 0.1, "hidden": 64}, **common), None)
    assert mlp["metrics"]["score"] > linear["metrics"]["score"] + 0.05


@pytest.mark.parametrize(
    ("handler", "params"), [(logreg_trial, {"lr": 0.2}), (mlp_trial, {"hidden": [32, 16]})]
)
def test_resuming_a_rung_continues_exactly(make_event, handler, params):
    straight = handler(make_event(task_id="straight", params=params, epoch_to=4), None)
    first = handler(make_event(task_id="rung-0", params=params, epoch_to=2), None)
    second = handler(
        make_event(
            task_id="rung-1",
            params=params,
            epoch_from=2,
            epoch_to=4,
            checkpoint_in=first["checkpoint"],
        ),
        None,
    )
    assert second["epochs_done"] == 4
    assert (
        first["metrics"]["train_losses"] + second["metrics"]["train_losses"]
        == (straight["metrics"]["train_losses"])
    )
    resumed = read_checkpoint(second["checkpoint"]).arrays
    direct = read_checkpoint(straight["checkpoint"]).arrays
    assert resumed.keys() == direct.keys()
    for name in direct:
        np.testing.assert_array_equal(resumed[name], direct[name])


def test_a_redelivered_event_returns_the_stored_result_without_training(
    make_event, monkeypatch, tmp_path
):
    steps: list[int] = []
    real_train_epoch = MultilayerPerceptron.train_epoch

    def counting(self, model, data, epoch, params, rng):
        steps.append(epoch)
        return real_train_epoch(self, model, data, epoch, params, rng)

    monkeypatch.setattr(MultilayerPerceptron, "train_epoch", counting)
    event = make_event(params={"hidden": 16}, epoch_to=3)
    first = mlp_trial(event, None)
    assert steps == [0, 1, 2]
    checkpoint = tmp_path / "checkpoints" / "job-1" / "task-1" / "attempt-1.npz"
    written = checkpoint.stat().st_mtime_ns

    again = mlp_trial(dict(event), None)
    assert steps == [0, 1, 2]  # no epoch ran a second time
    assert again["replayed"] is True and first["replayed"] is False
    assert again["metrics"] == first["metrics"]
    assert again["checkpoint"] == first["checkpoint"]
    assert checkpoint.stat().st_mtime_ns == written

    retry = mlp_trial(make_event(params={"hidden": 16}, epoch_to=3, attempt=2), None)
    assert steps == [0, 1, 2, 0, 1, 2]  # a new attempt is new work, and reproduces the result
    assert retry["replayed"] is False
    assert retry["metrics"]["train_losses"] == first["metrics"]["train_losses"]


def test_a_different_event_under_a_used_attempt_is_a_conflict(make_event):
    assert "error" not in logreg_trial(make_event(params={"lr": 0.1}), None)
    conflict = logreg_trial(make_event(params={"lr": 0.2}), None)
    assert conflict["error"]["type"] == "IdempotencyConflict"


def test_resume_refuses_a_checkpoint_that_does_not_fit(make_event, tmp_path):
    logreg = logreg_trial(make_event(task_id="lr", epoch_to=2), None)
    mlp = mlp_trial(make_event(task_id="mlp", params={"hidden": 16}, epoch_to=2), None)

    attempts = iter(range(1, 100))

    def resume(handler, checkpoint, epoch_from=2, **fields):
        event = make_event(
            task_id="resume",
            attempt=next(attempts),
            epoch_from=epoch_from,
            epoch_to=epoch_from + 1,
            checkpoint_in=checkpoint,
            **fields,
        )
        return handler(event, None)["error"]

    assert resume(mlp_trial, logreg["checkpoint"])["type"] == "InvalidInput"
    wrong_width = resume(mlp_trial, mlp["checkpoint"], params={"hidden": 32})
    assert wrong_width["type"] == "InvalidInput" and "hidden" in wrong_width["message"]
    assert resume(logreg_trial, logreg["checkpoint"], epoch_from=3)["type"] == "InvalidInput"
    missing = resume(logreg_trial, f"file://{tmp_path}/nope.npz")
    assert missing["type"] == "InvalidInput" and "does not exist" in missing["message"]
    other_data = resume(logreg_trial, logreg["checkpoint"], dataset=SYNTHETIC)
    assert other_data["type"] == "InvalidInput"


def test_an_evaluation_only_run_reports_the_loaded_model(make_event):
    trained = logreg_trial(make_event(task_id="train", params={"lr": 0.3}, epoch_to=3), None)
    evaluated = logreg_trial(
        make_event(
            task_id="eval",
            params={"lr": 0.3},
            epoch_from=3,
            epoch_to=3,
            checkpoint_in=trained["checkpoint"],
        ),
        None,
    )
    assert evaluated["metrics"]["epochs_run"] == 0
    assert evaluated["metrics"]["score"] == trained["metrics"]["score"]
    assert evaluated["metrics"]["loss"] < trained["metrics"]["train_losses"][0]


def test_a_missing_dataset_is_a_handled_error(make_event, tmp_path):
    response = logreg_trial(make_event(dataset=f"file://{tmp_path}/absent.npz"), None)
    assert response["error"]["type"] == "InvalidInput"
    assert "absent.npz" in response["error"]["message"]


def test_a_corrupt_dataset_is_a_handled_error(make_event, tmp_path):
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 truncated")
    response = logreg_trial(make_event(dataset=f"file://{tmp_path}/corrupt.npz"), None)
    assert response["error"]["type"] == "InvalidInput"
    assert "corrupt.npz is not a readable .npz" in response["error"]["message"]


def test_out_of_memory_is_raised_not_turned_into_a_payload(make_event, monkeypatch):
    """Lambda and the emulator must see the failure (FunctionError / OOM kill) to retry bigger."""

    def exhausted(self, model, data, epoch, params, rng):
        raise MemoryError

    monkeypatch.setattr(MultilayerPerceptron, "train_epoch", exhausted)
    with pytest.raises(MemoryError):
        mlp_trial(make_event(params={"hidden": 8}), None)
