"""The bring-your-own-function example runs on the contract the SDK gives it."""

from __future__ import annotations

import importlib.util
import itertools

import pytest

from service.workloads.checkpoint import average_checkpoints
from service.workloads.contract import RESPONSE_SCHEMA, schema_errors

from .conftest import ROOT


@pytest.fixture(scope="module")
def example():
    path = ROOT / "examples" / "byo_function" / "handler.py"
    spec = importlib.util.spec_from_file_location("byo_example_handler", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_trains_resumes_and_replays(example, make_event):
    first = example.handler(make_event(task_id="svm", epoch_to=2), None)
    assert schema_errors(first, RESPONSE_SCHEMA) is None
    assert first["metrics"]["score"] > 0.8  # digits are nearly linearly separable
    resumed = example.handler(
        make_event(task_id="svm-2", epoch_from=2, epoch_to=4, checkpoint_in=first["checkpoint"]),
        None,
    )
    losses = first["metrics"]["train_losses"] + resumed["metrics"]["train_losses"]
    assert all(later < earlier for earlier, later in itertools.pairwise(losses))
    replay = example.handler(make_event(task_id="svm", epoch_to=2), None)
    assert replay["replayed"] is True and replay["metrics"] == first["metrics"]


def test_the_example_is_also_a_data_parallel_worker(example, make_event, tmp_path):
    updates = [
        example.handler(
            make_event(kind="training", task_id=f"w{w}", worker=w, workers=2, epoch_to=1), None
        )["checkpoint"]
        for w in range(2)
    ]
    summary = average_checkpoints(updates, f"file://{tmp_path}/avg.npz")
    assert summary["workers"] == 2 and summary["epoch"] == 1


def test_the_example_validates_its_own_params(example, make_event):
    response = example.handler(make_event(params={"c": -1}), None)
    assert response["error"]["type"] == "InvalidEvent"
    assert "$.params.c" in response["error"]["message"]
