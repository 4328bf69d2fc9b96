"""The built-in workloads run through the emulator: real training in worker processes, losses
fall, footprints are measured, and a too-small memory is an out-of-memory result, not a crash."""

from __future__ import annotations

import uuid

import pytest

from service.platform.emulator.backend import EmulatorPlatform
from service.platform.interface import ErrorKind, FunctionSpec
from service.workloads import registry
from service.workloads.contract import CONTRACT

SYNTHETIC = "builtin:synthetic?n=4000&d=20&classes=2&seed=1"


@pytest.fixture(scope="module")
def platform():
    emulator = EmulatorPlatform(seed=7, workers=2)
    yield emulator
    emulator.close()


def register(platform, function: str, kind: str, memory_mb: int = 1024) -> str:
    name = f"it-{function.removeprefix('builtin:')}-{kind}"
    platform.ensure_function(
        FunctionSpec(name=name, handler=registry.resolve(function, kind), timeout_s=120)
    )
    platform.ensure_variant(name, memory_mb)
    return name


def event(
    store, kind, params, epoch_from, epoch_to, checkpoint_in=None, dataset=SYNTHETIC, **extra
):
    return {
        "contract": CONTRACT,
        "job_id": "job-it",
        "task_id": uuid.uuid4().hex,
        "attempt": 1,
        "kind": kind,
        "params": params,
        "epoch_from": epoch_from,
        "epoch_to": epoch_to,
        "checkpoint_in": checkpoint_in,
        "checkpoint_out": f"{store}/checkpoints",
        "dataset": dataset,
        "store": store,
        **extra,
    }


@pytest.mark.parametrize("function", ["builtin:logreg", "builtin:mlp"])
@pytest.mark.parametrize("dataset", ["builtin:digits", SYNTHETIC])
def test_hpo_trial_resumes_and_loss_falls(platform, tmp_path, function, dataset):
    store = tmp_path.as_uri()
    name = register(platform, function, "hpo")
    params = {"lr": 0.05, "seed": 3} | ({"hidden": 32} if function == "builtin:mlp" else {})
    first = platform.invoke(
        name, event(store, "hpo", params, 0, 1, dataset=dataset), memory_mb=1024
    )
    assert first.ok, first.error_message
    second = platform.invoke(
        name,
        event(store, "hpo", params, 1, 4, first.payload["checkpoint"], dataset=dataset),
        memory_mb=1024,
    )
    assert second.ok, second.error_message
    assert second.payload["epochs_done"] == 4
    assert second.payload["metrics"]["loss"] < first.payload["metrics"]["loss"]
    assert second.report.max_memory_used_mb > 0 and second.report.billed_ms >= 1


@pytest.mark.parametrize("dataset", ["builtin:digits", SYNTHETIC])
def test_training_rounds_average_workers_and_loss_falls(platform, tmp_path, dataset):
    store = tmp_path.as_uri()
    name = register(platform, "builtin:mlp", "training")
    params = {"lr": 0.05, "hidden": 16}
    checkpoints, losses = None, []
    for round_ in range(3):
        results = [
            platform.invoke(
                name,
                event(
                    store,
                    "training",
                    params,
                    round_,
                    round_ + 1,
                    checkpoints,
                    dataset=dataset,
                    worker=w,
                    workers=2,
                    round=round_,
                ),
                memory_mb=1024,
            )
            for w in range(2)
        ]
        assert all(r.ok for r in results), [r.error_message for r in results]
        losses.append(sum(r.payload["metrics"]["loss"] for r in results) / 2)
        checkpoints = [r.payload["checkpoint"] for r in results]
    assert losses[-1] < losses[0]


def test_too_small_memory_is_out_of_memory_and_the_emulator_survives(platform, tmp_path):
    store = tmp_path.as_uri()
    name = register(platform, "builtin:logreg", "hpo", memory_mb=128)
    big = "builtin:synthetic?n=600000&d=100&classes=2&seed=1"  # ~240 MB of features
    result = platform.invoke(
        name, event(store, "hpo", {"lr": 0.1}, 0, 1, dataset=big), memory_mb=128
    )
    assert result.error is ErrorKind.OUT_OF_MEMORY
    assert result.report is not None and result.report.memory_mb == 128
    # the pool replaced the killed worker: the next invocation runs normally
    small = platform.invoke(name, event(store, "hpo", {"lr": 0.1}, 0, 1), memory_mb=1024)
    assert small.ok, small.error_message


def test_a_redelivered_event_replays_instead_of_training(platform, tmp_path):
    store = tmp_path.as_uri()
    name = register(platform, "builtin:logreg", "hpo")
    same = event(store, "hpo", {"lr": 0.1}, 0, 3, dataset="builtin:synthetic?n=30000&d=50")
    first = platform.invoke(name, same, memory_mb=1024)
    again = platform.invoke(name, same, memory_mb=1024)
    assert first.ok and again.ok
    assert first.payload["replayed"] is False and again.payload["replayed"] is True
    assert again.payload["checkpoint"] == first.payload["checkpoint"]
    assert again.report.duration_ms < first.report.duration_ms / 2  # no training the 2nd time
