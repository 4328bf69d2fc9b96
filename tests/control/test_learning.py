"""The learn step: predictor state lives in the database, so another controller resumes it;
platform metrics are polled into observations, gaps left unknown."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import select

from service.control.learning import Point, fit_points, point
from service.control.loop import Controller, to_datetime
from service.models import Invocation, Job, Observation, PredictorState, Task
from service.prediction.memory_curve import MemoryCurve
from tests.control.helpers import TRAINING, submit


@pytest.fixture
def loop_settings(settings, tmp_path):
    return settings.model_copy(
        update={"store_url": (tmp_path / "store").as_uri(), "metrics_interval_s": 1.0}
    )


def tick_until(controller, clock, database, job_id, predicate, limit=400):
    for _ in range(limit):
        controller.run_once(to_datetime(clock.now()))
        if predicate():
            return
        upcoming = controller.next_event()
        clock.set(upcoming if upcoming and upcoming > clock.now() else clock.now() + 1.0)
    pytest.fail("condition not reached")


def states(database, job_id) -> dict[str, SimpleNamespace]:
    with database.session() as session:
        rows = session.scalars(select(PredictorState).where(PredictorState.job_id == job_id))
        return {
            row.name: SimpleNamespace(id=row.id, observations=row.observations, state=row.state)
            for row in rows
        }


def test_a_second_controller_resumes_the_predictors_of_the_first(loop_env):
    database, platform, clock, settings = loop_env
    spec = TRAINING | {
        "training": TRAINING["training"] | {"max_epochs": 8},
        "policy": {"name": "ce-scaling"},
    }
    (job_id,) = submit(database, spec)
    first = Controller(database, platform, settings, owner="first", seed=1)
    tick_until(
        first,
        clock,
        database,
        job_id,
        lambda: (
            states(database, job_id).get("duration:worker") is not None
            and states(database, job_id)["duration:worker"].observations >= 3
        ),
    )
    learned = states(database, job_id)
    assert {"memory-curve:worker", "duration:worker", "loss-curve"} <= set(learned)
    rounds_seen = learned["duration:worker"].observations
    assert learned["memory-curve:worker"].state  # plain JSON parameters, not a pickle

    # The first controller goes away (its lease expires); a new one takes the job over.
    clock.advance(settings.controller_lease_s + 1)
    second = Controller(database, platform, settings, owner="second", seed=2)
    tick_until(
        second,
        clock,
        database,
        job_id,
        lambda: database_status(database, job_id) in ("succeeded", "failed"),
    )
    assert database_status(database, job_id) == "succeeded"
    resumed = states(database, job_id)["duration:worker"]
    # the series went on from where the first controller left it, one point per round
    assert resumed.observations > rounds_seen
    assert resumed.id == learned["duration:worker"].id
    # the curve, built by appending each tick's runs (the second controller read the ledger
    # once, on taking over), is the fit on every successful run in the ledger
    points = ledger_points(ok_runs(database, job_id))
    curve = states(database, job_id)["memory-curve:worker"]
    assert curve.observations == len(points)
    expected = fit_points(points).to_state()
    assert curve.state == expected


def ok_runs(database, job_id) -> list[tuple]:
    """(request id, memory, duration, CPU, init, epochs) of the job's successful runs."""
    with database.session() as session:
        return session.execute(
            select(
                Invocation.request_id,
                Invocation.memory_mb,
                Invocation.duration_ms,
                Invocation.cpu_ms,
                Invocation.init_ms,
                Task.epoch_to - Task.epoch_from,
            )
            .join(Task, Task.id == Invocation.task_id)
            .where(Invocation.job_id == job_id, Invocation.outcome == "ok")
        ).all()


def ledger_points(runs: list[tuple]) -> list[Point]:
    """What the learn step fits a shape's curve on, from ``ok_runs``: every run, sorted."""
    return sorted(
        point(memory, duration, cpu, epochs, init is not None)
        for _, memory, duration, cpu, init, epochs in runs
    )


def database_status(database, job_id) -> str:
    with database.session() as session:
        return session.get(Job, job_id).status


def test_platform_metrics_are_polled_into_observations(loop_env):
    database, platform, clock, settings = loop_env
    (job_id,) = submit(database, TRAINING)
    controller = Controller(database, platform, settings, seed=1)
    tick_until(
        controller,
        clock,
        database,
        job_id,
        lambda: database_status(database, job_id) == "succeeded",
    )
    clock.advance(120)  # let the last minute's datapoints close, then poll once more
    controller.learner.poller._polled.clear()
    with database.session() as session:
        from service.control.repository import LoopRepository

        repo = LoopRepository(session)
        controller.learner.poll_metrics(
            repo, platform, {"cescale-mlp-training"}, to_datetime(clock.now())
        )
        session.flush()
        rows = [
            (row.metric, row.value, row.series)
            for row in session.scalars(
                select(Observation).where(Observation.source == "cloudwatch")
            )
        ]
    metrics = {metric for metric, _, _ in rows}
    assert {"invocations", "duration_avg", "duration_max"} <= metrics
    invocations = sum(value for metric, value, _ in rows if metric == "invocations")
    assert invocations >= 3 * 4  # 3 workers x 4 rounds, each counted once
    assert {series for _, _, series in rows} == {"function:cescale-mlp-training"}


def test_each_runs_cpu_time_is_kept_and_the_curve_reads_below_the_size_it_ran_at(loop_env):
    """The emulator reports each run's CPU time (Lambda Insights' cpu_total_time on AWS); the
    ledger keeps it, the API lists it, and the learn step's curve of a job that only ever ran at
    512 MB knows smaller sizes from it (its I/O and CPU work), not as a guess."""
    database, platform, clock, settings = loop_env
    (job_id,) = submit(database, TRAINING)  # static 512 MB
    controller = Controller(database, platform, settings, seed=1)
    tick_until(
        controller,
        clock,
        database,
        job_id,
        lambda: database_status(database, job_id) == "succeeded",
    )
    runs = [run[1:] for run in ok_runs(database, job_id)]  # (memory, duration, CPU, init, epochs)
    assert runs and {run[0] for run in runs} == {512}
    for _, duration, cpu, _, _ in runs:
        # below one vCPU a run takes at least its CPU work at the CPU share
        assert cpu is not None and 0 < cpu * 1769 / 512 <= duration * 1.001 + 0.05  # rounding
    curve = MemoryCurve.from_state(states(database, job_id)["memory-curve:worker"].state)
    assert curve.observed_min_mb == curve.observed_max_mb == 512  # implied sizes are not runs
    assert curve.implied_min_mb is not None and curve.implied_min_mb < 512
    # At 256 MB a warm run is its I/O plus twice its CPU time: the curve predicts about that
    # (its first runs, with their first-run work, pull it up a little), not the one-size
    # reading of every run as CPU work (twice as long at half the memory).
    warm = [(d / epochs, c / epochs) for _, d, c, init, epochs in runs if init is None]
    assert warm
    implied = sum(d + c * 1769 / 512 for d, c in warm) / len(warm)
    blind = MemoryCurve.fit([512.0] * len(runs), [d / epochs for _, d, _, _, epochs in runs])
    assert implied <= curve.predict(256) < 0.8 * blind.predict(256)
