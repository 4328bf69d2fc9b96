"""Submitting and reading jobs over HTTP, with tenants kept apart."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from sqlalchemy import func, select

from service.models import Job
from tests.api.helpers import HPO_SPEC, TRAINING_SPEC, assert_problem, spec


def job_count(session) -> int:
    return session.scalar(select(func.count()).select_from(Job))


def test_submit_returns_201_with_location_and_get_returns_it(client, alice):
    created = client.post("/v1/jobs", json=HPO_SPEC, headers=alice.headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["location"] == f"/v1/jobs/{body['id']}"
    assert body["status"] == "pending"
    assert body["kind"] == "hpo" and body["policy"] == "ce-scaling"
    assert body["deadline_s"] == 900 and body["max_cost_usd"] == 2.0
    assert body["spec"]["hpo"]["search_space"]["lr"] == {"log_uniform": [0.0001, 0.1]}

    fetched = client.get(created.headers["location"], headers=alice.headers)
    assert fetched.status_code == 200
    assert fetched.json() == body


def test_training_job_with_static_policy(client, alice):
    created = client.post("/v1/jobs", json=TRAINING_SPEC, headers=alice.headers)
    assert created.status_code == 201, created.text
    assert created.json()["spec"]["policy"] == {"name": "static", "memory_mb": 1024}
    assert created.json()["spec"]["training"]["workers"] == 4


def test_policy_defaults_to_ce_scaling(client, alice):
    document = spec()
    del document["policy"]
    created = client.post("/v1/jobs", json=document, headers=alice.headers)
    assert created.status_code == 201
    assert created.json()["policy"] == "ce-scaling"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic YWxhZGRpbjpvcGVu"}],
    ids=["missing", "unknown-key", "not-bearer"],
)
def test_without_a_valid_key_every_route_is_401(client, alice, session, headers):
    job_id = client.post("/v1/jobs", json=HPO_SPEC, headers=alice.headers).json()["id"]
    for method, path in [
        ("POST", "/v1/jobs"),
        ("GET", "/v1/jobs"),
        ("GET", f"/v1/jobs/{job_id}"),
        ("POST", f"/v1/jobs/{job_id}/cancel"),
        ("GET", f"/v1/jobs/{job_id}/cost"),
        ("GET", f"/v1/jobs/{job_id}/timeline"),
    ]:
        response = client.request(method, path, json=HPO_SPEC, headers=headers)
        assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
    assert job_count(session) == 1


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer cesk_wrong"}], ids=["none", "bad"]
)
def test_without_a_valid_key_bad_input_is_still_401(client, session, headers):
    for method, path, body in [
        ("POST", "/v1/jobs", b'{"name": '),  # malformed JSON
        ("POST", "/v1/jobs", b"\xff\xfe{}"),  # not UTF-8
        ("POST", "/v1/jobs", b'{"kind": "nope"}'),
        ("GET", "/v1/jobs?limit=0", None),
        ("GET", "/v1/jobs/not-a-uuid", None),
    ]:
        response = client.request(
            method, path, content=body, headers={**headers, "Content-Type": "application/json"}
        )
        assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
    assert job_count(session) == 0


def test_another_tenants_job_is_404_on_every_route(client, alice, bob):
    job_id = client.post("/v1/jobs", json=HPO_SPEC, headers=alice.headers).json()["id"]
    for method, path in [
        ("GET", f"/v1/jobs/{job_id}"),
        ("POST", f"/v1/jobs/{job_id}/cancel"),
        ("GET", f"/v1/jobs/{job_id}/cost"),
        ("GET", f"/v1/jobs/{job_id}/timeline"),
    ]:
        assert_problem(client.request(method, path, headers=bob.headers), 404)
    assert client.get("/v1/jobs", headers=bob.headers).json()["items"] == []
    # ... and bob's failed cancel did not touch it
    assert client.get(f"/v1/jobs/{job_id}", headers=alice.headers).json()["status"] == "pending"


def test_unknown_job_and_malformed_id(client, alice):
    assert_problem(client.get(f"/v1/jobs/{uuid.uuid4()}", headers=alice.headers), 404)
    assert_problem(client.get("/v1/jobs/not-a-uuid", headers=alice.headers), 422)


INVALID = {
    "eta-1": spec(hpo__eta=1),
    "negative-deadline": spec(qos__deadline_s=-5),
    "zero-deadline": spec(qos__deadline_s=0),
    "unknown-policy": spec(policy={"name": "yolo"}),
    "static-without-memory": spec(policy={"name": "static"}),
    "static-memory-too-small": spec(policy={"name": "static", "memory_mb": 64}),
    "static-memory-too-large": spec(policy={"name": "static", "memory_mb": 20000}),
    "zero-trials": spec(hpo__trials=0),
    "negative-budget": spec(budget={"max_cost_usd": -1}),
    "unknown-kind": spec(kind="inference"),
    "hpo-without-section": spec(hpo=None),
    "training-with-hpo-section": spec(kind="training"),
    "bad-distribution": spec(hpo__search_space={"lr": {"normal": [0, 1]}}),
    "log-uniform-zero": spec(hpo__search_space={"lr": {"log_uniform": [0, 1]}}),
    "reversed-bounds": spec(hpo__search_space={"lr": {"uniform": [1, 0]}}),
    "empty-choice": spec(hpo__search_space={"hidden": {"choice": []}}),
    # a form given null was taken for no form at all (it was a 201)
    "null-uniform": spec(hpo__search_space={"lr": {"uniform": None}}),
    "null-choice": spec(hpo__search_space={"hidden": {"choice": None}}),
    "empty-search-space": spec(hpo__search_space={}),
    "max-below-min-epochs": spec(hpo__min_epochs=5, hpo__max_epochs=3),
    "unknown-builtin": spec(workload={"function": "builtin:resnet"}),
    "bad-function-name": spec(workload={"function": "no spaces allowed"}),
    "bad-dataset": spec(workload={"function": "builtin:mlp", "dataset": "http://x"}),
    "unknown-field": spec(colour="blue"),
    "timeout-too-long": spec(workload={"function": "builtin:mlp", "timeout_s": 901}),
    "zero-workers": spec(TRAINING_SPEC, training__workers=0),
    "blank-name": spec(name="   "),
    "not-an-object": [1, 2, 3],
    # Python's JSON parser reads NaN and Infinity; Postgres cannot store them (it was a 500)
    "nan-deadline": spec(qos__deadline_s=float("nan")),
    "infinite-bound": spec(hpo__search_space={"lr": {"uniform": [0, float("inf")]}}),
    "nan-choice": spec(hpo__search_space={"lr": {"choice": [float("nan")]}}),
    "nan-param": spec(TRAINING_SPEC, training__params={"lr": float("nan")}),
    # Postgres refuses NUL in text and JSON (it was a 500)
    "nul-in-name": spec(name="a\x00b"),
    "nul-in-choice": spec(hpo__search_space={"act": {"choice": ["relu\x00"]}}),
    "nul-in-dataset": spec(workload={"function": "builtin:mlp", "dataset": "s3://b/k\x00"}),
    "bad-param-name": spec(TRAINING_SPEC, training__params={"a\x00": 1}),
    "newline-after-function": spec(workload={"function": "my-function\n"}),
    # wrong JSON types are reported, not coerced
    "boolean-trials": spec(hpo__trials=True),
    "string-eta": spec(hpo__eta="3"),
    "string-deadline": spec(qos__deadline_s="900"),
    "string-memory": spec(policy={"name": "static", "memory_mb": "1024"}),
    "string-hyperband": spec(hpo__hyperband="yes"),
}


@pytest.mark.parametrize("document", INVALID.values(), ids=INVALID.keys())
def test_invalid_spec_is_422_problem_and_writes_nothing(client, alice, session, document):
    # json.dumps writes NaN and Infinity as the bare tokens a careless client would send
    response = client.post(
        "/v1/jobs",
        content=json.dumps(document),
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    body = assert_problem(response, 422)
    assert body["errors"], body
    assert job_count(session) == 0


def test_integral_numbers_are_accepted_where_a_float_is_expected(client, alice):
    created = client.post(
        "/v1/jobs",
        json=spec(qos__deadline_s=900, hpo__search_space={"l2": {"uniform": [0, 1]}}),
        headers=alice.headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["spec"]["hpo"]["search_space"]["l2"] == {"uniform": [0.0, 1.0]}


def test_malformed_json_is_422(client, alice, session):
    response = client.post(
        "/v1/jobs",
        content=b'{"name": "x", "kind": ',
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    body = assert_problem(response, 422)
    assert "not valid JSON" in body["detail"]
    assert job_count(session) == 0


def test_validation_problem_names_the_field(client, alice):
    body = assert_problem(
        client.post("/v1/jobs", json=spec(hpo__eta=1), headers=alice.headers), 422
    )
    assert body["errors"][0]["loc"] == ["body", "hpo", "eta"]
    assert "hpo.eta" in body["detail"]


def test_a_bad_choice_value_is_one_plain_error(client, alice):
    document = spec(hpo__search_space={"act": {"choice": ["relu", "tanh\n", [1]]}})
    body = assert_problem(client.post("/v1/jobs", json=document, headers=alice.headers), 422)
    assert [e["loc"][-1] for e in body["errors"]] == ["str", "2"]
    assert "control characters" in body["detail"]
    assert "a number, a string or a boolean" in body["detail"]


def test_list_paginates_newest_first_without_gaps(client, alice):
    ids = [
        client.post("/v1/jobs", json=spec(name=f"job-{i}"), headers=alice.headers).json()["id"]
        for i in range(5)
    ]
    seen, cursor = [], None
    for _ in range(10):
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/jobs", params=params, headers=alice.headers).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))


def test_list_filters_by_status_and_kind(client, alice):
    hpo = client.post("/v1/jobs", json=HPO_SPEC, headers=alice.headers).json()["id"]
    training = client.post("/v1/jobs", json=TRAINING_SPEC, headers=alice.headers).json()["id"]
    client.post(f"/v1/jobs/{hpo}/cancel", headers=alice.headers)

    def ids(**params):
        response = client.get("/v1/jobs", params=params, headers=alice.headers)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert ids(kind="training") == [training]
    assert ids(status="cancelled") == [hpo]
    assert set(ids(status=["cancelled", "pending"])) == {hpo, training}
    assert ids(status="running") == []
    assert ids(status="pending", kind="hpo") == []


def test_list_rejects_bad_filters_and_cursor(client, alice):
    assert_problem(client.get("/v1/jobs?status=sleeping", headers=alice.headers), 422)
    assert_problem(client.get("/v1/jobs?limit=0", headers=alice.headers), 422)
    assert_problem(client.get("/v1/jobs?cursor=garbage!!", headers=alice.headers), 400)


@pytest.mark.parametrize(
    "created_at",
    ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "2020-01-01T00:00:00"],
    ids=["past-year-9999", "before-year-1", "naive"],
)
def test_a_forged_cursor_is_400_not_500(client, alice, created_at):
    raw = f"{created_at}|{uuid.uuid4()}".encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert_problem(client.get(f"/v1/jobs?cursor={cursor}", headers=alice.headers), 400)


def test_unknown_route_is_problem_json(client):
    assert_problem(client.get("/v1/nothing-here"), 404)


def test_openapi_and_docs_are_served(client):
    schema = client.get("/openapi.json").json()
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/cost"} <= set(schema["paths"])
    assert client.get("/docs").status_code == 200
