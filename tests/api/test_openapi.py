"""The published OpenAPI document: what a client generator reads.

Stable operation ids, every error a Problem, the headers the service really sends, and the job
spec's rules in the request schema.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from tests.api.helpers import HPO_SPEC, TRAINING_SPEC, spec

# Pinned: a generated client's method names come from these, so changing one breaks its users.
OPERATION_IDS = {
    ("get", "/healthz"): "getLiveness",
    ("get", "/readyz"): "getReadiness",
    ("get", "/metrics"): "getMetrics",
    ("post", "/v1/jobs"): "submitJob",
    ("get", "/v1/jobs"): "listJobs",
    ("get", "/v1/jobs/{job_id}"): "getJob",
    ("post", "/v1/jobs/{job_id}/cancel"): "cancelJob",
    ("get", "/v1/jobs/{job_id}/cost"): "getJobCost",
    ("get", "/v1/jobs/{job_id}/timeline"): "getJobTimeline",
    ("get", "/v1/jobs/{job_id}/invocations"): "listJobInvocations",
    ("get", "/v1/jobs/{job_id}/series"): "getJobSeries",
    ("get", "/v1/jobs/{job_id}/events"): "streamJobEvents",
    ("get", "/v1/usage"): "getUsage",
    ("get", "/v1/functions"): "listFunctions",
    ("get", "/v1/webhook"): "getWebhook",
    ("put", "/v1/webhook"): "putWebhook",
    ("delete", "/v1/webhook"): "deleteWebhook",
    ("get", "/v1/webhook/deliveries"): "listWebhookDeliveries",
    ("post", "/v1/dashboards"): "createDashboard",
    ("get", "/v1/dashboards"): "listDashboards",
    ("get", "/v1/dashboards/{dashboard_id}"): "getDashboard",
    ("put", "/v1/dashboards/{dashboard_id}"): "replaceDashboard",
    ("delete", "/v1/dashboards/{dashboard_id}"): "deleteDashboard",
    ("get", "/v1/dashboards/{dashboard_id}/data"): "getDashboardData",
}
PROBLEM = {"$ref": "#/components/schemas/Problem"}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def document(client):
    return client.get("/openapi.json").json()


def operations(document):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def test_the_document_is_valid_openapi(document):
    validate(document)
    assert document["openapi"].startswith("3.1")


def test_every_operation_has_its_stable_camel_case_id(document):
    ids = {(method, path): op.get("operationId") for method, path, op in operations(document)}
    assert ids == OPERATION_IDS
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z]*)*", name) for name in ids.values())
    assert len(set(ids.values())) == len(ids)


def test_every_error_response_is_a_problem_document(document):
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            assert response["content"] == {"application/problem+json": {"schema": PROBLEM}}, (
                method,
                path,
                status,
            )
            assert response["description"], (method, path, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_the_problem_schema_carries_the_validation_errors(document):
    schemas = document["components"]["schemas"]
    problem = schemas["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "instance"}
    assert problem["properties"]["errors"]["items"] == {
        "$ref": "#/components/schemas/ValidationIssue"
    }
    assert set(schemas["ValidationIssue"]["required"]) == {"loc", "msg", "type"}


def test_each_route_declares_the_statuses_it_can_return(document):
    paths = document["paths"]

    def statuses(path, method):
        return set(paths[path][method]["responses"])

    v1 = [(m, p, op) for m, p, op in operations(document) if p.startswith("/v1/")]
    assert all({"401", "403"} <= set(op["responses"]) for _, _, op in v1)
    with_body = {(m, p) for m, p, op in v1 if "requestBody" in op}
    assert with_body == {
        ("post", "/v1/jobs"),
        ("put", "/v1/webhook"),
        ("post", "/v1/dashboards"),
        ("put", "/v1/dashboards/{dashboard_id}"),
    }
    for method, path, operation in v1:
        assert ({"408", "413"} <= set(operation["responses"])) == ((method, path) in with_body)
    assert statuses("/v1/jobs", "post") == {"201", "400", "401", "403", "408", "409", "413", "422"}
    assert statuses("/v1/jobs/{job_id}/cancel", "post") == {
        "200",
        "202",
        "401",
        "403",
        "404",
        "409",
        "422",
    }
    assert "404" not in statuses("/v1/jobs", "get")
    assert statuses("/readyz", "get") == {"200", "503"}
    assert statuses("/v1/dashboards/{dashboard_id}", "put") >= {"412", "404"}


def test_headers_are_declared(document):
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            assert "X-Request-Id" in response["headers"], (method, path, status)
    submitted = document["paths"]["/v1/jobs"]["post"]["responses"]["201"]["headers"]
    assert {"Location", "Idempotent-Replayed"} <= set(submitted)
    unauthenticated = document["paths"]["/v1/jobs"]["get"]["responses"]["401"]["headers"]
    assert "WWW-Authenticate" in unauthenticated


def test_the_headers_declared_are_the_headers_sent(client, alice):
    created = client.post(
        "/v1/jobs", json=HPO_SPEC, headers={**alice.headers, "Idempotency-Key": "k"}
    )
    replayed = client.post(
        "/v1/jobs", json=HPO_SPEC, headers={**alice.headers, "Idempotency-Key": "k"}
    )
    assert created.status_code == replayed.status_code == 201
    assert created.headers["location"] == f"/v1/jobs/{created.json()['id']}"
    assert "idempotent-replayed" not in created.headers
    assert replayed.headers["idempotent-replayed"] == "true"
    assert created.headers["x-request-id"]
    unauthenticated = client.get("/v1/jobs")
    assert unauthenticated.headers["www-authenticate"] == "Bearer"


def test_the_job_spec_is_published_as_a_union_discriminated_by_kind(document):
    schemas = document["components"]["schemas"]
    assert schemas["JobSpec"]["discriminator"]["propertyName"] == "kind"
    hpo, training = schemas["HpoJobSpec"], schemas["TrainingJobSpec"]
    assert "hpo" in hpo["required"] and "training" not in hpo["properties"]
    assert "training" in training["required"] and "hpo" not in training["properties"]
    assert hpo["properties"]["policy"]["discriminator"]["propertyName"] == "name"
    function = schemas["Workload"]["properties"]["function"]
    assert re.search(function["pattern"], "builtin:mlp")
    assert re.search(function["pattern"], "arn:aws:lambda:eu-west-1:123456789012:function:f:live")
    assert not re.search(function["pattern"], "no spaces allowed")
    forms = schemas["Distribution"]["oneOf"]
    assert [form["required"] for form in forms] == [
        ["uniform"],
        ["log_uniform"],
        ["int_uniform"],
        ["choice"],
    ]
    assert all(form["additionalProperties"] is False for form in forms)


@pytest.mark.parametrize(
    "document",
    [
        spec(hpo__search_space={"lr": {"uniform": None}}),
        spec(hpo__search_space={"lr": {"log_uniform": None}}),
        spec(hpo__search_space={"hidden": {"int_uniform": None}}),
        spec(TRAINING_SPEC, training__params={"lr": None}),
    ],
    ids=["uniform", "log_uniform", "int_uniform", "param"],
)
def test_null_where_the_schema_says_no_null_is_a_422(client, alice, document):
    response = client.post("/v1/jobs", json=document, headers=alice.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_the_shipped_examples_are_valid_under_the_published_schema(document):
    """The schema is no stricter than the service on the specs we ship (and the test specs)."""
    body = document["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]
    validator = Draft202012Validator({**body["schema"], "components": document["components"]})
    examples = sorted((ROOT / "examples").glob("*.json"))
    assert examples
    for example in [*(json.loads(path.read_text()) for path in examples), HPO_SPEC, TRAINING_SPEC]:
        errors = [error.message for error in validator.iter_errors(example)]
        assert not errors, (example["name"], errors)
    broken = spec(
        workload={"function": "builtin:logreg"}, hpo__search_space={"hidden": {"choice": [8]}}
    )
    assert not validator.is_valid(broken)  # logreg takes no `hidden`
