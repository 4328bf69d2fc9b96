"""A reconcile pass reads the claimed jobs in batches: its number of SQL statements does not
grow with the number of running jobs (it was four per job, plus every running invocation
loaded again by the dispatcher)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, event

from service.bench.control.reconcile import START, IdlePlatform, populate, settings
from service.control.loop import Controller, to_datetime
from service.database import Database
from service.models import Invocation, Job, Stage, Task
from tests.conftest import truncate_all


@pytest.fixture
def clean(pg_engine: Engine) -> Iterator[None]:
    truncate_all(pg_engine)
    yield
    truncate_all(pg_engine)


def pass_statements(url: str, pg_engine: Engine, jobs: int) -> list[int]:
    """Statements of a takeover pass and of two steady passes over ``jobs`` running jobs."""
    truncate_all(pg_engine)
    populate(url, jobs, workers=3)
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
    assert many[1:] == few[1:], (few, many)  # steady passes: the same statements for 10× jobs
    assert many[0] - few[0] <= 3, (few, many)  # takeover: a few more IN (...) chunks at most
    assert max(many[1:]) <= 30


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
