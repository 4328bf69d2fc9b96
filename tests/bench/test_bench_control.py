"""``cescale bench-control`` at toy sizes against the local Postgres."""

from __future__ import annotations

import json

import psycopg

from service.bench.control.postgres import ADMIN_DSN
from service.bench.control.suite import ControlConfig, run_control_bench


def test_control_bench_measures_and_cleans_up(tmp_path) -> None:
    config = ControlConfig(
        jobs=20,
        workers=10,
        passes=2,
        series=1_000,
        api_seconds=1.0,
        api_threads=2,
        dashboard_jobs=30,
        dashboard_repeat=2,
    )
    document = run_control_bench(config, tmp_path)

    assert document["state"]["running_jobs"] == 20
    assert document["state"]["running_functions"] == 200
    one, two = document["reconcile"]
    assert one["replicas"] == 1 and two["replicas"] == 2
    assert one["jobs_per_pass"] == [20, 20]  # every job advanced on every pass
    assert two["jobs_per_pass"] == [20, 20]  # ... split between the two replicas
    assert {o["passes"][0]["jobs"] for o in two["per_replica"]} == {10}
    assert one["per_replica"][0]["passes"][0]["dispatched"] == 200  # takeover re-sends intents
    assert one["per_replica"][0]["passes"][1]["dispatched"] == 0
    assert document["forecaster"]["updates_per_s"] > 0
    for route in ("get_job", "post_job"):
        assert document["api"][route]["ok"] > 0
        assert document["api"][route]["p99_ms"] >= document["api"][route]["p50_ms"]
    dash = document["dashboards"]
    assert dash["state"] == {"jobs": 30, "invocations": 3000, "setup_s": dash["state"]["setup_s"]}
    assert set(dash["queries"]) >= {"usage, 90 days by day", "series of one job"}
    assert all(q["p95_ms"] >= q["p50_ms"] > 0 for q in dash["queries"].values())
    assert "## Dashboard queries" in (tmp_path / "control.md").read_text()
    assert json.loads((tmp_path / "control.json").read_text())["targets"]
    assert "## Reconcile pass" in (tmp_path / "control.md").read_text()
    with psycopg.connect(ADMIN_DSN) as connection:
        left = connection.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", (document["database"],)
        ).fetchone()[0]
    assert left == 0  # the private database was dropped
