"""CloudWatch polling: a minute read while it fills is revised until it closes, a late
datapoint is added, a closed minute that disagrees with the ledger is on the timeline, and a
run recorded without its CPU time gets it once the platform has it (Lambda Insights)."""

from __future__ import annotations

import uuid
from dataclasses import replace

from sqlalchemy import delete, func, select

from service.control.cloudwatch import SETTLE_S, MetricsPoller
from service.control.learning import fit_points
from service.control.loop import Controller, to_datetime
from service.control.repository import LoopRepository
from service.database import commit
from service.jobs.service import JobService
from service.models import Invocation, Job, Observation, PredictorState, Tenant
from service.platform.clock import VirtualClock
from service.platform.emulator.backend import EmulatorPlatform
from service.platform.interface import FunctionMetrics
from service.prediction.memory_curve import MemoryCurve
from tests.control import test_learning
from tests.control.helpers import START, TRAINING, submit
from tests.control.test_learning import database_status, ledger_points, ok_runs, tick_until

# the same loop_env as test_learning's: Postgres, an emulator on a virtual clock, metrics
# read every second
loop_settings = test_learning.loop_settings
FUNCTION = "cescale-mlp-training"  # the built-in function TRAINING runs


def invocations(database) -> list[tuple]:
    with database.session() as session:
        return session.execute(
            select(Observation.observed_at, Observation.value).where(
                Observation.metric == "invocations"
            )
        ).all()


def poll(database, poller, platform, functions, clock, jobs=None):
    with database.session() as session:
        now = to_datetime(clock.now())
        report = poller.poll(LoopRepository(session), platform, functions, now, jobs)
        commit(session)
    return report


class CloudWatchStandIn:
    """Only what the poller reads: datapoints the test publishes, late or revised at will."""

    def __init__(self) -> None:
        self.points: dict[float, float] = {}  # minute -> Invocations (Sum)

    def metrics(self, name, start, end, *, period_s=60, memory_mb=None) -> FunctionMetrics:
        points = tuple((t, v) for t, v in sorted(self.points.items()) if start <= t < end)
        return FunctionMetrics(function=name, period_s=period_s, invocations=points)


def test_a_minute_read_while_filling_is_revised_until_it_closes(loop_env):
    database = loop_env[0]
    clock = VirtualClock(START)  # START is on a minute boundary
    cloudwatch, poller = CloudWatchStandIn(), MetricsPoller(interval_s=1.0)
    cloudwatch.points[START] = 2.0  # the minute so far
    clock.set(START + 20)
    assert poll(database, poller, cloudwatch, {"f"}, clock).stored == 1
    cloudwatch.points[START] = 5.0  # the rest of the minute arrives
    cloudwatch.points[START - 60] = 4.0  # and the minute before, late
    clock.set(START + 90)
    report = poll(database, poller, cloudwatch, {"f"}, clock)
    assert (report.stored, report.revised) == (1, 1)
    assert sorted(invocations(database)) == [
        (to_datetime(START - 60), 4.0),
        (to_datetime(START), 5.0),  # revised in place: still one row for the minute
    ]
    # once closed, a minute is no longer read (nor is a datapoint invented for a gap)
    clock.set(START + 60 + SETTLE_S + 60)
    poll(database, poller, cloudwatch, {"f"}, clock)
    cloudwatch.points[START] = 7.0
    clock.advance(60)
    poll(database, poller, cloudwatch, {"f"}, clock)
    assert sorted(v for _, v in invocations(database)) == [4.0, 5.0]


def test_a_closed_minute_that_disagrees_with_the_ledger_is_on_the_timeline(loop_env):
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
    with database.session() as session:
        # a lost bill: one invocation the platform ran is missing from the ledger
        lost = session.scalar(
            select(Invocation.id).where(Invocation.job_id == job_id).order_by(Invocation.id)
        )
        session.execute(delete(Invocation).where(Invocation.id == lost))
        commit(session)
    clock.advance(SETTLE_S + 120)  # every minute of the job has closed
    poller = MetricsPoller(interval_s=1.0)
    report = poll(database, poller, platform, {"cescale-mlp-training"}, clock)
    assert report.mismatches == 1
    with database.session() as session:
        job = session.get(Job, job_id)
        events = JobService(session).timeline(session.get(Tenant, job.tenant_id), job_id)
        count = session.scalar(
            select(func.count())
            .select_from(Observation)
            .where(Observation.metric == "ledger_mismatch")
        )
    mismatch = [e for e in events if e.type == "metrics.ledger_mismatch"]
    assert len(mismatch) == 1 and mismatch[0].detail["cloudwatch_minus_ledger"] == 1
    assert mismatch[0].detail["function"] == "cescale-mlp-training"
    # polled again: the closed minute is not checked (nor reported) twice
    clock.advance(120)
    assert poll(database, poller, platform, {"cescale-mlp-training"}, clock).mismatches == 0
    assert count == 1


class LateInsights(EmulatorPlatform):
    """The emulator as the AWS backend sees it: each result comes without its CPU time, which
    Lambda Insights logs later; ``find_cpu_times`` has it once the test says it has arrived."""

    def __init__(self, clock) -> None:
        super().__init__(clock, seed=1, workers=2)
        self.cpu: dict[str, float] = {}  # request id -> CPU ms, as the events will say
        self.arrived = False
        self.asked: list[frozenset[str]] = []

    def poll(self, handle):
        result = super().poll(handle)
        if result is not None and result.report is not None:
            self.cpu[result.report.request_id] = result.report.cpu_ms
            result = replace(result, report=replace(result.report, cpu_ms=None))
        return result

    def find_cpu_times(self, name, start, end, request_ids):
        self.asked.append(request_ids)
        if not self.arrived:
            return {}
        return {r: self.cpu[r] for r in request_ids if r in self.cpu}


def curve_state(database, job_id) -> tuple[int, dict]:
    with database.session() as session:
        row = session.scalar(
            select(PredictorState).where(
                PredictorState.job_id == job_id, PredictorState.name == "memory-curve:worker"
            )
        )
        return (row.observations, row.state) if row is not None else (0, {})


def test_a_run_recorded_without_its_cpu_time_gets_it_late_and_the_curve_is_refitted(
    loop_env,
):
    """On AWS a run's CPU time (Lambda Insights' cpu_total_time) arrives after its result:
    the metrics poll fills it into the ledger, and the learn step refits the job's curve with
    it in the same tick, without waiting for new runs."""
    database, _, clock, settings = loop_env
    settings = settings.model_copy(update={"metrics_interval_s": 1e-6})  # a poll every tick
    platform = LateInsights(clock)
    try:
        spec = TRAINING | {"training": TRAINING["training"] | {"max_epochs": 8}}
        (job_id,) = submit(database, spec)  # static 512 MB: one size, so CPU time matters
        controller = Controller(database, platform, settings, seed=1)
        tick_until(
            controller, clock, database, job_id, lambda: curve_state(database, job_id)[0] >= 3
        )
        assert database_status(database, job_id) == "running"
        runs = ok_runs(database, job_id)
        assert runs and all(cpu is None for _, _, _, cpu, _, _ in runs)
        assert platform.asked, "the poll asked for the runs' CPU times"
        blind = MemoryCurve.from_state(curve_state(database, job_id)[1])
        assert blind.implied_min_mb is None  # one size, no CPU time: nothing below it

        platform.arrived = True  # Lambda Insights' events are in
        clock.advance(0.001)  # the next tick, which polls
        controller.run_once(to_datetime(clock.now()))

        runs = ok_runs(database, job_id)
        filled = [(rid, cpu) for rid, _, _, cpu, _, _ in runs if cpu is not None]
        assert len(filled) >= 3
        assert all(cpu == platform.cpu[rid] for rid, cpu in filled)
        observations, state = curve_state(database, job_id)
        points = ledger_points(runs)
        # the stored curve is the fit of every run in the ledger, CPU times included
        assert observations == len(points) and state == fit_points(points).to_state()
        curve = MemoryCurve.from_state(state)
        assert curve.implied_min_mb is not None and curve.implied_min_mb < 512
    finally:
        platform.close()


def test_the_poll_fills_cpu_times_only_of_the_jobs_it_is_given(loop_env):
    """A replica fills the runs of the jobs it holds (whose kept points it can drop); another
    job's runs of the same function are left to the replica that holds that job."""
    database, _, clock, settings = loop_env
    platform = LateInsights(clock)
    try:
        (job_id,) = submit(database, TRAINING)
        controller = Controller(database, platform, settings, seed=1)
        tick_until(
            controller,
            clock,
            database,
            job_id,
            lambda: database_status(database, job_id) == "succeeded",
        )
        platform.arrived = True
        asked = len(platform.asked)
        clock.advance(1.0)
        other = uuid.uuid4()
        report = poll(database, MetricsPoller(1.0), platform, {FUNCTION}, clock, jobs={other})
        assert report.cpu_filled == 0 and len(platform.asked) == asked  # nothing to ask for
        report = poll(database, MetricsPoller(1.0), platform, {FUNCTION}, clock, jobs={job_id})
        runs = ok_runs(database, job_id)
        assert report.cpu_filled == len(runs) > 0 and report.cpu_jobs == {job_id}
        assert all(cpu == platform.cpu[rid] for rid, _, _, cpu, _, _ in runs)
        # filled once: polled again, nothing is missing, so nothing is asked
        report = poll(database, MetricsPoller(1.0), platform, {FUNCTION}, clock, jobs={job_id})
        assert report.cpu_filled == 0 and len(platform.asked) == asked + 1
    finally:
        platform.close()
