"""Priors — what an earlier job of the tenant measured of a shape — in the policy: a job whose
shapes all have one is planned from them instead of a pilot; one its runs contradict is
dropped; an old one counts for less, a very old one not at all."""

from __future__ import annotations

import pytest

from service.policies.base import Observations, Sample
from service.policies.ce_scaling import CeScaling
from service.policies.priors import (
    MAX_AGE_DAYS,
    PREFIX,
    Prior,
    agrees,
    merged,
    noise_of,
    points_of,
)
from service.policies.shape_model import fit_all, warm_estimates
from tests.policies.helpers import context, cpu_bound, hpo_spec, samples, stage, training_spec

SLOW = cpu_bound(2000.0)
DAY_S = 86_400.0


def prior_of(duration, sizes=(512, 1024, 1769), age_s=0.0, peak_mb=150.0) -> dict:
    prior = Prior(
        tuple((m, duration(m), 10) for m in sizes), init_ms=400.0, peak_mb=peak_mb, noise=0.05
    )
    return {"state": prior.to_state() | {"age_s": age_s}, "observations": 30}


def test_a_shape_with_a_prior_is_planned_without_a_pilot():
    plan = stage(0, {"a": 9})
    ctx = context(
        hpo_spec(600.0), plan, outline=[(3, 3), (1, 9)], predictors={PREFIX + "a": prior_of(SLOW)}
    )
    decisions = CeScaling().allocate(ctx)
    assert set(decisions) == {t.key for t in plan.tasks}  # nobody waits for a pilot
    assert {d.rule for d in decisions.values()} <= {"deadline-split", "probe-above"}
    assert all(d.rule != "explore" for d in decisions.values())
    # without the prior, the same stage explores
    bare = CeScaling().allocate(context(hpo_spec(600.0), plan, outline=[(3, 3), (1, 9)]))
    assert {d.rule for d in bare.values()} == {"explore"}


def test_a_prior_for_only_some_shapes_does_not_skip_the_pilot():
    plan = stage(0, {"a": 9, "b": 9})
    ctx = context(hpo_spec(600.0), plan, predictors={PREFIX + "a": prior_of(SLOW)})
    assert {d.rule for d in CeScaling().allocate(ctx).values()} == {"explore"}


def test_the_prior_sets_the_floor_from_its_peak_memory():
    obs = Observations(0.0, 0.0, predictors={PREFIX + "a": prior_of(SLOW, peak_mb=900.0)})
    model = fit_all(obs, ["a"])["a"]
    assert model.floor_mb >= 990  # the peak plus its margin


def test_training_starts_at_the_learned_size():
    ctx = context(
        training_spec(400.0),
        stage(0, {"worker": 4}, epochs=1),
        outline=[(4, 1)] * 19,
        predictors={PREFIX + "worker": prior_of(SLOW)},
    )
    decisions = CeScaling().allocate(ctx)
    assert {d.rule for d in decisions.values()} == {"ce-resize"}
    # the same plan as from the same points measured in this job
    measured = CeScaling().allocate(
        context(
            training_spec(400.0),
            stage(0, {"worker": 4}, epochs=1),
            outline=[(4, 1)] * 19,
            samples=samples("worker", SLOW, sizes=(512, 1024, 1769)),
        )
    )
    assert {d.memory_mb for d in decisions.values()} == {
        d.memory_mb for d in measured.values() if d.rule == "ce-resize"
    }


def test_runs_that_contradict_the_prior_drop_it():
    wrong = prior_of(cpu_bound(200.0))  # ten times too fast
    runs = samples("a", SLOW, sizes=(512,))
    with_prior = Observations(0.0, 0.0, samples=runs, predictors={PREFIX + "a": wrong})
    without = Observations(0.0, 0.0, samples=runs)
    dropped, alone = fit_all(with_prior, ["a"])["a"], fit_all(without, ["a"])["a"]
    assert dropped.duration_ms(1024, 1) == pytest.approx(alone.duration_ms(1024, 1))
    assert dropped.measured_sizes == 1  # only this job's size: the prior's are gone


def test_runs_that_agree_with_the_prior_add_to_it():
    runs = samples("a", lambda m: SLOW(m) * 1.03, sizes=(512,))
    obs = Observations(0.0, 0.0, samples=runs, predictors={PREFIX + "a": prior_of(SLOW)})
    model = fit_all(obs, ["a"])["a"]
    assert model.measured_sizes == 3 and model.measured_max_mb == 1769
    assert model.duration_ms(1024, 1) == pytest.approx(SLOW(1024), rel=0.05)


def test_confidence_decays_with_age_and_an_old_prior_is_not_used():
    fresh = Prior.from_state(prior_of(SLOW)["state"])
    week = Prior.from_state(prior_of(SLOW, age_s=7 * DAY_S)["state"])
    assert week.error == pytest.approx(2 * fresh.error)
    assert week.curve().relative_error(1024) > fresh.curve().relative_error(1024)
    old = {PREFIX + "a": prior_of(SLOW, age_s=(MAX_AGE_DAYS + 1) * DAY_S)}
    assert fit_all(Observations(0.0, 0.0, predictors=old), ["a"]) is None
    ctx = context(hpo_spec(600.0), stage(0, {"a": 9}), predictors=old)
    assert {d.rule for d in CeScaling().allocate(ctx).values()} == {"explore"}


def test_merging_keeps_the_sizes_a_job_did_not_run_only_when_it_agrees():
    previous = Prior.from_state(prior_of(SLOW)["state"])
    agreeing = Prior(points_of([(512, SLOW(512) * 1.02)] * 4), noise=0.02)
    assert agrees(previous, agreeing.points)
    kept = merged(previous, agreeing)
    assert kept.sizes == {512, 1024, 1769}
    assert dict((m, d) for m, d, _ in kept.points)[512] == pytest.approx(SLOW(512) * 1.02)
    contradicting = Prior(points_of([(512, SLOW(512) * 3)] * 4))
    assert not agrees(previous, contradicting.points)
    assert merged(previous, contradicting) is contradicting


def test_noise_is_the_spread_around_each_sizes_mean():
    assert noise_of([(512, 100.0), (1024, 50.0)]) is None
    assert noise_of([(512, 100.0), (512, 100.0), (1024, 50.0)]) == 0.0
    assert 0.0 < noise_of([(512, 95.0), (512, 105.0)]) < 0.1


def test_the_prior_gives_the_shape_and_the_job_its_level():
    # this job runs 8 % slower than the earlier one (another host): the prior's other sizes
    # move with it, so the level shift does not read as "more memory is faster"
    runs = samples("a", lambda m: SLOW(m) * 1.08, sizes=(512, 512, 512))
    obs = Observations(0.0, 0.0, samples=runs, predictors={PREFIX + "a": prior_of(SLOW)})
    model = fit_all(obs, ["a"])["a"]
    assert model.duration_ms(1769, 1) == pytest.approx(SLOW(1769) * 1.08, rel=0.02)
    assert model.duration_ms(3538, 1) == pytest.approx(model.duration_ms(1769, 1), rel=0.02)


def _worker(memory_mb: int, duration_ms: float, cold: bool) -> Sample:
    return Sample("worker", 0, memory_mb, duration_ms, 200.0 if cold else None, 300.0, 4, True)


def test_a_size_only_first_runs_measured_is_kept_as_its_warm_estimate():
    """The first round's probe above runs once, cold: the prior keeps it as the first run less
    its first-run work, so the next job knows it was measured. Within twice its own error of
    the warm size below it, it counts as that size's time (one noisy run does not make a size
    faster); clearly faster, as measured; never slower; nothing before the work is known."""
    warm = [_worker(1769, 8000.0, cold=False) for _ in range(6)]  # 2,000 ms an epoch
    first_run = 3000.0
    # 8 % faster than the warm size below: within the estimate's error
    near = _worker(3584, 4 * 1840.0 + first_run, cold=True)
    assert warm_estimates([*warm, near], first_run, 0.05) == [(3584, 2000.0)]
    # 40 % faster (multi-threaded work): kept as measured
    fast = _worker(3584, 4 * 1200.0 + first_run, cold=True)
    assert warm_estimates([*warm, fast], first_run, 0.05) == [(3584, pytest.approx(1200.0))]
    # slower than the warm size below: more memory is never slower
    slow = _worker(3584, 4 * 2400.0 + first_run, cold=True)
    assert warm_estimates([*warm, slow], first_run, 0.05) == [(3584, 2000.0)]
    # below one vCPU the first-run work takes longer (its CPU share), and there is no warm size
    # below to compare with: the estimate as measured
    small = _worker(884, 4 * 4000.0 + first_run * 2, cold=True)
    assert warm_estimates([*warm, small], first_run, 0.05) == [
        (884, pytest.approx(4000.0, rel=0.01))
    ]
    # a size that also ran warm is measured by its warm runs; no estimate before the work
    assert warm_estimates([*warm, _worker(1769, 11000.0, cold=True)], first_run, 0.05) == []
    assert warm_estimates([*warm, fast], None, 0.05) == []
    # a first run hardly longer than the work taken off: its epochs are lost in the noise
    lost = _worker(3584, first_run + 200.0, cold=True)
    assert warm_estimates([*warm, lost], first_run, 0.05) == []
