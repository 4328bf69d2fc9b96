"""`"architecture": "auto"` over HTTP: ce-scaling takes it, a policy that cannot decide an
architecture is told so (422), and the published schema says both."""

from __future__ import annotations

from tests.api.helpers import TRAINING_SPEC, assert_problem, spec


def test_auto_is_accepted_with_ce_scaling_and_kept_in_the_spec(client, alice):
    document = spec(workload={"function": "builtin:mlp", "architecture": "auto"})
    created = client.post("/v1/jobs", json=document, headers=alice.headers)
    assert created.status_code == 201, created.text
    assert created.json()["spec"]["workload"]["architecture"] == "auto"
    assert created.json()["policy"] == "ce-scaling"


def test_auto_with_the_default_policy_is_accepted(client, alice):
    document = spec(workload={"function": "builtin:mlp", "architecture": "auto"})
    del document["policy"]
    created = client.post("/v1/jobs", json=document, headers=alice.headers)
    assert created.status_code == 201, created.text


def test_auto_with_a_static_policy_is_a_422_naming_the_field(client, alice):
    document = spec(TRAINING_SPEC, workload={"function": "builtin:mlp", "architecture": "auto"})
    assert document["policy"]["name"] == "static"
    body = assert_problem(client.post("/v1/jobs", json=document, headers=alice.headers), 422)
    assert body["errors"][0]["loc"] == ["body", "workload", "architecture"]
    assert "ce-scaling" in body["detail"] and "static" in body["detail"]


def test_auto_with_power_tuning_is_a_422(client, alice):
    document = spec(
        workload={"function": "builtin:mlp", "architecture": "auto"},
        policy={"name": "power-tuning"},
    )
    body = assert_problem(client.post("/v1/jobs", json=document, headers=alice.headers), 422)
    assert "power-tuning" in body["detail"]


def test_default_architecture_stays_x86_64(client, alice):
    created = client.post("/v1/jobs", json=spec(), headers=alice.headers)
    assert created.status_code == 201
    assert created.json()["spec"]["workload"]["architecture"] == "x86_64"


def test_schema_publishes_auto_and_its_policy_rule(client):
    schema = client.get("/openapi.json").json()
    text = str(schema)
    assert "'auto'" in text
    assert "Architecture 'auto' needs the ce-scaling policy" in text
