"""However a job ends — its workflow's end, a cancel, or a failure of the loop itself — its
stages and tasks are closed and ``deadline_missed`` is filled, by the lifecycle's one rule."""

from __future__ import annotations

from sqlalchemy import select

from service.control.loop import Controller, to_datetime
from service.database import Database
from service.models import Job, Stage, Task
from service.platform.clock import VirtualClock
from service.platform.emulator.backend import EmulatorPlatform
from service.policies.registry import policy_for
from tests.conftest import truncate_all
from tests.control.helpers import HPO, submit

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class CrashesOnThirdTick:
    """The job's policy, until it raises on the third tick (a bug in a policy mid-job)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, spec):
        self.calls += 1
        if self.calls >= 3:
            raise RuntimeError("policy crashed")
        return policy_for(spec)


def test_a_policy_that_raises_mid_job_leaves_no_stage_or_task_open(pg_engine, settings, tmp_path):
    settings = settings.model_copy(update={"store_url": (tmp_path / "store").as_uri()})
    database = Database(settings, engine=pg_engine)
    clock = VirtualClock(START)
    platform = EmulatorPlatform(clock, seed=1, workers=2)
    try:
        (job_id,) = submit(database, HPO)
        controller = Controller(
            database, platform, settings, seed=3, policy_for=CrashesOnThirdTick()
        )
        controller.run_once(to_datetime(clock.now()))  # opens rung-0, launches its trials
        with database.session() as session:
            assert session.get(Job, job_id).status == "running"
            running = session.scalars(
                select(Task).where(Task.job_id == job_id, Task.status == "running")
            ).all()
            assert running, "the first tick launched nothing"
        for _ in range(200):  # until the policy is asked again (a tick with results) and raises
            clock.advance(0.05)
            controller.run_once(to_datetime(clock.now()))
            with database.session() as session:
                if session.get(Job, job_id).status != "running":
                    break
        with database.session() as session:
            job = session.get(Job, job_id)
            assert job.status == "failed"
            assert "policy crashed" in job.status_reason
            assert job.deadline_missed is False  # filled, as for any other end
            assert job.finished_at is not None and job.lease_owner is None
            stages = session.scalars(select(Stage).where(Stage.job_id == job_id)).all()
            tasks = session.scalars(select(Task).where(Task.job_id == job_id)).all()
            assert {s.status for s in stages} == {"cancelled"}
            assert all(s.finished_at == job.finished_at for s in stages)
            assert {t.status for t in tasks} <= {"cancelled", "succeeded", "failed"}
            assert "running" not in {t.status for t in tasks}
    finally:
        platform.close()
        truncate_all(pg_engine)
