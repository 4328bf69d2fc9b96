"""Architecture ``auto`` (``service.policies.architecture``): pilots on both architectures,
then each shape on the cheaper one that meets the deadline."""

from __future__ import annotations

import dataclasses

import pytest

from service.models.enums import StageKind
from service.policies.architecture import (
    AutoArchitecture,
    Prediction,
    arm64_slowdowns,
    as_if_on,
    choose,
)
from service.policies.base import Observations, Sample
from service.policies.ce_scaling import CeScaling
from service.policies.registry import policy_for
from tests.policies.helpers import context, cpu_bound, hpo_spec, stage, training_spec


def auto(spec):
    workload = spec.workload.model_copy(update={"architecture": "auto"})
    return spec.model_copy(update={"workload": workload})


def run(shape, memory, ms, arch, cold=True, stage_=0, epochs=1):
    return Sample(shape, stage_, memory, ms, 300.0 if cold else None, 100.0, epochs, True, arch)


def runs_on_both(shape, arm64_speed, sizes=(256, 512, 1024)):
    """A shape measured at every size on x86_64 and, at the first size, on arm64."""
    duration = cpu_bound(400.0)
    x86 = [run(shape, m, duration(m), "x86_64") for m in sizes]
    return (*x86, run(shape, sizes[0], duration(sizes[0]) / arm64_speed, "arm64"))


def test_the_registry_wraps_ce_scaling_for_auto_only():
    assert isinstance(policy_for(auto(hpo_spec(600))), AutoArchitecture)
    assert isinstance(policy_for(hpo_spec(600)), CeScaling)
    assert policy_for(auto(hpo_spec(600))).name == "ce-scaling"


def test_slowdown_compares_cold_with_cold_and_warm_with_warm():
    samples = (
        run("a", 256, 1000.0, "x86_64", cold=True),
        run("a", 256, 30.0, "x86_64", cold=False),  # warm: no lazy load, not comparable
        run("a", 256, 1250.0, "arm64", cold=True),
        run("b", 256, 30.0, "x86_64", cold=False),
        run("b", 256, 1000.0, "arm64", cold=True),  # b: no like-for-like pair yet
    )
    assert arm64_slowdowns(samples) == {"a": pytest.approx(1.25)}


def test_runs_are_seen_as_if_on_one_architecture():
    observations = Observations(
        0.0,
        0.0,
        samples=(
            run("a", 256, 1000.0, "x86_64"),
            run("a", 1024, 250.0, "x86_64"),
            run("a", 256, 2000.0, "arm64"),
        ),
        predictors={"memory-curve:a": {}, "loss-curve": {}},
    )
    on_arm = as_if_on(observations, "arm64", {"a": 2.0})
    # x86_64's run at 256 MB only repeats arm64's own there: left out; 1024 MB is converted
    assert [(s.memory_mb, s.duration_ms) for s in on_arm.samples] == [(1024, 500.0), (256, 2000.0)]
    assert {s.architecture for s in on_arm.samples} == {"arm64"}
    assert on_arm.samples[0].init_ms is None  # an x86_64 environment is no warm arm64 one
    assert on_arm.samples[1].init_ms == 300.0
    assert set(on_arm.predictors) == {"loss-curve"}  # the mixed curve is refitted
    on_x86 = as_if_on(observations, "x86_64", {"a": 2.0})
    assert [(s.memory_mb, s.duration_ms) for s in on_x86.samples] == [(256, 1000.0), (1024, 250.0)]
    alone = Observations(0.0, 0.0, samples=observations.samples[:2], predictors={"x": {}})
    assert as_if_on(alone, "x86_64", {}) is alone  # one architecture: nothing to convert


def test_a_warm_run_the_pilot_has_no_match_for_is_kept_and_a_first_runs_cpu_time_dropped():
    # arm64's pilot ran once, cold, at 256 MB: x86_64's cold run there only repeats it, but its
    # warm run says what the later rounds cost (without it arm64 knew only its first run)
    observations = Observations(
        0.0,
        0.0,
        samples=(
            dataclasses.replace(run("a", 256, 1000.0, "x86_64"), cpu_ms=900.0),
            dataclasses.replace(run("a", 256, 100.0, "x86_64", cold=False), cpu_ms=20.0),
            dataclasses.replace(run("a", 1024, 500.0, "x86_64"), cpu_ms=400.0),
            run("a", 256, 2000.0, "arm64"),
        ),
    )
    on_arm = as_if_on(observations, "arm64", {"a": 2.0})
    assert [(s.memory_mb, s.duration_ms, s.cpu_ms) for s in on_arm.samples] == [
        (256, 200.0, 40.0),  # warm: its CPU time scaled like its duration
        (1024, 1000.0, None),  # a first run's CPU holds first-run work, and it is no longer one
        (256, 2000.0, None),
    ]


def test_first_stage_pilots_every_shape_on_both_architectures_at_one_size():
    spec = auto(hpo_spec(3600))
    plan = stage(0, {"small": 6, "large": 6})
    decisions = AutoArchitecture(CeScaling()).allocate(context(spec, plan))
    for shape in ("small", "large"):
        mine = {k: d for k, d in decisions.items() if k.startswith(shape)}
        assert sorted(d.architecture for d in mine.values()) == ["arm64", "x86_64"]
        assert len({d.memory_mb for d in mine.values()}) == 1  # the same size on both
        arm = next(d for d in mine.values() if d.architecture == "arm64")
        assert arm.rule == "architecture-pilot" and "arm64" in arm.reason
    assert len(decisions) == 4  # the other tasks wait for the pilots


@pytest.mark.parametrize(("speed", "expected"), [(1.0, "arm64"), (0.9, "arm64"), (0.6, "x86_64")])
def test_once_measured_each_shape_runs_on_the_cheaper_architecture(speed, expected):
    spec = auto(hpo_spec(3600))
    plan = stage(0, {"a": 6})
    ctx = context(spec, plan, outline=[(2, 3)], samples=runs_on_both("a", speed))
    decisions = AutoArchitecture(CeScaling()).allocate(dataclasses.replace(ctx))
    assert {d.architecture for d in decisions.values()} == {expected}
    assert all("arm64 at" in d.reason for d in decisions.values())


def test_shapes_choose_independently():
    spec = auto(hpo_spec(3600))
    plan = stage(1, {"fast-on-arm": 3, "slow-on-arm": 3})
    samples = runs_on_both("fast-on-arm", 1.0) + runs_on_both("slow-on-arm", 0.5)
    decisions = AutoArchitecture(CeScaling()).allocate(context(spec, plan, samples=samples))
    by_shape = {key.rsplit("-", 1)[0]: d.architecture for key, d in decisions.items()}
    assert by_shape == {"fast-on-arm": "arm64", "slow-on-arm": "x86_64"}


def test_a_spec_that_is_not_auto_goes_to_ce_scaling_unchanged():
    spec = hpo_spec(3600)
    plan = stage(0, {"a": 6})
    ctx = context(spec, plan, samples=runs_on_both("a", 1.0))
    assert AutoArchitecture(CeScaling()).allocate(ctx) == CeScaling().allocate(ctx)


def test_choose_the_cheapest_that_fits_else_the_fastest_and_do_not_flip_for_noise():
    x86 = Prediction("x86_64", 1.00, 50.0, True)
    arm = Prediction("arm64", 0.80, 60.0, True)
    assert choose([x86, arm], None).architecture == "arm64"
    late_arm = dataclasses.replace(arm, fits=False)
    assert choose([x86, late_arm], None).architecture == "x86_64"
    both_late = [dataclasses.replace(x86, fits=False), late_arm]
    assert choose(both_late, None).architecture == "x86_64"  # the faster
    barely = dataclasses.replace(arm, cost_usd=0.99)
    assert choose([x86, barely], "x86_64").architecture == "x86_64"  # within the switch gain
    assert choose([x86, barely], None).architecture == "arm64"


def test_training_under_a_tight_deadline_does_not_pilot_a_round_it_would_hold_up():
    spec = auto(training_spec(60, workers=4))
    plan = stage(0, {"worker": 4}, kind=StageKind.ROUND)
    decisions = AutoArchitecture(CeScaling()).allocate(context(spec, plan, outline=[(4, 1)] * 9))
    assert len(decisions) == 4  # a tight deadline: every worker runs in the first round
    assert {d.architecture for d in decisions.values()} == {"x86_64"}


def test_training_with_room_pilots_a_plain_worker_of_a_later_round():
    spec = auto(training_spec(600, workers=4))
    first = tuple(
        run("worker", m, cpu_bound(2000.0)(m), "x86_64", stage_=0) for m in (1769, 1769, 1769, 3584)
    )
    plan = stage(1, {"worker": 4}, kind=StageKind.ROUND)
    ctx = context(spec, plan, outline=[(4, 1)] * 8, samples=first, current_mb={"worker": 1769})
    decisions = AutoArchitecture(CeScaling()).allocate(ctx)
    arm = [k for k, d in decisions.items() if d.architecture == "arm64"]
    assert len(arm) == 1 and decisions[arm[0]].rule == "architecture-pilot"
    assert arm[0] != "worker-0"
    assert decisions[arm[0]].memory_mb == decisions["worker-0"].memory_mb
    probes = [d for d in decisions.values() if d.rule.startswith("probe-")]
    assert all(d.architecture == "x86_64" for d in probes)
