"""The simulator's pluggable workload models: the analytic default is unchanged, a measured
profile scales by epochs, and static-safe is computed as documented."""

from __future__ import annotations

import json
import math

import pytest

from service.bench.workloads import (
    PROFILES_DIR,
    BenchWorkload,
    builtin_workloads,
    profile_workloads,
    static_safe_mb,
)
from service.platform.clock import VirtualClock
from service.platform.emulator.backend import EmulatorPlatform
from service.platform.interface import ErrorKind, FunctionSpec
from service.simulation.platform import SimulatedPlatform
from service.simulation.profile_model import ProfileWorkload
from service.simulation.work import AnalyticWorkload
from service.simulation.workload_model import invocation_cost
from service.workloads.registry import BUILTIN_HANDLERS

PROFILE = {
    "name": "tiny",
    "cold_start_ms": 300.0,
    "memory_mb": {
        "256": {"p10": 900.0, "p50": 1000.0, "p90": 1100.0, "mem_used_mb": 180.0},
        "1024": {"p10": 270.0, "p50": 300.0, "p90": 330.0, "mem_used_mb": 200.0},
    },
}


def event(epoch_from: int, epoch_to: int) -> dict:
    return {
        "contract": "cescale.handler/1",
        "job_id": "job",
        "task_id": "task",
        "attempt": 1,
        "kind": "hpo",
        "params": {"lr": 0.01, "hidden": 32},
        "epoch_from": epoch_from,
        "epoch_to": epoch_to,
        "checkpoint_in": None,
        "checkpoint_out": "file:///x/checkpoints",
        "dataset": "builtin:digits",
        "store": "file:///x",
    }


@pytest.mark.parametrize(
    ("peak", "expected"),
    [(10.0, 128), (299.0, 384), (640 / 1.1, 640), (640 / 1.1 + 0.5, 704), (20_000.0, 10_240)],
)
def test_static_safe_is_peak_with_headroom_rounded_up_to_64(peak: float, expected: int) -> None:
    assert static_safe_mb(peak) == expected


def test_static_safe_of_a_workload_covers_its_largest_shape() -> None:
    workload = next(w for w in builtin_workloads() if w.id == "hpo-mlp-eta3")
    document = workload.document
    peaks = [
        invocation_cost(
            "builtin:mlp", document["workload"]["dataset"], {"hidden": h}, 1
        ).peak_memory_mb
        for h in document["hpo"]["search_space"]["hidden"]["choice"]
    ]
    assert len(workload.shapes()) == 3
    assert workload.largest_peak_mb() == pytest.approx(max(peaks))
    assert workload.static_safe_mb() == math.ceil(max(peaks) * 1.1 / 64) * 64
    assert workload.static_safe_mb() >= max(peaks) * 1.1


def test_every_builtin_workload_is_a_valid_job_whose_shapes_differ() -> None:
    for workload in builtin_workloads():
        spec = workload.spec({"name": "ce-scaling"}, 600.0, seed=3)
        assert spec.kind == workload.kind
        if spec.hpo is not None:
            assert spec.hpo.seed == 3
            assert 27 <= spec.hpo.trials <= 243
            peaks = [
                workload.model().peak_mb("builtin:mlp", spec.workload.dataset, p, 1)
                for p in workload.shapes()
            ]
            assert max(peaks) > min(peaks)


def test_analytic_workload_is_what_the_simulator_always_ran() -> None:
    work = AnalyticWorkload().work("builtin:mlp", event(0, 3))
    cost = invocation_cost("builtin:mlp", "builtin:digits", {"lr": 0.01, "hidden": 32}, 3)
    assert work.traits is not None and work.profile is None
    assert work.traits.cpu_ms == cost.cpu_ms
    assert work.traits.peak_memory_mb == cost.peak_memory_mb


def test_a_profile_is_one_epoch_of_one_task(tmp_path) -> None:
    model = ProfileWorkload(PROFILE)
    assert model.work("builtin:mlp", event(2, 5)).profile["memory_mb"]["256"]["p50"] == 3000.0
    truth = model.truth("builtin:mlp", "builtin:digits", {}, 3, 1, 256)
    assert truth.duration_ms == pytest.approx(3000.0)
    assert truth.init_ms == 300.0
    assert truth.peak_mb == 180.0  # below the smallest footprint measured it runs out of memory
    assert model.peak_mb("builtin:mlp", "builtin:digits", {}, 1) == 200.0

    # through the emulator, without noise: k epochs take k times the profile's median
    platform = SimulatedPlatform(EmulatorPlatform(VirtualClock(0.0), noise=False), model)
    try:
        platform.ensure_function(
            FunctionSpec(name="f", handler=BUILTIN_HANDLERS["builtin:mlp"], memory_mb=256)
        )
        platform.ensure_variant("f", 1024)
        run = platform.invoke("f", event(0, 4), memory_mb=1024)
        assert run.error is ErrorKind.NONE
        assert run.report.duration_ms == pytest.approx(4 * 300.0)
        assert run.report.init_ms == pytest.approx(300.0)
        assert run.payload["epochs_done"] == 4
        platform.ensure_variant("f", 160)
        assert platform.invoke("f", event(0, 1), memory_mb=160).error is ErrorKind.OUT_OF_MEMORY
    finally:
        platform.close()


def test_profile_workloads_come_from_the_file(tmp_path) -> None:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(PROFILE))
    hpo, training = profile_workloads(path)
    assert (hpo.id, training.id) == ("hpo-tiny", "train-tiny")
    assert isinstance(hpo, BenchWorkload) and hpo.family == "profile:tiny"
    assert hpo.static_safe_mb() == training.static_safe_mb() == static_safe_mb(200.0) == 256
    for bundled in ("mlp-training", "s3-etl", "image-recognition"):
        assert (PROFILES_DIR / f"{bundled}.json").exists()


def test_a_seed_replays_exactly_and_learns_the_same_under_every_policy(tmp_path) -> None:
    """Loss noise is keyed by the seed, not the job id: the same trials survive whatever the
    policy, which is what lets the benchmark pair runs by seed."""
    from service.simulation.run import simulate

    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(PROFILE))
    workload = profile_workloads(path)[0]
    runs = [
        simulate(workload.spec(policy, 600.0, 4), seed=4, workload=workload.model())
        for policy in (
            {"name": "ce-scaling"},
            {"name": "ce-scaling"},
            {"name": "static", "memory_mb": 512},
        )
    ]
    assert runs[0]["jct_s"] == runs[1]["jct_s"] and runs[0]["cost_usd"] == runs[1]["cost_usd"]
    best = [{k: run["result"]["best"][k] for k in ("trial", "params", "loss")} for run in runs]
    assert best[0] == best[2]


def test_profile_workload_ids_come_from_the_profiles_name_not_the_file(tmp_path) -> None:
    path = tmp_path / "image-recognition.json"  # a built-in profile's file name
    path.write_text(json.dumps(PROFILE | {"name": "My Net v2"}))
    hpo, training = profile_workloads(path)
    assert (hpo.id, training.id) == ("hpo-my-net-v2", "train-my-net-v2")
    assert hpo.family == "profile:my-net-v2"
    from service.bench.suite import SuiteConfig, select_workloads

    ids = [w.id for w in select_workloads(SuiteConfig(quick=True, profiles=(path,)))]
    assert "hpo-my-net-v2" in ids and "hpo-image-recognition" not in ids


@pytest.mark.parametrize("quick", [True, False])
def test_a_profile_that_would_share_a_built_in_id_is_refused(tmp_path, quick) -> None:
    from service.bench.suite import SuiteConfig, select_workloads

    builtin = json.loads((PROFILES_DIR / "image-recognition.json").read_text())
    path = tmp_path / "image-recognition.json"
    path.write_text(json.dumps(PROFILE | {"name": "image-recognition"}))
    with pytest.raises(ValueError, match=r"'hpo-image-recognition'.*name\" of its own"):
        select_workloads(SuiteConfig(quick=quick, profiles=(path,)))
    # the same measurement under another path is the built-in workload, not a second one
    copy = tmp_path / "copy.json"
    copy.write_text(json.dumps(builtin))
    chosen = select_workloads(SuiteConfig(quick=quick, profiles=(copy,)))
    ids = [w.id for w in chosen]
    assert ids.count("hpo-image-recognition") == 1
    assert next(w for w in chosen if w.id == "hpo-image-recognition").profile == (
        PROFILES_DIR / "image-recognition.json"
    )


def test_two_user_profiles_with_one_name_are_refused(tmp_path) -> None:
    from service.bench.suite import SuiteConfig, select_workloads

    one, two = tmp_path / "a.json", tmp_path / "b.json"
    one.write_text(json.dumps(PROFILE))
    two.write_text(json.dumps(PROFILE | {"cold_start_ms": 900.0}))
    with pytest.raises(ValueError, match=r"b\.json: .*'hpo-tiny'.*a\.json"):
        select_workloads(SuiteConfig(quick=True, profiles=(one, two)))


def test_the_bench_command_says_so_in_one_line(tmp_path) -> None:
    from typer.testing import CliRunner

    from service.cli.main import app

    path = tmp_path / "s3-etl.json"
    path.write_text(json.dumps(PROFILE | {"name": "s3-etl"}))
    result = CliRunner().invoke(
        app, ["bench", "--quick", "--out", str(tmp_path / "out"), "--profile", str(path)]
    )
    assert result.exit_code == 2
    assert "'hpo-s3-etl'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_simulated_invocations_of_other_work_reuse_warm_environments() -> None:
    """As in the live product: a rung's trials reuse the environments the rung before left warm
    (the simulator once gave every work size its own function: 40 of 40 invocations cold)."""
    from pathlib import Path

    from service.simulation.run import simulate
    from service.spec import JobSpec

    root = Path(__file__).resolve().parents[2]
    spec = JobSpec.model_validate_json((root / "examples/hpo-digits.json").read_text())
    result = simulate(spec, seed=0)
    assert result["status"] == "succeeded" and result["invocations"] == 40
    assert result["cold_starts"] <= 27  # at most one per rung-0 trial, none after


def test_the_analytic_model_bills_first_use_loading_and_holds_the_whole_dataset() -> None:
    wide = "builtin:synthetic?n=100000&d=512"
    one = invocation_cost("builtin:mlp", wide, {"hidden": 64}, 1, 1)
    eighth = invocation_cost("builtin:mlp", wide, {"hidden": 64}, 1, 8)
    assert eighth.peak_memory_mb == pytest.approx(one.peak_memory_mb)  # a worker holds it all
    assert eighth.cpu_ms < one.cpu_ms  # and trains on its shard
    assert one.cold_cpu_ms > 700  # generating 51 M values once per environment
    model = AnalyticWorkload()
    platform = SimulatedPlatform(EmulatorPlatform(VirtualClock(0.0), noise=False), model)
    try:
        platform.ensure_function(
            FunctionSpec(name="f", handler=BUILTIN_HANDLERS["builtin:mlp"], memory_mb=442)
        )
        cold = platform.invoke("f", event(0, 1))
        warm = platform.invoke("f", event(0, 1))
        assert cold.report.cold and not warm.report.cold
        cost = invocation_cost("builtin:mlp", "builtin:digits", event(0, 1)["params"], 1)
        # at 442 MB (a quarter of a vCPU) the first-use CPU takes four times as long
        extra = cold.report.duration_ms - warm.report.duration_ms
        assert extra == pytest.approx(cost.cold_cpu_ms * 1769 / 442, rel=0.01)
        assert cold.report.init_ms == pytest.approx(cost.init_ms)
    finally:
        platform.close()
