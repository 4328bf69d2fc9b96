"""The paper-shaped workloads: they run in simulation, and their memory and I/O behave as their
descriptions say (model families 10×+ apart, some trials above one vCPU's 1,769 MB and
multi-threaded; an update exchange through S3 that no memory size shortens)."""

from __future__ import annotations

import pytest

from service.bench.suite import SuiteConfig, select_workloads
from service.bench.workloads import MODEL_FAMILIES, paper_workloads
from service.platform.clock import VirtualClock
from service.platform.emulator.backend import EmulatorPlatform
from service.platform.emulator.model import cpu_factor
from service.platform.interface import ErrorKind, FunctionSpec
from service.simulation.families import FAMILY_OF_HIDDEN, ModelFamilies
from service.simulation.platform import SimulatedPlatform
from service.simulation.run import simulate
from service.workloads.registry import BUILTIN_HANDLERS, TRAINING_HANDLERS

WORKLOADS = {w.id: w for w in paper_workloads()}


def event(params: dict, epochs: int, kind: str = "hpo", workers: int = 1) -> dict:
    document = {
        "contract": "cescale.handler/1",
        "job_id": "job",
        "task_id": "task",
        "attempt": 1,
        "kind": kind,
        "params": params,
        "epoch_from": 0,
        "epoch_to": epochs,
        "checkpoint_in": None,
        "checkpoint_out": "file:///x/checkpoints",
        "dataset": "builtin:digits",
        "store": "file:///x",
    }
    if kind == "training":
        document |= {"worker": 0, "workers": workers, "round": 0}
    return document


def test_the_bench_runs_them_beside_the_existing_workloads() -> None:
    ids = [w.id for w in select_workloads(SuiteConfig())]
    assert {"hpo-families", "train-resnet18-s3-w8", "train-resnet50-s3-w16"} <= set(ids)
    assert {"hpo-mlp-eta3", "train-mlp-w4", "hpo-mlp-training"} <= set(ids)  # kept
    assert all(w.family == MODEL_FAMILIES for w in WORKLOADS.values())


def test_hpo_families_footprints_differ_tenfold_and_the_largest_needs_more_than_a_vcpu() -> None:
    workload = WORKLOADS["hpo-families"]
    model = workload.model()
    peaks = {
        params["hidden"]: model.peak_mb("builtin:mlp", "builtin:digits", params, 1)
        for params in workload.shapes()
    }
    assert set(peaks) == set(FAMILY_OF_HIDDEN)
    assert max(peaks.values()) / min(peaks.values()) >= 10
    assert max(peaks.values()) > 1769
    assert workload.static_safe_mb() > 1769

    # through the emulator: the largest family runs out of memory at one vCPU, fits above its
    # footprint, and being multi-threaded it keeps speeding up past 1,769 MB
    platform = SimulatedPlatform(EmulatorPlatform(VirtualClock(0.0), noise=False), model)
    try:
        platform.ensure_function(FunctionSpec(name="f", handler=BUILTIN_HANDLERS["builtin:mlp"]))
        for size in (1769, 3538, 7076):
            platform.ensure_variant("f", size)
        vgg = event({"hidden": 4096, "lr": 0.01}, 1)
        assert platform.invoke("f", vgg, memory_mb=1769).error is ErrorKind.OUT_OF_MEMORY
        at_2 = platform.invoke("f", vgg, memory_mb=3538)
        at_4 = platform.invoke("f", vgg, memory_mb=7076)
        assert at_2.ok and at_4.ok
        assert at_4.report.duration_ms < 0.7 * at_2.report.duration_ms
        assert at_2.report.max_memory_used_mb > 1769
        linear = platform.invoke("f", event({"hidden": 32, "lr": 0.01}, 1), memory_mb=1769)
        assert linear.ok and linear.report.max_memory_used_mb * 10 <= at_2.report.max_memory_used_mb
    finally:
        platform.close()


@pytest.mark.parametrize(("hidden", "workers"), [(512, 8), (1024, 16)])
def test_the_update_exchange_takes_as_long_at_every_memory_size(hidden: int, workers: int) -> None:
    model = ModelFamilies()
    params = {"hidden": hidden, "lr": 0.05}
    io_ms = model.io_ms(params, workers)
    assert io_ms > 5_000  # seconds of S3 traffic per round
    assert model.io_ms({"hidden": hidden}, 1) == 0.0  # an HPO trial exchanges nothing
    run = model.invocation(params, 1, workers)
    family = run.family
    platform = SimulatedPlatform(EmulatorPlatform(VirtualClock(0.0), noise=False), model)
    try:
        platform.ensure_function(
            FunctionSpec(name="w", handler=TRAINING_HANDLERS["builtin:mlp"], memory_mb=2048)
        )
        durations = {}
        for size in (1024, 1769, 4096, 10240):
            platform.ensure_variant("w", size)
            platform.invoke("w", event(params, 1, "training", workers), memory_mb=size)  # cold
            warm = platform.invoke("w", event(params, 1, "training", workers), memory_mb=size)
            assert warm.ok and not warm.report.cold
            durations[size] = warm.report.duration_ms
            compute = run.cpu_ms * cpu_factor(size, family.parallel_fraction, family.max_threads)
            # what is not compute is the exchange, and it is the same at every size
            assert durations[size] - compute == pytest.approx(io_ms, abs=1.0)
        assert durations[10240] > io_ms  # no size gets a round below its exchange
        assert durations[1024] > durations[1769] > durations[4096] > durations[10240]
    finally:
        platform.close()


@pytest.mark.parametrize("workload_id", sorted(WORKLOADS))
def test_they_run_in_simulation_at_static_safe_and_under_the_oracle(workload_id: str) -> None:
    workload = WORKLOADS[workload_id]
    policy = {"name": "static", "memory_mb": workload.static_safe_mb()}
    spec = workload.spec(policy, 3600.0, seed=0)
    safe = simulate(spec, seed=0, workload=workload.model())
    oracle = simulate(spec, seed=0, workload=workload.model(), oracle=True)
    assert safe["status"] == oracle["status"] == "succeeded"
    assert oracle["cost_usd"] <= safe["cost_usd"] * 1.001
    if workload.kind == "hpo":
        # the largest family ran, at a size above one vCPU
        sizes = {
            int(size)
            for stage in oracle["stages"]
            for size in stage["memory_by_shape"].get("hidden=4096", {})
        }
        assert sizes and min(sizes) > 1769
