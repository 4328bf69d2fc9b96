"""Dashboard queries at scale: one tenant with ``jobs`` jobs of 100 billed invocations each
(5 rounds × 20 workers, sizes 512/1024/2048 MB) over 90 days, written in SQL through the real
triggers (so ``usage_hours`` is built as the loop would build it) and VACUUMed as autovacuum
would; then each query is timed through the service layer, p50 and p95 of ``repeat`` runs."""

from __future__ import annotations

import hashlib
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from prometheus_client import generate_latest
from sqlalchemy import text

from service.database import Database, make_engine
from service.metrics import registry_for
from service.models import Tenant
from service.settings import Settings
from service.usage.service import UsageService

TARGET_P95_MS = 200.0
TARGETED = ("usage, 90 days by day", "series of one job")

TENANT = uuid.UUID("00000000-0000-0000-0000-000000000001")
START = "timestamptz '2026-09-01' + (g * interval '13 minutes')"  # 10,000 jobs ≈ 90 days

POPULATE = f"""
INSERT INTO tenants (id, name, created_at) VALUES ('{TENANT}', 'big', now());
INSERT INTO jobs (id, tenant_id, name, kind, status, policy, spec, deadline_s, deadline_missed,
                  created_at, updated_at, started_at, finished_at, version)
  SELECT md5('dash-job'||g)::uuid, '{TENANT}', 'j'||g, 'training', 'succeeded',
    (ARRAY['ce-scaling','static','power-tuning'])[1 + g % 3],
    jsonb_build_object('workload', jsonb_build_object('function','builtin:mlp',
                                                      'architecture','x86_64')),
    600, g % 7 = 0, {START}, now(), {START}, {START} + interval '10 minutes', 1
  FROM generate_series(1, :jobs) g;
INSERT INTO stages (id, job_id, position, name, kind, status, created_at, started_at,
                    finished_at)
  SELECT md5('stage'||g||'-'||s)::uuid, md5('dash-job'||g)::uuid, s, 'round-'||s, 'round',
    'succeeded', now(), {START} + s * interval '2 minutes',
    {START} + s * interval '2 minutes' + interval '90 seconds'
  FROM generate_series(1, :jobs) g, generate_series(0, 4) s;
INSERT INTO tasks (id, job_id, stage_id, key, shape, status, params, function_name, attempts,
                   created_at, updated_at, epoch_from, epoch_to, result)
  SELECT md5('task'||g||'-'||s||'-'||w)::uuid, md5('dash-job'||g)::uuid,
    md5('stage'||g||'-'||s)::uuid, 'worker-'||w, 'default', 'succeeded', '{{}}', 'fn-'||(g%5),
    1, now(), now(), s, s+1, jsonb_build_object('loss', 1.0/(s+1))
  FROM generate_series(1, :jobs) g, generate_series(0, 4) s, generate_series(0, 19) w;
INSERT INTO invocations (id, job_id, stage_id, task_id, attempt, function_name, memory_mb,
                         architecture, state, outcome, duration_ms, billed_ms, cold_start,
                         compute_cost_usd, request_cost_usd, created_at, started_at, finished_at)
  SELECT md5('inv'||g||'-'||s||'-'||w)::uuid, md5('dash-job'||g)::uuid,
    md5('stage'||g||'-'||s)::uuid, md5('task'||g||'-'||s||'-'||w)::uuid, 1, 'fn-'||(g%5),
    (ARRAY[512,1024,2048])[1 + (s+g) % 3], 'x86_64', 'done', 'ok', 1000 + w, 1000 + w, s = 0,
    ((ARRAY[512,1024,2048])[1 + (s+g) % 3]::bigint * (1000 + w) * 16667 / 1024), 200000,
    {START} + s * interval '2 minutes', {START} + s * interval '2 minutes',
    {START} + s * interval '2 minutes' + (1000 + w) * interval '1 millisecond'
  FROM generate_series(1, :jobs) g, generate_series(0, 4) s, generate_series(0, 19) w;
"""


def populate(url: str, jobs: int) -> dict[str, Any]:
    engine = make_engine(url)
    started = time.perf_counter()
    with engine.begin() as connection:
        for statement in POPULATE.split(";\n"):
            if statement.strip():
                connection.execute(text(statement), {"jobs": jobs})
    engine.dispose()
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("VACUUM ANALYZE"))
        count = connection.execute(
            text(
                "SELECT count(*) FROM invocations JOIN jobs ON jobs.id = invocations.job_id "
                f"WHERE jobs.tenant_id = '{TENANT}'"
            )
        ).scalar()
    engine.dispose()
    return {"jobs": jobs, "invocations": count, "setup_s": round(time.perf_counter() - started, 1)}


def measure(url: str, jobs: int, repeat: int) -> dict[str, Any]:
    database = Database(Settings(database_url=url, controller_enabled=False))
    job = uuid.UUID(hashlib.md5(f"dash-job{max(1, jobs // 2)}".encode()).hexdigest())
    day, end = datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    week = (datetime(2026, 9, 20, tzinfo=UTC), datetime(2026, 9, 27, tzinfo=UTC))

    def usage(start, stop, step, group_by):
        return lambda s, t: UsageService(s).usage(
            t, start=start, end=stop, step=step, group_by=group_by, cursor=None, limit=1000
        )

    registry = registry_for(database, loop=False)
    cases = {
        "usage, 90 days by day": usage(day, end, "1d", None),
        "usage, 90 days by day and policy": usage(day, end, "1d", "policy"),
        "usage, 90 days by hour and workload": usage(day, end, "1h", "workload"),
        "usage, 7 days by hour and policy": usage(*week, "1h", "policy"),
        "usage, 7 days by 15 min (ledger only)": usage(*week, "15m", None),
        "series of one job": lambda s, t: UsageService(s).series(t, job),
        "invocations, a page of 200": lambda s, t: UsageService(s).invocations(t, job, None, 200),
        "functions, last 7 days": lambda s, t: UsageService(s).functions(
            t, since=datetime(2026, 11, 23, tzinfo=UTC), cursor=None, limit=50
        ),
        "GET /metrics collector": lambda s, t: generate_latest(registry),
    }
    results = {}
    try:
        for name, run in cases.items():
            times = []
            for _ in range(repeat):
                with database.session() as session:
                    tenant = session.get(Tenant, TENANT)
                    started = time.perf_counter()
                    run(session, tenant)
                    times.append((time.perf_counter() - started) * 1000)
            times.sort()
            results[name] = {
                "p50_ms": round(statistics.median(times), 1),
                "p95_ms": round(times[max(0, round(0.95 * len(times)) - 1)], 1),
            }
    finally:
        database.dispose()
    return results
