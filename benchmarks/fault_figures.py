"""Fault figures: controller replicas on Postgres, SIGKILLed at hundreds of points of running jobs.

    .venv/bin/python benchmarks/fault_figures.py [--kills 200] [--replicas 3] [--seed 1]

Batches of four jobs — HPO and training, static and ce-scaling, slow enough on the emulator
(128 MB = 0.07 vCPU) that kills land in every phase — run on ``--replicas`` `cescale controller`
processes sharing one Postgres database. After a random number of loop steps committed
(invocation and memory-change intents written, results recorded, changes applied), a random
replica is killed with SIGKILL (with its emulator workers) and started again, alternately under
its own identity (it resumes its leases) and a new one (the dead one's leases must expire).
Batches run until ``--kills`` kills have landed; then each batch is counted (not asserted):

- jobs lost: jobs that did not end ``succeeded``;
- tasks run twice: tasks with more than one successful invocation;
- attempts recorded twice: (task, attempt) pairs with more than one row;
- ledger ≠ invocations: jobs whose /cost total differs from the sum of their invocations;
- memory changes recorded twice, or left unapplied.

Needs the Postgres of the test suite (127.0.0.1:5432, trust auth); uses a scratch database
``cescale_faults`` that it drops at the end.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from service.database import Database  # noqa: E402
from service.jobs.service import JobService  # noqa: E402
from service.migrate import upgrade  # noqa: E402
from service.models import Allocation, Invocation, Job, Task, Tenant  # noqa: E402
from service.settings import Settings  # noqa: E402
from tests import postgres  # noqa: E402
from tests.control.helpers import statuses, submit  # noqa: E402
from tests.control.test_crash_safety import (  # noqa: E402
    SLOW_CE_HPO,
    SLOW_CE_TRAINING,
    SLOW_HPO,
    SLOW_TRAINING,
    TERMINAL,
    kill,
    progress_mark,
    start,
    wait_started,
)

DATABASE = "cescale_faults"
FIGURES = (
    "jobs",
    "jobs lost",
    "tasks",
    "tasks run twice",
    "attempts recorded twice",
    "ledger != invocations",
    "memory changes",
    "memory changes recorded twice",
    "memory changes unapplied",
)


def count(database: Database, ids) -> Counter:
    figures: Counter = Counter()
    with database.session() as session:
        invocations = session.scalars(select(Invocation).where(Invocation.job_id.in_(ids))).all()
        attempts = Counter((i.task_id, i.attempt) for i in invocations)
        ok = Counter(i.task_id for i in invocations if i.outcome == "ok")
        tasks = session.scalars(select(Task).where(Task.job_id.in_(ids))).all()
        figures["jobs"] += len(ids)
        figures["tasks"] += len(tasks)
        figures["tasks run twice"] += sum(1 for n in ok.values() if n > 1)
        figures["attempts recorded twice"] += sum(1 for n in attempts.values() if n > 1)
        for job_id in ids:
            job = session.get(Job, job_id)
            figures["jobs lost"] += job.status != "succeeded"
            cost = JobService(session).cost(session.get(Tenant, job.tenant_id), job_id)
            own = [i for i in invocations if i.job_id == job_id and i.compute_cost_usd is not None]
            ledger = sum((i.compute_cost_usd + i.request_cost_usd for i in own), Decimal(0))
            figures["ledger != invocations"] += cost.total.total_usd != ledger
        allocations = session.scalars(select(Allocation).where(Allocation.job_id.in_(ids))).all()
        keys = Counter(
            (a.job_id, a.stage_id, a.task_id, (a.detail or {}).get("shape"), a.rule, a.to_mb)
            for a in allocations
        )
        changes = [a for a in allocations if a.state != "vetoed"]
        figures["memory changes"] += len(changes)
        figures["memory changes recorded twice"] += sum(1 for n in keys.values() if n > 1)
        figures["memory changes unapplied"] += sum(1 for a in changes if a.state != "applied")
    return figures


def run_batch(database, variables, replicas: int, rng: random.Random, kills_left: int):
    ids = submit(database, SLOW_HPO, SLOW_TRAINING, SLOW_CE_HPO, SLOW_CE_TRAINING)
    processes = [start(variables, owner=f"replica-{i}") for i in range(replicas)]
    for process in processes:
        wait_started(process)
    kills, deadline = 0, time.monotonic() + 600
    try:
        while not set(statuses(database, ids).values()) <= TERMINAL:
            if time.monotonic() > deadline:
                break  # counted as lost below
            mark, steps = progress_mark(database, ids), rng.randint(1, 6)
            while progress_mark(database, ids) < mark + steps and time.monotonic() < deadline:
                if set(statuses(database, ids).values()) <= TERMINAL:
                    break
                time.sleep(0.02)
            if kills >= kills_left or set(statuses(database, ids).values()) <= TERMINAL:
                continue
            victim = rng.randrange(replicas)
            kill(processes[victim])
            kills += 1
            owner = f"replica-{victim}" if kills % 2 else f"replica-{victim}-{kills}"
            processes[victim] = start(variables, owner=owner)
            wait_started(processes[victim])
    finally:
        for process in processes:
            kill(process)
    return ids, kills


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    problem = postgres.ensure_running()
    if problem:
        sys.exit(problem)
    postgres.recreate_database(DATABASE)
    url = postgres.url(DATABASE)
    upgrade(url)
    import os
    import tempfile

    store = tempfile.mkdtemp(prefix="cescale-faults-")
    settings = Settings(database_url=url, controller_enabled=False)
    database = Database(settings)
    variables = os.environ | {
        "CESCALE_DATABASE_URL": url,
        "CESCALE_BACKEND": "emulator",
        "CESCALE_STORE_URL": Path(store).as_uri(),
        "CESCALE_CONTROLLER_LEASE_S": "1",
    }
    rng = random.Random(args.seed)
    totals: Counter = Counter()
    kills = batches = 0
    started = time.monotonic()
    try:
        while kills < args.kills:
            ids, landed = run_batch(database, variables, args.replicas, rng, args.kills - kills)
            figures = count(database, ids)
            totals += figures
            kills += landed
            batches += 1
            print(
                f"batch {batches}: {landed} kills ({kills} in all), "
                + ", ".join(f"{k} {figures[k]}" for k in FIGURES),
                flush=True,
            )
    finally:
        database.dispose()
        postgres.drop_database(DATABASE)
    print(
        f"\n{args.replicas} replicas, {kills} SIGKILLs over {batches} batches of 4 jobs, "
        f"{time.monotonic() - started:.0f} s"
    )
    for key in FIGURES:
        print(f"  {key:<32} {totals[key]}")


if __name__ == "__main__":
    main()
