"""Data-parallel training: W workers per round, model averaging between rounds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from service.workloads.checkpoint import average_checkpoints, read_checkpoint
from service.workloads.handlers import logreg_training_worker, mlp_training_worker, mlp_trial

SYNTHETIC = "builtin:synthetic?n=3000&d=16&classes=3&seed=2"


def run_rounds(handler, make_event, tmp_path, *, dataset, params, workers, rounds):
    """The control loop's part, reduced to its essence: fan out, average, repeat."""
    checkpoint, summaries, responses = None, [], []
    for round_ in range(rounds):
        updates = []
        for worker in range(workers):
            response = handler(
                make_event(
                    kind="training",
                    task_id=f"round-{round_}-worker-{worker}",
                    worker=worker,
                    workers=workers,
                    round=round_,
                    epoch_from=round_,
                    epoch_to=round_ + 1,
                    checkpoint_in=checkpoint,
                    params=params,
                    dataset=dataset,
                ),
                None,
            )
            assert "error" not in response, response
            updates.append(response["checkpoint"])
            responses.append(response)
        summary = average_checkpoints(updates, f"file://{tmp_path}/averaged/round-{round_}.npz")
        summaries.append(summary)
        checkpoint = summary["checkpoint"]
    return summaries, responses


@pytest.mark.parametrize(
    ("handler", "params"),
    [
        (logreg_training_worker, {"lr": 0.3, "batch_size": 32}),
        (mlp_training_worker, {"lr": 0.1, "hidden": 32, "batch_size": 32}),
    ],
)
@pytest.mark.parametrize("dataset", ["builtin:digits", SYNTHETIC])
def test_round_losses_fall(make_event, tmp_path, handler, params, dataset):
    summaries, responses = run_rounds(
        handler, make_event, tmp_path, dataset=dataset, params=params, workers=3, rounds=4
    )
    losses = [s["loss"] for s in summaries]
    assert all(later < earlier for earlier, later in itertools.pairwise(losses))
    assert losses[-1] < 0.8 * losses[0]
    assert [s["epoch"] for s in summaries] == [1, 2, 3, 4]
    assert {r["metrics"]["worker"] for r in responses} == {0, 1, 2}
    n_train = sum(r["metrics"]["n_samples"] for r in responses[:3])
    assert summaries[0]["n_samples"] == n_train


def test_round_zero_workers_share_the_seeded_init_and_train_on_different_shards(
    make_event, tmp_path
):
    summaries, responses = run_rounds(
        mlp_training_worker,
        make_event,
        tmp_path,
        dataset=SYNTHETIC,
        params={"hidden": 8},
        workers=2,
        rounds=1,
    )
    # Zero epochs from the init reproduces the shared starting model on every worker.
    starts = [
        read_checkpoint(
            mlp_training_worker(
                make_event(
                    kind="training",
                    task_id=f"init-{w}",
                    worker=w,
                    workers=2,
                    epoch_to=0,
                    params={"hidden": 8},
                    dataset=SYNTHETIC,
                ),
                None,
            )["checkpoint"]
        ).arrays
        for w in range(2)
    ]
    np.testing.assert_array_equal(starts[0]["w0"], starts[1]["w0"])
    updates = [read_checkpoint(r["checkpoint"]).arrays for r in responses]
    assert not np.array_equal(updates[0]["w0"], updates[1]["w0"])
    averaged = read_checkpoint(summaries[0]["checkpoint"]).arrays
    expected = (updates[0]["w0"].astype(np.float64) + updates[1]["w0"]) / 2
    np.testing.assert_allclose(averaged["w0"], expected, rtol=1e-5, atol=1e-6)


def test_workers_can_average_lazily(make_event, tmp_path):
    """Given the list of updates as checkpoint_in, a worker averages them itself: same result."""
    summaries, responses = run_rounds(
        logreg_training_worker,
        make_event,
        tmp_path,
        dataset="builtin:digits",
        params={"lr": 0.2},
        workers=2,
        rounds=1,
    )
    updates = [r["checkpoint"] for r in responses]
    common = {
        "kind": "training",
        "worker": 0,
        "workers": 2,
        "round": 1,
        "epoch_from": 1,
        "epoch_to": 2,
        "params": {"lr": 0.2},
    }
    eager = logreg_training_worker(
        make_event(task_id="eager", checkpoint_in=summaries[0]["checkpoint"], **common), None
    )
    lazy = logreg_training_worker(make_event(task_id="lazy", checkpoint_in=updates, **common), None)
    assert lazy["metrics"]["train_losses"] == eager["metrics"]["train_losses"]


def test_averaging_refuses_updates_from_different_rounds(make_event, tmp_path):
    from service.workloads.contract import InvalidInput

    _, responses = run_rounds(
        logreg_training_worker,
        make_event,
        tmp_path,
        dataset="builtin:digits",
        params={},
        workers=1,
        rounds=2,
    )
    with pytest.raises(InvalidInput, match="epoch"):
        average_checkpoints([r["checkpoint"] for r in responses], f"file://{tmp_path}/x.npz")


def test_hpo_checkpoints_resume_in_training_only_with_matching_shape(make_event):
    trial = mlp_trial(make_event(task_id="trial", params={"hidden": 8}, epoch_to=1), None)
    follow_up = mlp_training_worker(
        make_event(
            kind="training",
            task_id="w",
            round=1,
            epoch_from=1,
            epoch_to=2,
            checkpoint_in=trial["checkpoint"],
            params={"hidden": 8},
        ),
        None,
    )
    assert follow_up["metrics"]["round"] == 1 and "error" not in follow_up
