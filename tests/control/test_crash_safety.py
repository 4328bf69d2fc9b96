"""Crash safety and replicas, with real `cescale controller` processes on the test Postgres.

- SIGKILL the controller (and its emulator workers) at random moments of running jobs, restart
  it, again and again: the jobs still finish, no attempt is recorded twice, each task succeeds
  once, the ledger matches the invocations, and no memory change is recorded or applied twice.
- Two controllers share a batch of jobs: every task runs exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service.database import Database
from tests.conftest import truncate_all
from tests.control.helpers import HPO, TRAINING, assert_invariants, statuses, submit

ROOT = Path(__file__).resolve().parents[2]
# Jobs that take a few seconds of wall time on the emulator (128 MB = 0.07 vCPU), so that kills
# land in every phase: rungs running, results arriving, stages opening, rounds averaging.
DATA = "builtin:synthetic?n=20000&d=50"
SLOW_HPO = HPO | {
    "workload": {"function": "builtin:logreg", "dataset": DATA},
    "hpo": HPO["hpo"] | {"max_epochs": 9},
    "policy": {"name": "static", "memory_mb": 128},
}
SLOW_TRAINING = TRAINING | {
    "workload": {"function": "builtin:mlp", "dataset": DATA},
    "training": TRAINING["training"] | {"max_epochs": 6},
    "policy": {"name": "static", "memory_mb": 128},
}
# ce-scaling makes memory changes of every kind (pilot, per-stage plan, keep-warm, probes):
# each must still be one row, applied once, however often the controller dies.
SLOW_CE_HPO = SLOW_HPO | {"name": "loop-hpo-ce", "policy": {"name": "ce-scaling"}}
SLOW_CE_TRAINING = SLOW_TRAINING | {"name": "loop-training-ce", "policy": {"name": "ce-scaling"}}
TERMINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture
def env(pg_url, pg_engine, settings, tmp_path):
    database = Database(settings, engine=pg_engine)
    variables = os.environ | {
        "CESCALE_DATABASE_URL": pg_url,
        "CESCALE_BACKEND": "emulator",
        "CESCALE_STORE_URL": (tmp_path / "store").as_uri(),
        "CESCALE_CONTROLLER_LEASE_S": "1",
    }
    yield database, variables
    truncate_all(pg_engine)


def start(variables: dict, owner: str, batch: int = 200) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service.cli.main",
            "controller",
            "--interval",
            "0.05",
            "--owner",
            owner,
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=variables | {"CESCALE_CONTROLLER_BATCH": str(batch)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: kill it with its emulator workers
    )


def wait_started(process: subprocess.Popen) -> None:
    line = process.stdout.readline().decode()
    assert line.startswith("controller "), line


def kill(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def recorded(database, ids) -> int:
    from sqlalchemy import func, select

    from service.models import Invocation

    with database.session() as session:
        return session.scalar(
            select(func.count())
            .select_from(Invocation)
            .where(Invocation.job_id.in_(ids), Invocation.state == "done")
        )


def progress_mark(database, ids) -> int:
    """A number that grows with every step the loop commits: an intent written (invocation or
    memory change), a result recorded, a memory change applied."""
    from sqlalchemy import func, select

    from service.models import Allocation, Invocation

    with database.session() as session:
        rows = session.scalar(
            select(func.count()).select_from(Invocation).where(Invocation.job_id.in_(ids))
        )
        done = recorded(database, ids)
        changes = session.scalar(
            select(func.count()).select_from(Allocation).where(Allocation.job_id.in_(ids))
        )
        applied = session.scalar(
            select(func.count())
            .select_from(Allocation)
            .where(Allocation.job_id.in_(ids), Allocation.state == "applied")
        )
    return rows + done + changes + applied


def wait_for_progress(database, ids, since: int, steps: int, timeout_s: float = 120) -> None:
    """Until the loop has committed ``steps`` more steps than ``since`` (or the jobs ended):
    kills land on observed progress, however slow the machine is."""
    deadline = time.monotonic() + timeout_s
    while progress_mark(database, ids) < since + steps:
        if set(statuses(database, ids).values()) <= TERMINAL:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"no progress in {timeout_s}s: {statuses(database, ids)}")
        time.sleep(0.02)


def wait_for(database, ids, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if set(statuses(database, ids).values()) <= TERMINAL:
            return
        time.sleep(0.1)
    pytest.fail(f"jobs not finished after {timeout_s}s: {statuses(database, ids)}")


def test_sigkill_at_many_points_then_restart(env):
    database, variables = env
    ids = submit(database, SLOW_HPO, SLOW_TRAINING, SLOW_CE_HPO, SLOW_CE_TRAINING)
    rng = random.Random(20261125)
    kills = 0
    while kills < 20 and not set(statuses(database, ids).values()) <= TERMINAL:
        # Alternate between a restart under the same identity (it resumes its own leases at
        # once) and a new replica (it must wait for the dead one's leases to expire).
        mark = progress_mark(database, ids)
        process = start(variables, owner="crashy" if kills % 2 == 0 else f"fresh-{kills}")
        wait_started(process)
        # A random number of committed steps, then a random moment of the next one: the kill
        # lands between an intent and its side effect, a call and its result, or mid-dispatch.
        wait_for_progress(database, ids, since=mark, steps=rng.randint(1, 6))
        time.sleep(rng.uniform(0.0, 0.05))
        kill(process)
        kills += 1
    progress = recorded(database, ids)
    survivor = start(variables, owner="survivor")
    try:
        wait_for(database, ids, timeout_s=90)
    finally:
        kill(survivor)
    figures = assert_invariants(database, ids)
    print(f"kill points tried: {kills}; recorded before the survivor: {progress}; {figures}")
    assert kills >= 8  # the jobs outlived many kills, not just one
    assert figures["memory_changes"] > 2  # beyond the static jobs' two: ce-scaling's changes
    assert progress > 0  # ... and made progress between them


def test_two_controllers_share_jobs_and_run_each_task_once(env):
    database, variables = env
    ids = submit(database, HPO, TRAINING, HPO, TRAINING, HPO, TRAINING)
    first, second = start(variables, "replica-a", batch=2), start(variables, "replica-b", batch=2)
    try:
        wait_started(first)
        wait_started(second)
        wait_for(database, ids, timeout_s=120)
    finally:
        kill(first)
        kill(second)
    figures = assert_invariants(database, ids)
    assert figures["retries"] == 0  # every task ran exactly once: one invocation, attempt 1
