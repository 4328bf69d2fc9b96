"""The dashboard queries run a fixed number of SQL statements whatever the number of jobs,
stages and invocations (aggregation happens in the database, never a query per job); and they
give the same figures on SQLite, where buckets come from strftime instead of extract(epoch)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from service.api.app import create_app
from service.database import Database, commit
from service.migrate import upgrade
from service.settings import Settings
from tests.api.ledger_seed import seed_job
from tests.conftest import make_tenant

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def seed(database, tenant_id, jobs: int, rounds: int) -> list:
    ids = []
    with database.session() as session:
        for k in range(jobs):
            plan = [(512 if r % 2 else 1024, [1000 + k, 1100, 1200]) for r in range(rounds)]
            seeded = seed_job(
                session,
                tenant_id,
                T0 + timedelta(hours=k),
                plan,
                policy=("ce-scaling", "static")[k % 2],
                function=f"fn-{k % 3}",
                losses=[1.0 / (r + 1) for r in range(rounds)],
            )
            ids.append(seeded.job_id)
        commit(session)
    return ids


def statements(client, engine, path: str, headers, params=None) -> int:
    count = 0

    def counter(*_args) -> None:
        nonlocal count
        count += 1

    event.listen(engine, "before_cursor_execute", counter)
    try:
        response = client.get(path, params=params, headers=headers)
    finally:
        event.remove(engine, "before_cursor_execute", counter)
    assert response.status_code == 200, response.text
    return count


def routes(job_id) -> list[tuple[str, dict]]:
    window = {"from": "2026-11-29T00:00:00Z", "to": "2026-12-05T00:00:00Z", "step": "1h"}
    return [
        (f"/v1/jobs/{job_id}/invocations", {"limit": 1000}),
        (f"/v1/jobs/{job_id}/series", {}),
        ("/v1/usage", window),
        ("/v1/usage", {**window, "group_by": "workload"}),
        ("/v1/functions", {"since": "2026-11-01T00:00:00Z"}),
    ]


def test_statements_do_not_grow_with_jobs_or_rounds(client, database, pg_engine):
    small = make_tenant(database, "small")
    large = make_tenant(database, "large")
    few = seed(database, small.tenant_id, jobs=3, rounds=2)
    many = seed(database, large.tenant_id, jobs=30, rounds=8)
    for (path_few, params), (path_many, _) in zip(routes(few[0]), routes(many[-1]), strict=True):
        a = statements(client, pg_engine, path_few, small.headers, params)
        b = statements(client, pg_engine, path_many, large.headers, params)
        assert a == b, (path_few, a, b)
        assert b <= 10, (path_many, b)
    # the /metrics collector: the same aggregate statements for 3 jobs and for 33
    scraped = statements(client, pg_engine, "/metrics", {})
    seed(database, small.tenant_id, jobs=10, rounds=3)
    assert statements(client, pg_engine, "/metrics", {}) == scraped <= 8
    # a saved dashboard with one panel of each kind: the sum of its panels' statements
    counts = []
    for tenant, job_id in ((small, few[0]), (large, many[-1])):
        panels = [
            {"title": kind, "chart": "table", "query": {"kind": kind, **extra}}
            for kind, extra in [
                ("usage", {"from": "2026-11-29T00:00:00Z", "to": "2026-12-05T00:00:00Z"}),
                ("series", {"job_id": str(job_id)}),
                ("invocations", {"job_id": str(job_id), "limit": 200}),
                ("functions", {"since": "2026-11-01T00:00:00Z"}),
            ]
        ]
        url = client.post(
            "/v1/dashboards", json={"name": "d", "panels": panels}, headers=tenant.headers
        ).headers["location"]
        counts.append(statements(client, pg_engine, f"{url}/data", tenant.headers))
    assert counts[0] == counts[1] <= 25, counts


def test_the_queries_work_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'dash.db'}"
    upgrade(url)
    settings = Settings(database_url=url, state_dir=tmp_path, controller_enabled=False)
    database = Database(settings)
    try:
        tenant = make_tenant(database, "lite")
        (job_id,) = seed(database, tenant.tenant_id, jobs=1, rounds=3)
        with TestClient(create_app(settings, database)) as client:
            usage = client.get(
                "/v1/usage",
                params={"from": "2026-11-30T00:00:00Z", "to": "2026-12-01T00:00:00Z", "step": "1h"},
                headers=tenant.headers,
            ).json()
            (point,) = usage["points"]
            assert point["at"] == "2026-11-30T10:00:00Z"  # the hour the job ran in
            assert point["invocations"] == 9 and point["jobs_finished"] == 1
            # rounds at 1024, 512, 1024 MB: the 512 MB round is re-priced at 1024 MB
            assert point["saving_usd"] > 0
            for group_by, expected in (
                ("workload", "builtin:mlp"),
                ("architecture", "arm64"),
                ("policy", "ce-scaling"),
            ):
                grouped = client.get(
                    "/v1/usage",
                    params={
                        "from": "2026-11-30T00:00:00Z",
                        "to": "2026-12-01T00:00:00Z",
                        "step": "1d",
                        "group_by": group_by,
                    },
                    headers=tenant.headers,
                ).json()
                assert [(p["group"], p["invocations"]) for p in grouped["points"]] == [
                    (expected, 9)
                ]
            series = client.get(f"/v1/jobs/{job_id}/series", headers=tenant.headers).json()
            assert [r["memory_mb"] for r in series["rounds"]] == [1024, 512, 1024]
            assert series["cost"][-1]["cumulative_usd"] == pytest.approx(point["cost_usd"])
            invocations = client.get(
                f"/v1/jobs/{job_id}/invocations", params={"limit": 5}, headers=tenant.headers
            ).json()
            assert len(invocations["items"]) == 5 and invocations["next_cursor"]
            functions = client.get(
                "/v1/functions", params={"since": "2026-11-01T00:00:00Z"}, headers=tenant.headers
            ).json()
            assert functions["items"][0]["current_memory_mb"] == 1024
    finally:
        database.dispose()
