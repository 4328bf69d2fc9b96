"""Architecture ``auto`` end to end in simulation: the real control loop, the emulator running
each invocation on its variant's architecture at the profile's arm64 speed, billed at that
architecture's price."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli.main import app
from service.platform.clock import VirtualClock
from service.platform.emulator.backend import EmulatorPlatform
from service.platform.emulator.profiles import ProfileError, parse_profile
from service.platform.interface import FunctionSpec, Traits, VariantNotFoundError
from service.simulation.profile_model import ProfileWorkload
from service.simulation.run import simulate
from service.spec import JobSpec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def profile(arm64_speed: float) -> ProfileWorkload:
    return ProfileWorkload(
        {
            "name": "cpu-bound",
            "cold_start_ms": 400.0,
            "arm64_speed": arm64_speed,
            "memory_mb": {
                "256": {"p10": 1900.0, "p50": 2000.0, "p90": 2100.0, "mem_used_mb": 150.0},
                "1024": {"p10": 470.0, "p50": 500.0, "p90": 530.0, "mem_used_mb": 160.0},
                "1769": {"p10": 275.0, "p50": 290.0, "p90": 305.0, "mem_used_mb": 165.0},
            },
        }
    )


def hpo(architecture: str) -> JobSpec:
    document = json.loads((EXAMPLES / "hpo-digits.json").read_text())
    document["workload"]["architecture"] = architecture
    return JobSpec.model_validate(document)


def ran_on(result: dict) -> list[dict[str, int]]:
    return [stage["architectures"] for stage in result["stages"]]


def test_arm64_as_fast_ends_on_arm64_and_costs_less_than_x86_64():
    workload = profile(1.0)
    x86 = simulate(hpo("x86_64"), seed=1, workload=workload)
    chosen = simulate(hpo("auto"), seed=1, workload=workload)
    assert x86["status"] == chosen["status"] == "succeeded"
    assert chosen["deadline_met"]
    assert x86["architectures"] == {"x86_64": x86["invocations"]}
    stages = ran_on(chosen)
    assert "arm64" in stages[0] and "x86_64" in stages[0]  # the pilots ran on both
    assert all(set(later) == {"arm64"} for later in stages[1:])
    assert chosen["cost_usd"] < x86["cost_usd"]
    # the job's record says where and why: the pilots, then the move to arm64
    changes = chosen["memory_changes"]
    pilots = [c for c in changes if c["rule"] == "architecture-pilot"]
    assert {c["architecture"] for c in pilots} <= {"arm64", "x86_64"}
    assert sum(c["architecture"] == "arm64" for c in pilots) >= 1
    assert any("on arm64: rest of the job predicted" in c["reason"] for c in changes)
    assert "architecture" not in str(x86["memory_changes"])  # unchanged for a fixed one


def test_arm64_much_slower_stays_on_x86_64():
    workload = profile(0.6)
    chosen = simulate(hpo("auto"), seed=1, workload=workload)
    assert chosen["status"] == "succeeded" and chosen["deadline_met"]
    stages = ran_on(chosen)
    shapes = len(chosen["stages"][0]["memory_by_shape"])
    # the arm64 pilots only: one per shape, two for a shape whose first pair was not cold
    # beside cold (an x86_64 run that found a warm environment)
    assert shapes <= stages[0].get("arm64", 0) <= 2 * shapes
    assert all(set(later) == {"x86_64"} for later in stages[1:])
    # and it is cheaper than running everything on arm64
    arm = simulate(hpo("arm64"), seed=1, workload=workload)
    assert chosen["cost_usd"] < arm["cost_usd"]


def test_the_oracle_knows_the_speed_and_does_not_pilot():
    chosen = simulate(hpo("auto"), seed=1, workload=profile(1.0), oracle=True)
    assert chosen["architectures"] == {"arm64": chosen["invocations"]}
    slow = simulate(hpo("auto"), seed=1, workload=profile(0.6), oracle=True)
    assert slow["architectures"] == {"x86_64": slow["invocations"]}


def test_cli_architecture_and_arm64_speed_options(monkeypatch, tmp_path):
    monkeypatch.setenv("CESCALE_DATABASE_URL", f"sqlite:///{tmp_path / 'unused.db'}")
    runner = CliRunner()
    spec = EXAMPLES / "training-digits.json"
    args = ["simulate", str(spec), "--json", "--architecture", "auto"]
    fast = json.loads(runner.invoke(app, [*args, "--arm64-speed", "1.0"]).output)
    assert fast["architectures"]["arm64"] > fast["architectures"].get("x86_64", 0)
    assert set(fast["stages"][-1]["architectures"]) == {"arm64"}
    slow = json.loads(runner.invoke(app, [*args, "--arm64-speed", "0.5"]).output)
    assert set(slow["stages"][-1]["architectures"]) == {"x86_64"}
    text = runner.invoke(app, ["simulate", str(spec), "--architecture", "auto"]).output
    assert "invocations by architecture: arm64" in text
    refused = runner.invoke(
        app,
        [
            "simulate",
            str(spec),
            "--architecture",
            "auto",
            "--policy",
            "static",
            "--memory-mb",
            "512",
        ],
    )
    assert refused.exit_code == 2
    assert "needs the ce-scaling policy" in refused.output


def test_emulator_runs_an_arm64_variant_at_the_workloads_speed_and_says_so():
    emulator = EmulatorPlatform(VirtualClock(0.0), noise=False)
    try:
        traits = Traits(cpu_ms=1000.0, io_ms=0.0, init_ms=100.0, arm64_speed=0.8)
        emulator.ensure_function(FunctionSpec(name="f", memory_mb=1769, traits=traits))
        with pytest.raises(VariantNotFoundError, match="mem-1769-arm64"):
            emulator.invoke("f", {}, memory_mb=1769, architecture="arm64")
        assert emulator.ensure_variant("f", 1769, "arm64") == "mem-1769-arm64"
        emulator.ensure_variant("f", 1769)
        x86 = emulator.invoke("f", {}, memory_mb=1769)
        arm = emulator.invoke("f", {}, memory_mb=1769, architecture="arm64")
        assert (x86.architecture, arm.architecture) == ("x86_64", "arm64")
        assert arm.report.duration_ms == pytest.approx(x86.report.duration_ms / 0.8)
        assert arm.report.init_ms == pytest.approx(x86.report.init_ms)  # its own cold start
        again = emulator.invoke("f", {}, memory_mb=1769, architecture="arm64")
        assert not again.cold  # its environment stays warm, apart from x86_64's
    finally:
        emulator.close()


def test_profiles_take_an_optional_arm64_speed():
    table = {"1024": {"p50": 500.0, "mem_used_mb": 100.0}}
    assert parse_profile({"memory_mb": table}).arm64_speed == 1.0
    assert parse_profile({"memory_mb": table, "arm64_speed": 0.85}).arm64_speed == 0.85
    assert parse_profile({"cpu_ms": 10.0, "arm64_speed": 0.7}).traits.arm64_speed == 0.7
    for bad in (0, -1, 5, "fast"):
        with pytest.raises(ProfileError, match="arm64_speed"):
            parse_profile({"memory_mb": table, "arm64_speed": bad})
