"""GET /metrics: Prometheus text that prometheus-client's own parser reads; the fleet figures
equal the ledger, the loop's histograms and the business counters move when a job runs, and a
token closes the endpoint when it is set."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.api.app import create_app
from service.control.drive import drive
from service.control.loop import Controller
from service.database import Database, commit
from service.platform.clock import VirtualClock
from service.platform.emulator.backend import EmulatorPlatform
from tests.api.helpers import assert_problem
from tests.api.ledger_seed import seed_job
from tests.conftest import truncate_all
from tests.control.helpers import TRAINING, submit

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def scrape(client, headers=None) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers=headers or {})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples, name: str, **labels) -> float:
    """Sum over every label set that includes ``labels``."""
    return sum(
        v
        for (n, ls), v in samples.items()
        if n == name and set(labels.items()) <= set(dict(ls).items())
    )


def test_fleet_figures_equal_the_ledger(client, alice, bob, database):
    with database.session() as session:
        ce = seed_job(session, alice.tenant_id, T0, [(512, [2000, 2000]), (1024, [1000])])
        static = seed_job(
            session,
            alice.tenant_id,
            T0,
            [(2048, [800])],
            policy="static",
            deadline_missed=True,
            failed_last=True,
        )
        seed_job(session, bob.tenant_id, T0, [(256, [300])], status="running")
        commit(session)
    samples = scrape(client)
    assert value(samples, "cescale_metrics_database_up") == 1
    assert value(samples, "cescale_cost_usd_total", tenant="alice", policy="ce-scaling") == (
        pytest.approx(float(ce.total))
    )
    assert value(samples, "cescale_cost_usd_total", tenant="alice", policy="static") == (
        pytest.approx(float(static.total))
    )
    assert value(samples, "cescale_gb_seconds_total", tenant="alice", policy="ce-scaling") == (
        pytest.approx((512 * 4.0 + 1024 * 1.0) / 1024)
    )
    assert (
        value(
            samples, "cescale_invocations_total", tenant="alice", policy="ce-scaling", outcome="ok"
        )
        == 3
    )
    assert (
        value(
            samples,
            "cescale_invocations_total",
            tenant="alice",
            policy="static",
            outcome="unhandled",
        )
        == 1
    )
    assert value(samples, "cescale_jobs", tenant="alice", policy="static", status="succeeded") == 1
    assert value(samples, "cescale_jobs", tenant="bob", policy="ce-scaling", status="running") == 1
    assert value(samples, "cescale_deadline_misses_total", tenant="alice", policy="static") == 1
    assert value(samples, "cescale_deadline_misses_total", tenant="alice", policy="ce-scaling") == 0
    assert value(samples, "cescale_jobs_ended_total", tenant="alice", policy="ce-scaling") == 1
    assert (
        value(samples, "cescale_memory_changes_total", rule="deadline-split", state="applied") == 1
    )
    assert value(samples, "cescale_intents_pending", kind="invocation") == 0
    # the loop's families are declared even before the first tick in this process
    assert any(name == "cescale_loop_tick_seconds_count" for name, _ in samples)


def test_a_token_closes_the_endpoint(database, settings):
    app = create_app(settings.model_copy(update={"metrics_token": "s3cret"}), database)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert_problem(client.get("/metrics"), 401)
        assert_problem(client.get("/metrics", headers={"Authorization": "Bearer nope"}), 401)
        assert_problem(client.get("/metrics", headers={"Authorization": "Basic czNjcmV0"}), 401)
        samples = scrape(client, {"Authorization": "Bearer s3cret"})
        assert value(samples, "cescale_metrics_database_up") == 1


def test_counters_move_when_a_job_runs(pg_engine, settings, tmp_path):
    settings = settings.model_copy(update={"store_url": (tmp_path / "store").as_uri()})
    database = Database(settings, engine=pg_engine)
    clock = VirtualClock(1_767_225_600.0)
    platform = EmulatorPlatform(clock, seed=1, workers=2)
    try:
        app = create_app(settings, database)
        with TestClient(app) as client:
            before = scrape(client)
            (job_id,) = submit(database, TRAINING)
            pending = scrape(client)
            assert total(pending, "cescale_jobs", status="pending") == (
                total(before, "cescale_jobs", status="pending") + 1
            )
            report = drive(Controller(database, platform, settings, seed=3), clock, [job_id])
            after = scrape(client)
        ticks = value(after, "cescale_loop_tick_seconds_count") - value(
            before, "cescale_loop_tick_seconds_count"
        )
        assert ticks == report.ticks
        for step in ("collect", "claim", "record", "advance", "commit"):
            moved = value(after, "cescale_loop_step_seconds_count", step=step) - value(
                before, "cescale_loop_step_seconds_count", step=step
            )
            assert moved == report.ticks, step
        assert (
            value(after, "cescale_loop_ticks_total", result="ok")
            - value(before, "cescale_loop_ticks_total", result="ok")
            == report.ticks
        )
        dispatched = value(after, "cescale_loop_dispatched_invocations_total") - value(
            before, "cescale_loop_dispatched_invocations_total"
        )
        invocations = total(after, "cescale_invocations_total") - total(
            before, "cescale_invocations_total"
        )
        assert invocations == dispatched == 3 * 4  # 3 workers × 4 rounds
        assert total(after, "cescale_cost_usd_total") > total(before, "cescale_cost_usd_total")
        assert total(after, "cescale_jobs", status="succeeded") == (
            total(before, "cescale_jobs", status="succeeded") + 1
        )
        assert total(after, "cescale_memory_changes_total", state="applied") >= 1
        assert value(after, "cescale_intents_pending", kind="invocation") == 0
    finally:
        platform.close()
        truncate_all(pg_engine)
