"""Power tuning: measure every candidate, then pick by strategy; the profiling stage shifts the
workflow by one."""

from __future__ import annotations

from service.models.enums import StageKind
from service.policies.base import Sample
from service.policies.power_tuning import PowerTuning, ProfiledWorkflow, profile_shape
from service.spec import HpoSpec
from service.workflows.hpo import HpoWorkflow
from service.workflows.plan import StagePlan, StageResult, TaskOutcome
from tests.policies.helpers import context, cpu_bound, hpo_spec, stage

SIZES = (256, 1024, 1769, 3008)


def profiling_samples(duration, failed=()):
    return tuple(
        Sample(profile_shape(m), 0, m, duration(m), None, 100.0, 1, m not in failed)
        for m in SIZES
        for _ in range(2)
    )


def choose(strategy, duration, failed=()):
    policy = PowerTuning(SIZES, strategy)
    decisions = policy.allocate(
        context(hpo_spec(600), stage(1, {"a": 2}), samples=profiling_samples(duration, failed))
    )
    return {d.memory_mb for d in decisions.values()}


def test_strategies():
    work = cpu_bound(1000.0, io_ms=50.0)
    assert choose("speed", work) == {1769}  # single-threaded: no faster above one vCPU
    assert choose("cost", work) == {256}  # CPU-bound: the I/O part is cheapest small
    assert choose("balanced", work) in ({1024}, {1769})
    assert choose("cost", work, failed=(256,)) == {1024}  # an OOM size is no candidate


def test_profiling_stage_runs_each_candidate_and_shifts_the_rest():
    spec = HpoSpec.model_validate(
        {"search_space": {"lr": {"uniform": [0, 1]}}, "trials": 3, "max_epochs": 3}
    )
    workflow = ProfiledWorkflow(HpoWorkflow(spec), PowerTuning((512, 1024), "cost", 2))
    first = workflow.next_stage([])
    assert first.kind is StageKind.PROFILING and first.position == 0
    assert [t.shape for t in first.tasks] == [profile_shape(512)] * 2 + [profile_shape(1024)] * 2
    done = StageResult(first, {t.key: TaskOutcome(t.key, True, 0.5, 0.5) for t in first.tasks})
    rung0 = workflow.next_stage([done])
    assert isinstance(rung0, StagePlan) and rung0.position == 1 and rung0.name == "rung-0"
    assert len(rung0.tasks) == 3
    assert workflow.outline_after(1) == HpoWorkflow(spec).outline_after(0)
    decisions = PowerTuning((512, 1024)).allocate(context(hpo_spec(600), first))
    assert {d.memory_mb for d in decisions.values()} == {512, 1024}
