"""Saved dashboards: CRUD with ETag / If-Match, validation, tenant isolation, and every panel
resolved in one call with the figures its own route gives."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from service.database import commit
from tests.api.helpers import assert_problem
from tests.api.ledger_seed import seed_job


def dashboard(job_id=None, **changes):
    panels = [
        {
            "title": "Cost by policy",
            "chart": "bar",
            "query": {
                "kind": "usage",
                "from": "now-7d",
                "to": "now",
                "step": "1d",
                "group_by": "policy",
            },
        },
        {"title": "Functions", "chart": "table", "query": {"kind": "functions"}},
    ]
    if job_id:
        panels += [
            {
                "title": "Cumulative cost",
                "chart": "line",
                "query": {"kind": "series", "job_id": str(job_id)},
            },
            {
                "title": "Runs",
                "chart": "table",
                "query": {"kind": "invocations", "job_id": str(job_id), "limit": 2},
            },
        ]
    return {"name": "Fleet", "description": "what we spend\nand why", "panels": panels, **changes}


def test_create_get_list_replace_delete_with_etags(client, alice):
    created = client.post("/v1/dashboards", json=dashboard(), headers=alice.headers)
    assert created.status_code == 201, created.text
    body = created.json()
    tag = created.headers["etag"]
    assert body["etag"] == tag and created.headers["location"] == f"/v1/dashboards/{body['id']}"
    assert body["panels"][0]["query"]["from"] == "now-7d"
    assert body["panels"][0]["query"]["metric"] == "cost_usd"  # defaults are stored
    url = created.headers["location"]
    fetched = client.get(url, headers=alice.headers)
    assert fetched.json() == body and fetched.headers["etag"] == tag

    renamed = client.put(
        url, json=dashboard(name="Fleet (weekly)"), headers={**alice.headers, "If-Match": tag}
    )
    assert renamed.status_code == 200, renamed.text
    new_tag = renamed.headers["etag"]
    assert new_tag != tag and renamed.json()["name"] == "Fleet (weekly)"
    # the same document again changes nothing: same ETag
    again = client.put(
        url, json=dashboard(name="Fleet (weekly)"), headers={**alice.headers, "If-Match": new_tag}
    )
    assert again.status_code == 200 and again.headers["etag"] == new_tag

    stale = client.put(
        url, json=dashboard(name="lost update"), headers={**alice.headers, "If-Match": tag}
    )
    problem = assert_problem(stale, 412)
    assert problem["etag"] == new_tag
    assert client.get(url, headers=alice.headers).json()["name"] == "Fleet (weekly)"
    assert_problem(client.delete(url, headers={**alice.headers, "If-Match": tag}), 412)

    second = client.post("/v1/dashboards", json=dashboard(name="Other"), headers=alice.headers)
    page = client.get("/v1/dashboards", params={"limit": 1}, headers=alice.headers).json()
    assert [d["name"] for d in page["items"]] == ["Other"] and page["next_cursor"]
    rest = client.get(
        "/v1/dashboards", params={"cursor": page["next_cursor"]}, headers=alice.headers
    ).json()
    assert [d["name"] for d in rest["items"]] == ["Fleet (weekly)"] and rest["next_cursor"] is None

    deleted = client.delete(url, headers={**alice.headers, "If-Match": new_tag})
    assert deleted.status_code == 204
    assert_problem(client.get(url, headers=alice.headers), 404)
    # without If-Match the request applies unconditionally
    assert client.delete(second.headers["location"], headers=alice.headers).status_code == 204
    assert client.get("/v1/dashboards", headers=alice.headers).json()["items"] == []


def test_another_tenants_dashboard_is_404(client, alice, bob):
    url = client.post("/v1/dashboards", json=dashboard(), headers=alice.headers).headers["location"]
    for method in ("GET", "PUT", "DELETE"):
        assert_problem(client.request(method, url, json=dashboard(), headers=bob.headers), 404)
    assert_problem(client.get(f"{url}/data", headers=bob.headers), 404)
    assert client.get("/v1/dashboards", headers=bob.headers).json()["items"] == []
    assert client.get(url, headers=alice.headers).status_code == 200
    assert_problem(client.get(url), 401)


@pytest.mark.parametrize(
    "change",
    [
        {"name": ""},
        {"panels": [{"title": "x", "chart": "pie", "query": {"kind": "functions"}}]},
        {"panels": [{"title": "x", "chart": "line", "query": {"kind": "sql", "text": "select"}}]},
        {"panels": [{"title": "x", "chart": "line", "query": {"kind": "functions", "bogus": 1}}]},
        {
            "panels": [
                {
                    "title": "x",
                    "chart": "line",
                    "query": {"kind": "usage", "from": "now", "to": "now-1d"},
                }
            ]
        },
        {
            "panels": [
                {
                    "title": "x",
                    "chart": "line",
                    "query": {"kind": "usage", "from": "2026-11-30T00:00:00"},
                }
            ]
        },
        {
            "panels": [
                {"title": "x", "chart": "line", "query": {"kind": "usage", "from": "last week"}}
            ]
        },
        {"panels": [{"title": "x", "chart": "line", "query": {"kind": "usage", "step": "0"}}]},
        {
            "panels": [
                {"title": "x", "chart": "line", "query": {"kind": "usage", "group_by": "tenant"}}
            ]
        },
        {"panels": [{"title": "x", "chart": "line", "query": {"kind": "series"}}]},
        {
            "panels": [
                {"title": "x", "chart": "line", "query": {"kind": "series", "job_id": "nope"}}
            ]
        },
        {
            "panels": [
                {
                    "title": "x",
                    "chart": "table",
                    "query": {"kind": "invocations", "job_id": str(uuid.uuid4()), "limit": 0},
                }
            ]
        },
        {"panels": [{"title": "x", "chart": "stat", "query": {"kind": "functions"}}] * 51},
        {"unknown": True},
    ],
)
def test_invalid_dashboards_are_422_and_nothing_is_stored(client, alice, change):
    assert_problem(
        client.post("/v1/dashboards", json=dashboard(**change), headers=alice.headers), 422
    )
    url = client.post("/v1/dashboards", json=dashboard(), headers=alice.headers).headers["location"]
    assert_problem(client.put(url, json=dashboard(**change), headers=alice.headers), 422)
    assert len(client.get("/v1/dashboards", headers=alice.headers).json()["items"]) == 1


def test_data_resolves_every_panel_as_its_route_does(client, alice, database):
    t0 = datetime.now(UTC) - timedelta(days=2)
    with database.session() as session:
        seeded = seed_job(session, alice.tenant_id, t0, [(512, [2000, 2000]), (1024, [1000])])
        commit(session)
    missing = uuid.uuid4()
    document = dashboard(seeded.job_id)
    document["panels"].append(
        {"title": "Gone", "chart": "line", "query": {"kind": "series", "job_id": str(missing)}}
    )
    created = client.post("/v1/dashboards", json=document, headers=alice.headers)
    data = client.get(f"{created.headers['location']}/data", headers=alice.headers)
    assert data.status_code == 200, data.text
    body = data.json()
    assert body["etag"] == created.headers["etag"]
    usage, functions, series, runs, gone = body["panels"]
    assert [p["title"] for p in body["panels"]] == [p["title"] for p in document["panels"]]
    assert usage["error"] is None and usage["chart"] == "bar"
    assert sum(p["invocations"] for p in usage["data"]["points"]) == 3
    assert {p["group"] for p in usage["data"]["points"]} == {"ce-scaling"}
    assert usage["data"]["step_s"] == 86400
    assert functions["data"]["items"] == []  # its runs are 2 days old; the panel looks at 1
    direct = client.get(f"/v1/jobs/{seeded.job_id}/series", headers=alice.headers).json()
    assert series["data"] == direct
    assert series["data"]["cost"][-1]["cumulative_usd"] == pytest.approx(float(seeded.total))
    assert len(runs["data"]["items"]) == 2 and runs["data"]["next_cursor"]
    assert gone["data"] is None and gone["error"]["status"] == 404
    assert str(missing) in gone["error"]["detail"]


def test_data_of_another_tenants_job_is_a_panel_error(client, alice, bob, database):
    with database.session() as session:
        theirs = seed_job(session, bob.tenant_id, datetime.now(UTC), [(512, [1000])])
        commit(session)
    created = client.post("/v1/dashboards", json=dashboard(theirs.job_id), headers=alice.headers)
    panels = client.get(f"{created.headers['location']}/data", headers=alice.headers).json()[
        "panels"
    ]
    assert panels[2]["error"]["status"] == 404 and panels[2]["data"] is None
    assert panels[3]["error"]["status"] == 404
