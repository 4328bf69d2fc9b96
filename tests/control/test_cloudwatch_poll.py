"""CloudWatch polling: a minute read while it fills is revised until it closes, a late
datapoint is added, and a closed minute that disagrees with the ledger is on the timeline."""

from __future__ import annotations

from sqlalchemy import delete, func, select

from service.control.cloudwatch import SETTLE_S, MetricsPoller
from service.control.loop import Controller, to_datetime
from service.control.repository import LoopRepository
from service.database import commit
from service.jobs.service import JobService
from service.models import Invocation, Job, Observation, Tenant
from service.platform.clock import VirtualClock
from service.platform.interface import FunctionMetrics
from tests.control import test_learning
from tests.control.helpers import START, TRAINING, submit
from tests.control.test_learning import database_status, tick_until

# the same loop_env as test_learning's: Postgres, an emulator on a virtual clock, metrics
# read every second
loop_settings = test_learning.loop_settings


def invocations(database) -> list[tuple]:
    with database.session() as session:
        return session.execute(
            select(Observation.observed_at, Observation.value).where(
                Observation.metric == "invocations"
            )
        ).all()


def poll(database, poller, platform, functions, clock):
    with database.session() as session:
        report = poller.poll(LoopRepository(session), platform, functions, to_datetime(clock.now()))
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
