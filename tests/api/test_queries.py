"""GET /v1/jobs/{id}/invocations, /v1/jobs/{id}/series, /v1/usage and /v1/functions: figures
checked against the seeded ledger, paging, tenant isolation and bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from service.database import commit
from service.prediction.forecaster import ROUND_DURATIONS, ForecasterBank
from service.prediction.loss_curve import LossCurve
from service.prediction.memory_curve import MemoryCurve
from tests.api.helpers import assert_problem
from tests.api.ledger_seed import REQUEST, add_state, compute_cost, seed_job

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


@pytest.fixture
def training(database, alice):
    """A training job: 2 workers at 512 MB, then 2 at 1024 MB, then 2 at 1024 MB."""
    with database.session() as session:
        seeded = seed_job(
            session,
            alice.tenant_id,
            T0,
            [(512, [2000, 2100]), (1024, [1100, 1000]), (1024, [900, 950])],
            losses=[0.9, 0.6, 0.45],
        )
        commit(session)
    return seeded


def test_invocations_are_listed_with_their_figures_and_paged(client, alice, training):
    url = f"/v1/jobs/{training.job_id}/invocations"
    first = client.get(url, params={"limit": 4}, headers=alice.headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert len(body["items"]) == 4 and body["next_cursor"]
    item = body["items"][0]
    assert item["stage"] == "round-0" and item["task"] == "worker-000"
    assert item["attempt"] == 1 and item["function"] == "cescale-mlp"
    assert item["alias"] == "mem-512" and item["memory_mb"] == 512
    assert item["billed_ms"] == 2000 and item["duration_ms"] == 1999.5
    assert item["init_ms"] == 120.0 and item["cold_start"] is True
    assert item["max_memory_used_mb"] == 170 and item["outcome"] == "ok"
    assert item["cpu_ms"] == 500.0  # Lambda Insights' cpu_total_time; null when not reported
    assert item["cost_usd"] == pytest.approx(float(compute_cost(512, 2000) + REQUEST), abs=1e-12)
    rest = client.get(url, params={"cursor": body["next_cursor"]}, headers=alice.headers).json()
    assert rest["next_cursor"] is None
    everything = body["items"] + rest["items"]
    assert [i["billed_ms"] for i in everything] == [2000, 2100, 1100, 1000, 900, 950]
    assert len({i["id"] for i in everything}) == 6
    assert sum(i["cost_usd"] for i in everything) == pytest.approx(float(training.total))


def test_series_has_memory_rounds_cost_and_loss(client, alice, training, database):
    with database.session() as session:
        curve = MemoryCurve.fit(
            [512, 512, 1024, 1024, 1024, 1024], [2000, 2100, 1100, 1000, 900, 950]
        )
        add_state(
            session, training.job_id, "memory-curve:default", "memory-curve", curve.to_state()
        )
        bank = ForecasterBank(1, ROUND_DURATIONS)
        for ratio in (1.05, 0.98, 1.02):
            bank.update(np.array([0]), np.array([ratio]))
        add_state(session, training.job_id, "duration:default", "forecaster", bank.series_state(0))
        loss = LossCurve.fit([1, 2, 3], [0.905, 0.605, 0.455])
        add_state(session, training.job_id, "loss-curve", "loss-curve", loss.to_state())
        commit(session)
    response = client.get(f"/v1/jobs/{training.job_id}/series", headers=alice.headers)
    assert response.status_code == 200, response.text
    series = response.json()
    assert [(m["stage"], m["memory_mb"], m["invocations"]) for m in series["memory"]] == [
        ("round-0", 512, 2),
        ("round-1", 1024, 2),
        ("round-2", 1024, 2),
    ]
    rounds = series["rounds"]
    assert [r["slowest_invocation_ms"] for r in rounds] == [2099.5, 1099.5, 949.5]
    assert [r["actual_s"] for r in rounds] == [2.6, 1.6, 1.45]
    assert [r["epochs"] for r in rounds] == [1, 1, 1]
    assert rounds[1]["predicted_ms"] == pytest.approx(curve.predict(1024))
    assert [r["loss"] for r in rounds] == pytest.approx([0.905, 0.605, 0.455])
    assert [r["best_loss"] for r in rounds] == pytest.approx([0.9, 0.6, 0.45])
    assert rounds[2]["predicted_loss"] == pytest.approx(float(loss.predict(np.array([3.0]))[0]))
    (forecast,) = series["forecasts"]
    expected = bank.forecast(np.array([0]), level=0.9)
    assert forecast["shape"] == "default" and forecast["memory_mb"] == 1024
    assert forecast["mean_ms"] == pytest.approx(float(expected.mean[0, 0]) * curve.predict(1024))
    assert forecast["lower_ms"] < forecast["mean_ms"] < forecast["upper_ms"]
    cost = series["cost"]
    assert cost[-1]["cumulative_usd"] == pytest.approx(float(training.total), abs=1e-12)
    assert sum(p["invocations"] for p in cost) == 6
    assert [p["cumulative_usd"] for p in cost] == sorted(p["cumulative_usd"] for p in cost)
    job_cost = client.get(f"/v1/jobs/{training.job_id}/cost", headers=alice.headers).json()
    assert cost[-1]["cumulative_usd"] == pytest.approx(job_cost["total_usd"], abs=1e-12)


def test_series_of_a_new_job_is_empty(client, alice):
    from tests.api.helpers import HPO_SPEC

    job_id = client.post("/v1/jobs", json=HPO_SPEC, headers=alice.headers).json()["id"]
    series = client.get(f"/v1/jobs/{job_id}/series", headers=alice.headers).json()
    assert series["memory"] == [] and series["rounds"] == [] and series["cost"] == []
    assert series["status"] == "pending"


def test_another_tenants_job_is_404_and_bad_input_is_a_problem(client, alice, bob, training):
    for path in ("invocations", "series"):
        assert_problem(client.get(f"/v1/jobs/{training.job_id}/{path}", headers=bob.headers), 404)
        assert_problem(client.get(f"/v1/jobs/not-a-uuid/{path}", headers=alice.headers), 422)
        assert_problem(client.get(f"/v1/jobs/{training.job_id}/{path}"), 401)
    url = f"/v1/jobs/{training.job_id}/invocations"
    assert_problem(client.get(url, params={"cursor": "!!!"}, headers=alice.headers), 400)
    assert_problem(client.get(url, params={"cursor": "bm9wZQ"}, headers=alice.headers), 400)
    assert_problem(client.get(url, params={"limit": 0}, headers=alice.headers), 422)


@pytest.fixture
def fleet(database, alice, bob):
    """Alice: a ce-scaling job on day 1 that met its deadline (512 → 1024 MB), a static job on
    day 2 that missed it. Bob: one job, never visible to Alice."""
    with database.session() as session:
        ce = seed_job(session, alice.tenant_id, T0, [(512, [2000, 2000]), (1024, [1000])])
        static = seed_job(
            session,
            alice.tenant_id,
            T0 + timedelta(days=1),
            [(2048, [800, 800])],
            policy="static",
            deadline_missed=True,
        )
        seed_job(session, bob.tenant_id, T0, [(4096, [5000])])
        commit(session)
    return ce, static


def test_usage_per_day_and_policy_with_static_saving(client, alice, fleet):
    ce, static = fleet
    response = client.get(
        "/v1/usage",
        params={
            "from": "2026-11-30T00:00:00Z",
            "to": "2026-12-02T00:00:00Z",
            "step": "1d",
            "group_by": "policy",
        },
        headers=alice.headers,
    )
    assert response.status_code == 200, response.text
    usage = response.json()
    assert usage["step_s"] == 86400 and usage["group_by"] == "policy"
    assert "largest memory size" in usage["static_size"]
    points = {(p["at"][:10], p["group"]): p for p in usage["points"]}
    assert set(points) == {("2026-11-30", "ce-scaling"), ("2026-12-01", "static")}
    day1 = points[("2026-11-30", "ce-scaling")]
    assert day1["invocations"] == 3 and day1["active_jobs"] == 1
    assert day1["cost_usd"] == pytest.approx(float(ce.total), abs=1e-12)
    assert day1["gb_seconds"] == pytest.approx((512 * 4.0 + 1024 * 1.0) / 1024)
    # static size = 1024 MB, the largest the job used: the 512 MB runs cost twice as much
    static_cost = 2 * compute_cost(512, 2000) * 2 + compute_cost(1024, 1000) + 3 * REQUEST
    assert day1["static_cost_usd"] == pytest.approx(float(static_cost), abs=1e-11)
    assert day1["saving_usd"] == pytest.approx(float(static_cost - ce.total), abs=1e-11)
    assert day1["jobs_finished"] == 1 and day1["deadline_attainment"] == 1.0
    day2 = points[("2026-12-01", "static")]
    assert day2["saving_usd"] == pytest.approx(0, abs=1e-12)  # one size only
    assert day2["jobs_finished"] == 1 and day2["deadline_attainment"] == 0.0
    totals = {t["group"]: t for t in usage["totals"]}
    assert totals["static"]["cost_usd"] == pytest.approx(float(static.total), abs=1e-12)
    assert usage["next_cursor"] is None


@pytest.mark.parametrize(
    ("group_by", "expected"),
    [
        ("workload", {"builtin:mlp"}),
        ("architecture", {"arm64"}),
        ("kind", {"training"}),
        ("status", {"succeeded"}),
        (None, {"all"}),
    ],
)
def test_usage_group_by_each_attribute(client, alice, fleet, group_by, expected):
    params = {"from": "2026-11-29T00:00:00Z", "to": "2026-12-03T00:00:00Z", "step": "1w"}
    if group_by:
        params["group_by"] = group_by
    usage = client.get("/v1/usage", params=params, headers=alice.headers).json()
    assert {p["group"] for p in usage["points"]} == expected
    assert sum(p["invocations"] for p in usage["points"]) == 5  # never Bob's


def test_usage_pages_buckets_with_a_cursor(client, alice, fleet):
    params = {"from": "2026-11-30T00:00:00Z", "to": "2026-12-02T00:00:00Z", "step": "1d"}
    first = client.get("/v1/usage", params={**params, "limit": 1}, headers=alice.headers).json()
    assert first["to"].startswith("2026-12-01") and first["next_cursor"]
    assert {p["at"][:10] for p in first["points"]} == {"2026-11-30"}
    second = client.get(
        "/v1/usage",
        params={**params, "limit": 1, "cursor": first["next_cursor"]},
        headers=alice.headers,
    ).json()
    assert {p["at"][:10] for p in second["points"]} == {"2026-12-01"}
    assert second["next_cursor"] is None


def test_usage_of_another_tenant_window_is_its_own(client, bob, fleet):
    params = {"from": "2026-11-30T00:00:00Z", "to": "2026-12-02T00:00:00Z", "step": "1d"}
    usage = client.get("/v1/usage", params=params, headers=bob.headers).json()
    assert sum(p["invocations"] for p in usage["points"]) == 1
    assert usage["points"][0]["gb_seconds"] == pytest.approx(4096 * 5.0 / 1024)


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-12-02T00:00:00Z", "to": "2026-11-30T00:00:00Z"},  # reversed
        {"from": "2026-11-30T00:00:00Z", "to": "2026-11-30T00:00:00Z"},  # empty
        {"from": "2026-11-30T00:00:00"},  # no time zone
        {"from": "yesterday"},
        {"step": "0"},
        {"step": "1y"},
        {"step": "-5"},
        {"group_by": "tenant"},
        {"limit": 0},
        {"limit": 5000},
    ],
)
def test_usage_bad_parameters_are_422(client, alice, params):
    assert_problem(client.get("/v1/usage", params=params, headers=alice.headers), 422)


def test_usage_bad_cursor_is_400_and_no_key_is_401(client, alice):
    assert_problem(client.get("/v1/usage", params={"cursor": "eA"}, headers=alice.headers), 400)
    assert_problem(client.get("/v1/usage"), 401)
    assert_problem(client.get("/v1/functions"), 401)


def test_functions_list_aliases_and_the_last_change(client, alice, bob, database):
    now = datetime.now(UTC) - timedelta(hours=1)
    with database.session() as session:
        seed_job(session, alice.tenant_id, now, [(512, [2000, 2000]), (1024, [1000, 900])])
        seed_job(
            session,
            alice.tenant_id,
            now,
            [(256, [300]), (256, [300, 310])],
            function="cescale-cnn",
            failed_last=True,
        )
        seed_job(session, bob.tenant_id, now, [(4096, [5000])], function="bob-fn")
        commit(session)
    page = client.get("/v1/functions", headers=alice.headers).json()
    assert [f["function"] for f in page["items"]] == ["cescale-cnn", "cescale-mlp"]
    cnn, mlp = page["items"]
    assert mlp["current_memory_mb"] == 1024
    assert mlp["last_change"]["from_mb"] == 512 and mlp["last_change"]["rule"] == "deadline-split"
    assert "1024 MB" in mlp["last_change"]["reason"]
    assert [(a["alias"], a["invocations"]) for a in mlp["aliases"]] == [
        ("mem-512", 2),
        ("mem-1024", 2),
    ]
    assert mlp["aliases"][1]["max_duration_ms"] == 999.5
    assert mlp["aliases"][1]["mean_duration_ms"] == pytest.approx((999.5 + 899.5) / 2)
    assert mlp["aliases"][0]["cold_starts"] == 2 and mlp["aliases"][0]["errors"] == 0
    assert cnn["current_memory_mb"] is None and cnn["last_change"] is None
    (alias,) = cnn["aliases"]
    assert alias["invocations"] == 3 and alias["errors"] == 1
    assert alias["error_rate"] == pytest.approx(1 / 3)

    first = client.get("/v1/functions", params={"limit": 1}, headers=alice.headers).json()
    assert [f["function"] for f in first["items"]] == ["cescale-cnn"]
    second = client.get(
        "/v1/functions", params={"limit": 1, "cursor": first["next_cursor"]}, headers=alice.headers
    ).json()
    assert [f["function"] for f in second["items"]] == ["cescale-mlp"]
    assert second["next_cursor"] is None
    later = client.get(
        "/v1/functions",
        params={"since": (datetime.now(UTC) + timedelta(hours=1)).isoformat()},
        headers=alice.headers,
    ).json()
    assert later["items"] == []
    assert [
        f["function"] for f in client.get("/v1/functions", headers=bob.headers).json()["items"]
    ] == ["bob-fn"]
