"""Learning across jobs, through the loop on Postgres: a tenant's repeat job starts from the
curves its earlier job measured, without a pilot; no other tenant, dataset or architecture
sees them; a prior the first runs contradict is dropped, and then replaced."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from service.control import priors
from service.control.drive import drive
from service.control.loop import Controller, to_datetime
from service.database import Database, commit
from service.jobs.service import JobService
from service.models import Allocation, CurvePrior, Stage, Task, Tenant
from service.platform.clock import VirtualClock
from service.platform.emulator.backend import EmulatorPlatform
from service.policies.priors import MAX_AGE_DAYS, PREFIX, Prior
from service.spec import JobSpec
from tests.conftest import truncate_all
from tests.control.helpers import HPO, assert_invariants

START = 1_767_225_600.0
SPEC = HPO | {"hpo": HPO["hpo"] | {"trials": 12}, "policy": {"name": "ce-scaling"}}


@pytest.fixture
def loop_env(pg_engine, settings, tmp_path):
    settings = settings.model_copy(update={"store_url": (tmp_path / "store").as_uri()})
    database = Database(settings, engine=pg_engine)
    clock = VirtualClock(START)
    platform = EmulatorPlatform(clock, seed=1, workers=2)
    controller = Controller(database, platform, settings, seed=3, stage_overhead_s=0.0)
    yield database, clock, controller
    platform.close()
    truncate_all(pg_engine)


def tenant(database: Database, name: str):
    with database.session() as session:
        row = Tenant(name=name)
        session.add(row)
        commit(session)
        return row.id


def run(env, tenant_id, spec: dict = SPEC):
    database, clock, controller = env
    with database.session() as session:
        owner = session.get(Tenant, tenant_id)
        submitted = JobService(session).submit(owner, JobSpec.model_validate(spec), lambda j: {})
        job_id = submitted.job_id
        commit(session)
    drive(controller, clock, [job_id], max_ticks=500)
    clock.advance(3600)  # the next job starts cold
    return job_id


def allocations(database, job_id) -> list[tuple[int, str, int]]:
    """(stage position, rule, memory) of each decision, in order."""
    return [row[:3] for row in decisions(database, job_id)]


def decisions(database, job_id) -> list[tuple[int, str, int, str]]:
    """(stage position, rule, memory, reason) of each decision, in order."""
    with database.session() as session:
        return [
            tuple(row)
            for row in session.execute(
                select(Stage.position, Allocation.rule, Allocation.to_mb, Allocation.reason)
                .join(Stage, Stage.id == Allocation.stage_id)
                .where(Allocation.job_id == job_id, Allocation.state != "vetoed")
                .order_by(Allocation.created_at, Allocation.id)
            )
        ]


def stage_memory(database, job_id, position: int) -> set[int]:
    with database.session() as session:
        return set(
            session.scalars(
                select(Task.memory_mb)
                .join(Stage, Stage.id == Task.stage_id)
                .where(Stage.job_id == job_id, Stage.position == position)
            )
        )


def stored(database, tenant_id) -> list[CurvePrior]:
    with database.session() as session:
        rows = list(session.scalars(select(CurvePrior).where(CurvePrior.tenant_id == tenant_id)))
        session.expunge_all()  # read after the session
        return rows


def test_a_repeat_job_starts_from_the_learned_curve_without_a_pilot(loop_env):
    database = loop_env[0]
    alice = tenant(database, "alice")
    first = run(loop_env, alice)
    (prior,) = stored(database, alice)
    assert prior.shape == "default" and prior.source_job_id == first
    assert prior.function == "builtin:logreg" and prior.architecture == "x86_64"
    assert prior.state["points"] and prior.observations >= 12

    second = run(loop_env, alice)
    assert_invariants(database, [first, second])
    assert allocations(database, first)[0][1] == "explore"  # the first job pilots
    decided = allocations(database, second)
    assert "explore" not in {rule for _, rule, _ in decided}
    position, rule, memory = decided[0]
    assert (position, rule) == (0, "deadline-split")
    assert "curve measured by an earlier job" in decisions(database, second)[0][3]
    # every task of the first rung starts at once, at the size planned from the prior ...
    assert stage_memory(database, second, 0) == {memory}
    # ... the size the first job planned once its pilot had measured the curve
    learned = [m for p, r, m in allocations(database, first) if p == 0 and r == "deadline-split"]
    assert memory in learned
    (kept,) = stored(database, alice)
    assert kept.source_job_id == second  # the repeat job's runs, merged in


def test_another_tenants_job_does_not_see_the_prior(loop_env):
    database, clock, _ = loop_env
    alice, bob = tenant(database, "alice"), tenant(database, "bob")
    run(loop_env, alice)
    spec = JobSpec.model_validate(SPEC)
    now = to_datetime(clock.now())
    with database.session() as session:
        assert set(priors.lookup(session, alice, spec, None, now)) == {PREFIX + "default"}
        assert priors.lookup(session, bob, spec, None, now) == {}
    bobs = run(loop_env, bob)
    assert allocations(database, bobs)[0][1] == "explore"
    assert len(stored(database, alice)) == len(stored(database, bob)) == 1  # each its own


def test_a_prior_is_only_for_the_same_work_and_architecture(loop_env):
    database, clock, _ = loop_env
    alice = tenant(database, "alice")
    run(loop_env, alice)
    now = to_datetime(clock.now())
    other_data = SPEC | {"workload": SPEC["workload"] | {"dataset": "builtin:digits"}}
    arm = SPEC | {"workload": SPEC["workload"] | {"architecture": "arm64"}}
    with database.session() as session:
        for spec in (other_data, arm):
            assert priors.lookup(session, alice, JobSpec.model_validate(spec), None, now) == {}


def test_a_prior_the_first_runs_contradict_is_dropped_and_replaced(loop_env):
    database, clock, _ = loop_env
    alice = tenant(database, "alice")
    spec = JobSpec.model_validate(SPEC)
    # "measured" by an earlier job: two minutes per epoch at one vCPU, CPU-bound (twice as
    # long at half of it) — far slower than this work
    wrong = Prior(
        ((885, 240_000.0, 10), (1769, 120_000.0, 10), (3538, 120_000.0, 10)),
        init_ms=500.0,
        peak_mb=150.0,
    )
    with database.session() as session:
        session.add(
            CurvePrior(
                tenant_id=alice,
                workload_key=priors.workload_key(spec),
                function=spec.workload.function,
                dataset=spec.workload.dataset,
                code_version=priors.code_version(spec),
                architecture="x86_64",
                shape="default",
                state=wrong.to_state(),
                observations=20,
                learned_at=to_datetime(clock.now()),
            )
        )
        commit(session)
    job_id = run(loop_env, alice)
    assert_invariants(database, [job_id])
    decided = allocations(database, job_id)
    assert "explore" not in {rule for _, rule, _ in decided}  # it trusted the prior at first
    first_rung = stage_memory(database, job_id, 0)
    assert min(first_rung) >= 512, first_rung  # a slow curve: much CPU to meet the deadline
    reasons = {p: r for p, _, _, r in decisions(database, job_id)}
    assert "curve measured by an earlier job" in reasons[0]
    # rung-0's runs were far faster: from rung-1 on the job plans from its own runs alone. Its
    # plan wants no more memory than rung-0 had; it stays at rung-0's size, whose environments
    # are warm (a cold start costs more than a whole run of this fast function), or moves
    # below it — and a decision of rung-1 (recorded when the size changes) is not the prior's
    assert "earlier job" not in reasons.get(1, "")
    assert max(stage_memory(database, job_id, 1)) <= min(first_rung)
    (kept,) = stored(database, alice)
    assert kept.source_job_id == job_id
    assert all(d < 120_000.0 / 10 for _, d, _ in kept.state["points"])  # replaced, not merged


def test_a_stale_prior_is_not_used(loop_env):
    database = loop_env[0]
    alice = tenant(database, "alice")
    first = run(loop_env, alice)
    with database.session() as session:
        (row,) = session.scalars(select(CurvePrior).where(CurvePrior.source_job_id == first))
        row.learned_at = row.learned_at - timedelta(days=MAX_AGE_DAYS + 1)
        commit(session)
    second = run(loop_env, alice)
    assert allocations(database, second)[0][1] == "explore"


def test_a_training_job_keeps_its_first_run_work_with_its_curve(database):
    """What a worker's first run did besides its epochs (3 s of CPU at one vCPU, measured from
    a size that ran cold and warm) is kept with the curve; an HPO job keeps none."""
    from datetime import UTC, datetime

    from service.control.lifecycle import SampleRow
    from service.models import Job
    from tests.control.helpers import TRAINING, submit

    (job_id,) = submit(database, TRAINING)
    spec = JobSpec.model_validate(TRAINING)
    # three workers' first runs (cold: 3 s more) and their warm runs, 4 epochs of 1 s each
    rows = [
        SampleRow(
            "worker",
            stage,
            1769,
            4000.0 + (3000.0 if stage == 0 else 0.0),
            200.0 if stage == 0 else None,
            300.0,
            0,
            4,
            "ok",
        )
        for stage in (0, 1, 2)
        for _ in range(3)
    ]
    with database.session() as session:
        job = session.get(Job, job_id)
        assert priors.remember(session, job, spec, rows, datetime.now(UTC)) == 1
        (kept,) = session.scalars(select(CurvePrior).where(CurvePrior.source_job_id == job_id))
        assert Prior.from_state(kept.state).first_run_ms == pytest.approx(3000.0)
        hpo = JobSpec.model_validate(SPEC)
        hpo_rows = [r._replace(shape="default") for r in rows]
        priors.remember(session, job, hpo, hpo_rows, datetime.now(UTC))
        states = session.scalars(select(CurvePrior.state).where(CurvePrior.shape == "default"))
        assert [s["first_run_ms"] for s in states] == [None]


def test_a_training_job_keeps_the_size_its_first_round_probed(database):
    """The first round's probe above runs once, in a new environment: the prior keeps that size
    (as the first run less the first-run work measured elsewhere), so the next job knows the
    size was measured and what it showed; the warm rounds' sizes stay as they ran."""
    from datetime import UTC, datetime

    from service.control.lifecycle import SampleRow
    from service.models import Job
    from tests.control.helpers import TRAINING, submit

    (job_id,) = submit(database, TRAINING)
    spec = JobSpec.model_validate(TRAINING)

    def row(stage: int, memory_mb: int, epoch_ms: float, cold: bool) -> SampleRow:
        duration = 4 * epoch_ms + (3000.0 if cold else 0.0)
        return SampleRow(
            "worker", stage, memory_mb, duration, 200.0 if cold else None, 300.0, 0, 4, "ok"
        )

    # three workers at 1,769 MB (1 s an epoch), one probe at 3,584 MB twice as fast, cold once
    rows = [row(0, 1769, 1000.0, True) for _ in range(3)] + [row(0, 3584, 500.0, True)]
    rows += [row(stage, 1769, 1000.0, False) for stage in (1, 2) for _ in range(4)]
    with database.session() as session:
        job = session.get(Job, job_id)
        assert priors.remember(session, job, spec, rows, datetime.now(UTC)) == 1
        (kept,) = session.scalars(select(CurvePrior).where(CurvePrior.source_job_id == job_id))
        prior = Prior.from_state(kept.state)
        assert {m: n for m, _, n in prior.points} == {1769: 8, 3584: 1}
        means = {m: mean for m, mean, _ in prior.points}
        assert means[1769] == pytest.approx(1000.0)
        assert means[3584] == pytest.approx(500.0)
