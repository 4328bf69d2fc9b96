"""The published peers (policies/peers): what they profile, and what they choose from it."""

from __future__ import annotations

from service.models.enums import StageKind
from service.policies.base import Sample
from service.policies.peers.jolteon import SPACE, Jolteon
from service.policies.peers.parrotfish import INITIAL, Parrotfish
from service.policies.peers.profiling import profile_shape
from service.policies.power_tuning import ProfiledWorkflow
from service.workflows.hpo import HpoWorkflow
from service.workflows.plan import StagePlan
from tests.policies.helpers import context, cpu_bound, hpo_spec, stage, training_spec

CPU = cpu_bound(1000.0)  # 1 s per epoch at one vCPU, single-threaded


def profiled(shape: str, sizes, duration=CPU, peak_mb=150.0, runs=3, oom=()) -> tuple:
    """Profiling runs of ``shape``: ``runs`` per size, cold, one epoch each."""
    out = []
    for m in sizes:
        for _ in range(runs):
            ok = m not in oom
            out.append(Sample(profile_shape(m, shape), 0, m, duration(m), 300.0, peak_mb, 1, ok))
    return tuple(out)


def test_profiling_runs_one_task_of_every_shape_at_every_size() -> None:
    spec = hpo_spec(100.0)
    first = HpoWorkflow(spec.hpo).next_stage([])
    shapes = {t.shape for t in first.tasks}
    for policy in (Parrotfish(), Jolteon()):
        plan = ProfiledWorkflow(HpoWorkflow(spec.hpo), policy).next_stage([])
        assert plan.kind is StageKind.PROFILING and plan.name == policy.name
        assert len(plan.tasks) == len(shapes) * len(policy.candidates) * policy.invocations_per_size
        decisions = policy.allocate(context(spec, plan))
        assert sorted({d.memory_mb for d in decisions.values()}) == sorted(policy.candidates)
    assert INITIAL == (128, 3520, 10240)  # smallest, a third of the way up, largest


def test_parrotfish_takes_the_cheapest_size_that_fits_the_deadline_then_keeps_it() -> None:
    # the initial three sizes (128 ran out of memory: moved up) and two adaptive ones
    runs = profiled("a", (192, 3520, 10240, 704, 1216), runs=4, oom=())
    runs += profiled("a", (128,), runs=4, oom=(128,))
    loose = Parrotfish().allocate(
        context(hpo_spec(1000.0), stage(1, {"a": 4}), outline=[(2, 3)], samples=runs)
    )
    tight = Parrotfish().allocate(
        context(hpo_spec(6.0), stage(1, {"a": 4}), outline=[(2, 3)], samples=runs)
    )
    cheap, fast = {d.memory_mb for d in loose.values()}, {d.memory_mb for d in tight.values()}
    assert len(cheap) == len(fast) == 1  # one size per function
    cheap_mb, fast_mb = cheap.pop(), fast.pop()
    assert cheap_mb >= 192  # above the size that ran out of memory
    assert fast_mb > cheap_mb
    # the job's predicted time at the tight choice fits: 1 + 3 epochs at the curve, plus colds
    assert (CPU(fast_mb) * 4 + 2 * 300.0) / 1000 <= 6.0 * 1.2
    # later stages keep the size chosen, whatever the deadline says now
    later = Parrotfish().allocate(
        context(hpo_spec(1.0), stage(2, {"a": 2}, epochs=3), samples=runs, current_mb={"a": 704})
    )
    assert {d.memory_mb for d in later.values()} == {704}


def test_parrotfish_samples_next_where_the_predicted_cost_is_low_and_unexplored() -> None:
    runs = profiled("default", (192, 3520, 10240), runs=4)
    runs += profiled("default", (128,), runs=4, oom=(128,))
    spec = hpo_spec(100.0)
    first = HpoWorkflow(spec.hpo).next_stage([])
    policy = Parrotfish()
    workflow = ProfiledWorkflow(HpoWorkflow(spec.hpo), policy)
    assert policy.profiling_rounds == 3  # 3 sizes × 4, then 2 × 4: the tool's 20 data points
    plan = StagePlan(1, "parrotfish-1", StageKind.PROFILING, policy.profile_tasks(first, 1))
    decisions = policy.allocate(context(spec, plan, samples=runs))
    chosen = {d.memory_mb for d in decisions.values()}
    assert len(chosen) == 1
    size = chosen.pop()
    assert size not in (128, 192, 3520, 10240) and size >= 192
    assert size < 3520  # where the fitted cost is low, not next to the largest size
    assert workflow.outline_after(1) == workflow.outline_after(0)  # profiling: the whole job


def test_jolteon_chooses_per_stage_sizes_under_the_bound() -> None:
    sizes = Jolteon().candidates
    runs = profiled("a", sizes) + profiled("b", sizes, duration=cpu_bound(200.0))
    plan = stage(1, {"a": 3, "b": 3})
    loose = Jolteon().allocate(context(hpo_spec(1000.0), plan, outline=[(2, 3)], samples=runs))
    tight = Jolteon().allocate(context(hpo_spec(5.0), plan, outline=[(2, 3)], samples=runs))
    for decisions in (loose, tight):
        assert {d.rule for d in decisions.values()} == {"jolteon"}
    loose_a = {d.memory_mb for k, d in loose.items() if k.startswith("a")}
    tight_a = {d.memory_mb for k, d in tight.items() if k.startswith("a")}
    assert max(tight_a) > max(loose_a)
    # its configuration space starts at half a vCPU (896 MB): the loose plan's floor
    assert loose_a == {896}
    assert all(m in SPACE for d in (loose, tight) for m in (x.memory_mb for x in d.values()))


def test_jolteon_plans_training_rounds_without_measuring_them() -> None:
    runs = profiled("worker", Jolteon().candidates)
    # the job's own rounds ran much slower than profiled: Jolteon does not look at them
    slow = tuple(Sample("worker", 1, 1024, 50_000.0, None, 150.0, 1, True) for _ in range(4))
    spec = training_spec(60.0, workers=4, max_epochs=10)
    plan = stage(1, {"worker": 4}, kind=StageKind.ROUND)
    one = Jolteon().allocate(context(spec, plan, outline=[(4, 1)] * 8, samples=runs))
    two = Jolteon().allocate(context(spec, plan, outline=[(4, 1)] * 8, samples=runs + slow))
    assert one == two
