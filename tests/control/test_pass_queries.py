"""A reconcile pass reads the claimed jobs in batches: its number of SQL statements does not
grow with the number of running jobs (it was four per job, plus every running invocation
loaded again by the dispatcher). A takeover pass (a controller's first, or jobs taken from a
replica whose lease ran out) reads row by row only the jobs that need a step, and sends the
open intents of the others again from one read of them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, event, select

from service.bench.control.reconcile import START, IdlePlatform, job_spec, populate, settings
from service.control.loop import Controller, to_datetime
from service.database import Database, commit
from service.jobs.service import JobService
from service.models import Invocation, Job, Stage, Task, Tenant
from tests.conftest import truncate_all


@pytest.fixture
def clean(pg_engine: Engine) -> Iterator[None]:
    truncate_all(pg_engine)
    yield
    truncate_all(pg_engine)


def submit(url: str, jobs: int) -> None:
    """Submit ``jobs`` more jobs, which no pass has started yet (each needs a step)."""
    if not jobs:
        return
    database = Database(settings(url, batch=jobs))
    try:
        with database.session() as session:
            tenant = Tenant(name="pending")
            session.add(tenant)
            session.flush()
            for _ in range(jobs):
                JobService(session).submit(tenant, job_spec(3), lambda job: {})
            commit(session)
    finally:
        database.engine.dispose()


def pass_statements(url: str, pg_engine: Engine, jobs: int, pending: int = 0) -> list[int]:
    """Statements of a takeover pass and of two steady passes over ``jobs`` running jobs (and
    ``pending`` jobs submitted after the setup pass, started by the takeover pass)."""
    truncate_all(pg_engine)
    populate(url, jobs, workers=3)
    submit(url, pending)
    jobs += pending
    config = settings(url, batch=jobs)
    database = Database(config)
    counts = []

    def count(*_args) -> None:
        counts[-1] += 1

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        controller = Controller(database, IdlePlatform(), config, owner="counting", seed=0)
        for k in range(3):  # START + 60: every lease of the setup pass has run out
            counts.append(0)
            report = controller.run_once(to_datetime(START + 60 + k))
            assert report.jobs == jobs
    finally:
        event.remove(database.engine, "before_cursor_execute", count)
        database.engine.dispose()
    return counts


@pytest.mark.usefixtures("clean")
def test_statements_per_pass_do_not_grow_with_the_jobs(pg_url: str, pg_engine: Engine) -> None:
    few = pass_statements(pg_url, pg_engine, 4)
    many = pass_statements(pg_url, pg_engine, 40)
    assert many == few, (few, many)  # takeover and steady: the same statements for 10× jobs
    assert max(many) <= 30


@pytest.mark.usefixtures("clean")
def test_statements_of_a_takeover_pass_do_not_grow_with_the_jobs(
    pg_url: str, pg_engine: Engine
) -> None:
    """A takeover pass over jobs that only wait and a job that needs a step (one that has not
    started, so the batched reads of busy jobs run too): the same statements for 10× the jobs
    that wait. (A job's step costs its own statements, on any pass.)"""
    few = pass_statements(pg_url, pg_engine, 4, pending=1)
    many = pass_statements(pg_url, pg_engine, 40, pending=1)
    assert many[0] == few[0], (few, many)
    assert many[0] <= 40  # the new job's step included


@pytest.mark.usefixtures("clean")
def test_a_takeover_pass_reads_only_the_jobs_that_need_it(pg_url: str, pg_engine: Engine):
    """Taking over six jobs that only wait and one that has not started: the waiting jobs'
    tasks, stages and invocations are read once, by the dispatcher sending their intents again,
    not a second time to step them; the new job is started and its intents sent too."""
    populate(pg_url, 6, workers=3)
    submit(pg_url, 1)
    config = settings(pg_url, batch=7)
    database = Database(config)
    loaded: Counter[str] = Counter()

    def on_load(target, _context) -> None:
        loaded[type(target).__name__] += 1

    kinds = (Task, Invocation, Stage, Job)
    for kind in kinds:
        event.listen(kind, "load", on_load)
    try:
        controller = Controller(database, IdlePlatform(), config, owner="takeover", seed=0)
        takeover = controller.run_once(to_datetime(START + 60))
        assert takeover.jobs == 7 and takeover.dispatched == 21  # 6 × 3 re-sent, 3 new
        # one task and invocation per intent sent, one stage per job: nothing read twice
        assert loaded["Task"] == 21 and loaded["Invocation"] == 21, loaded
        assert loaded["Stage"] == 7, loaded
        with database.session() as session:
            statuses = session.scalars(select(Job.status)).all()
        assert sorted(statuses) == ["running"] * 7
    finally:
        for kind in kinds:
            event.remove(kind, "load", on_load)
        database.engine.dispose()


@pytest.mark.usefixtures("clean")
def test_a_steady_pass_reads_no_row_of_a_job_that_only_waits(pg_url: str, pg_engine: Engine):
    """Jobs whose every unfinished task is running and which have no result to record are
    not read row by row on a steady pass: no task, invocation or stage object is built, and
    no spec or other JSON value is decoded."""
    populate(pg_url, 6, workers=3)
    config = settings(pg_url, batch=6)
    database = Database(config)
    loaded: Counter[str] = Counter()

    def on_load(target, _context) -> None:
        loaded[type(target).__name__] += 1

    kinds = (Task, Invocation, Stage, Job)
    for kind in kinds:
        event.listen(kind, "load", on_load)
    try:
        controller = Controller(database, IdlePlatform(), config, owner="steady", seed=0)
        takeover = controller.run_once(to_datetime(START + 60))
        assert takeover.jobs == 6 and takeover.dispatched == 18  # read, and every intent re-sent
        assert loaded["Task"] >= 18 and loaded["Invocation"] >= 18
        for k in range(1, 3):
            loaded.clear()
            report = controller.run_once(to_datetime(START + 60 + k))
            assert report.jobs == 6 and report.dispatched == 0
            assert loaded == Counter({"Job": 6}), loaded  # the claim; nothing else
    finally:
        for kind in kinds:
            event.remove(kind, "load", on_load)
        database.engine.dispose()
