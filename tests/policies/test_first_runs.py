"""Training's first runs: the work a worker's first run in a new environment does besides its
epochs (loading the data, lazy imports) is measured, and a change of size is priced with the
first runs it causes."""

from __future__ import annotations

import pytest

from service.models.enums import StageKind
from service.policies.base import Observations, Sample
from service.policies.ce_scaling import CeScaling
from service.policies.shape_model import fit_all
from service.spec import JobSpec
from tests.policies import helpers
from tests.policies.helpers import context, cpu_bound, stage

EPOCHS = 4


def training_spec(deadline_s: float, rounds: int = 20) -> JobSpec:
    return helpers.training_spec(deadline_s, max_epochs=EPOCHS * rounds, epochs_per_round=EPOCHS)


def runs(duration, sizes, first_run_ms: float, cold: bool, n: int = 3, stage_at: int = 0):
    """``n`` runs of ``EPOCHS`` epochs at each size; a cold one adds ``first_run_ms`` of CPU at
    one vCPU (single-threaded: slower below it)."""
    out = []
    for m in sizes:
        extra = first_run_ms * max(1.0, 1769 / m) if cold else 0.0
        for _ in range(n):
            out.append(
                Sample(
                    "worker",
                    stage_at,
                    m,
                    duration(m) * EPOCHS + extra,
                    200.0 if cold else None,
                    500.0,
                    EPOCHS,
                    True,
                )
            )
    return tuple(out)


def test_first_run_work_is_measured_and_charged_to_new_environments():
    work = cpu_bound(2000.0)
    seen = runs(work, (1769,), 3000.0, cold=True) + runs(work, (1769,), 0.0, cold=False)
    observed = Observations(elapsed_s=0.0, spent_usd=0.0, samples=seen)
    model = fit_all(observed, ["worker"], first_runs=True)["worker"]
    assert model.first_run_ms == pytest.approx(3000.0, rel=0.01)
    # a new environment at 896 MB: the cold start and the first run's work at half a vCPU
    assert model.init_at(896) == pytest.approx(200.0 + 3000.0 * 1769 / 896, rel=0.01)
    # HPO (every trial a first run, priced with the curve through them) does not measure it
    assert fit_all(observed, ["worker"])["worker"].first_run_ms == 0.0


def test_noise_between_first_and_warm_runs_is_not_first_run_work():
    work = cpu_bound(2000.0)
    slower = cpu_bound(2000.0 * 1.04)  # first runs 4 % slower: noise, not work
    seen = runs(slower, (1769,), 0.0, cold=True) + runs(work, (1769,), 0.0, cold=False)
    observed = Observations(elapsed_s=0.0, spent_usd=0.0, samples=seen)
    assert fit_all(observed, ["worker"], first_runs=True)["worker"].first_run_ms == 0.0


def decide(first_run_ms: float):
    # mostly waiting on I/O: each round is cheaper at less memory ...
    work = cpu_bound(1000.0, io_ms=3000.0)
    sizes = (256, 512, 1024)
    seen = runs(work, sizes, first_run_ms, cold=True) + runs(work, sizes, 0.0, cold=False)
    plan = stage(6, {"worker": 4}, epochs=EPOCHS, kind=StageKind.ROUND)
    decisions = CeScaling().allocate(
        context(
            training_spec(3600),
            plan,
            [(4, EPOCHS)] * 3,
            samples=seen,
            current_mb={"worker": 1024},
            rounds_since_change=3,
            elapsed_s=60,
        )
    )
    return next(iter(decisions.values()))


def test_a_change_is_priced_with_the_first_runs_it_causes():
    # ... and without first-run work, moving down pays over the four rounds left
    assert decide(first_run_ms=0.0).memory_mb < 1024
    # but every worker would load its data again at the smaller size, at a smaller CPU share:
    # that costs more than four rounds save, so the warm size stays
    assert decide(first_run_ms=20_000.0).memory_mb == 1024


def out_of_time(probe_speedup: float, warm: bool = False):
    """Round 1 of a job measured on first runs only: three workers at 1,769 MB and one at
    3,584 MB, ``probe_speedup`` faster there; 18 more rounds of ~11 s (first runs) do not fit
    in 230 s."""
    work = cpu_bound(2000.0)
    seen = runs(work, (1769,), 3000.0, cold=True)
    top = cpu_bound(2000.0 / probe_speedup)
    seen += runs(top, (3584,), 3000.0, cold=True, n=1)
    if warm:
        seen += runs(work, (1769,), 0.0, cold=False, stage_at=1)
    plan = stage(1, {"worker": 4}, epochs=EPOCHS, kind=StageKind.ROUND)
    decisions = CeScaling().allocate(
        context(
            training_spec(230, rounds=19),
            plan,
            [(4, EPOCHS)] * 18,
            samples=seen,
            current_mb={"worker": 1769},
            rounds_since_change=1,
            elapsed_s=11,
        )
    )
    return decisions


def test_out_of_time_on_first_runs_only_keeps_the_warm_environments_unless_clearly_slower():
    # 8 % faster on one first run is within the noise (and a new size loads the data again):
    # the warm 1,769 MB environments run the next round, which measures the warm time
    kept = out_of_time(probe_speedup=1.12)
    assert {d.memory_mb for k, d in kept.items() if k != "worker-3"} == {1769}
    assert "only first runs measured" in kept["worker-0"].reason
    # clearly faster above (multi-threaded work): the workers move up
    moved = out_of_time(probe_speedup=1.5)
    assert moved["worker-0"].memory_mb > 1769


def test_a_repeat_job_prices_a_change_with_the_first_run_work_its_prior_measured():
    """A tenant's earlier training job measured 3 s of first-run work (kept with its curve,
    ``Prior.first_run_ms``): the repeat job prices a new size with it before it has measured
    any itself, then with its own measure once a size has run both cold and warm."""
    from service.policies.priors import PREFIX, Prior, points_of

    work = cpu_bound(2000.0)
    prior = Prior(
        points_of((m, work(m)) for m in (1024, 1769, 3008) for _ in range(5)),
        init_ms=200.0,
        peak_mb=500.0,
        noise=0.05,
        first_run_ms=3000.0,
    )
    stored = {PREFIX + "worker": {"state": prior.to_state(), "observations": 15}}
    before = Observations(elapsed_s=0.0, spent_usd=0.0, predictors=stored)
    model = fit_all(before, ["worker"], first_runs=True)["worker"]
    assert model.source == "prior"
    assert model.init_at(896) == pytest.approx(200.0 + 3000.0 * 1769 / 896, rel=0.01)
    # an HPO job (no first-run work in its plan) ignores it
    assert fit_all(before, ["worker"])["worker"].first_run_ms == 0.0
    # the job's own first and warm runs at 1,769 MB: 1 s of first-run work
    seen = runs(work, (1769,), 1000.0, cold=True) + runs(work, (1769,), 0.0, cold=False)
    after = Observations(elapsed_s=0.0, spent_usd=0.0, samples=seen, predictors=stored)
    own = fit_all(after, ["worker"], first_runs=True)["worker"]
    assert own.source == "prior+runs"
    assert own.first_run_ms == pytest.approx(1000.0, rel=0.01)
    # a state written before priors kept it (no "first_run_ms"): none assumed
    old = {
        PREFIX + "worker": {"state": prior.to_state() | {"first_run_ms": None}, "observations": 15}
    }
    legacy = Observations(elapsed_s=0.0, spent_usd=0.0, predictors=old)
    assert fit_all(legacy, ["worker"], first_runs=True)["worker"].first_run_ms == 0.0


def test_a_repeat_job_keeps_its_prior_through_its_first_round():
    """A training prior is its job's warm rounds. The repeat job's first round is all first
    runs, 3 s slower each (they load the data): that is not a contradiction, and the prior
    stays — it was dropped after every first round, and the job planned from one size again
    (out to 3,584 MB and back, two cold starts per worker). A warm round that is slower than
    the prior allows still drops it."""
    from service.policies.priors import PREFIX, Prior, points_of

    work = cpu_bound(2000.0)
    prior = Prior(
        points_of((m, work(m)) for m in (1769, 3584) for _ in range(10)),
        init_ms=200.0,
        peak_mb=500.0,
        noise=0.05,
        first_run_ms=3000.0,
    )
    stored = {PREFIX + "worker": {"state": prior.to_state(), "observations": 20}}
    first_round = runs(work, (1769,), 3000.0, cold=True)
    seen = Observations(elapsed_s=0.0, spent_usd=0.0, samples=first_round, predictors=stored)
    model = fit_all(seen, ["worker"], first_runs=True)["worker"]
    assert model.source == "prior+runs"
    assert model.measured_max_mb == 3584  # the prior's size above, not a probe's to make
    slower = runs(cpu_bound(2000.0 * 1.5), (1769,), 0.0, cold=False, stage_at=1)
    contradicted = Observations(
        elapsed_s=0.0, spent_usd=0.0, samples=first_round + slower, predictors=stored
    )
    assert fit_all(contradicted, ["worker"], first_runs=True)["worker"].source == "runs"
