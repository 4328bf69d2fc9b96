"""Every timestamp of a job comes from the loop's clock: on a virtual clock that starts on
2026-01-01, no row of the job is stamped by the database's or the machine's wall clock."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from service.control.drive import drive
from service.control.loop import Controller, to_datetime
from service.database import Database, commit
from service.jobs.service import JobService
from service.models import Allocation, Invocation, Job, Observation, Stage, Task, Tenant
from service.platform.clock import VirtualClock
from service.platform.emulator.backend import EmulatorPlatform
from service.spec import JobSpec
from tests.conftest import truncate_all
from tests.control.helpers import HPO

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def test_a_job_on_a_virtual_clock_has_only_virtual_timestamps(pg_engine, settings, tmp_path):
    settings = settings.model_copy(update={"store_url": (tmp_path / "store").as_uri()})
    database = Database(settings, engine=pg_engine)
    clock = VirtualClock(START)
    platform = EmulatorPlatform(clock, seed=1, workers=2)
    try:
        with database.session() as session:
            tenant = Tenant(name="clock")
            session.add(tenant)
            session.flush()
            spec = JobSpec.model_validate(HPO | {"policy": {"name": "ce-scaling"}})
            job_id = (
                JobService(session)
                .submit(tenant, spec, lambda job: {}, now=to_datetime(START))
                .job_id
            )
            commit(session)
        drive(Controller(database, platform, settings, seed=3), clock, [job_id], max_ticks=2000)
        with database.session() as session:
            job = session.get(Job, job_id)
            assert job.status == "succeeded", job.status_reason
            start, end = to_datetime(START), job.finished_at + timedelta(seconds=1)
            stamps = {"job.created_at": [job.created_at], "job.updated_at": [job.updated_at]}
            for table, columns in (
                (Stage, ("created_at", "started_at", "finished_at")),
                (Task, ("created_at", "updated_at")),
                (Invocation, ("created_at", "started_at", "finished_at")),
                (Allocation, ("created_at", "applied_at")),
                (Observation, ("observed_at", "recorded_at")),
            ):
                rows = session.scalars(select(table).where(table.job_id == job_id)).all()
                assert rows, table.__tablename__
                for column in columns:
                    values = [getattr(row, column) for row in rows]
                    stamps[f"{table.__tablename__}.{column}"] = [v for v in values if v]
            for column, values in stamps.items():
                outside = [v for v in values if not start <= v <= end]
                assert not outside, f"{column}: {outside[:3]} outside {start} … {end}"
    finally:
        platform.close()
        truncate_all(pg_engine)
