"""The handler contract: shipped schemas, malformed events, and response shape."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from service.workloads.contract import (
    EVENT_SCHEMA,
    RESPONSE_SCHEMA,
    checkpoint_target,
    load_schema,
    schema_errors,
)
from service.workloads.handlers import logreg_trial, mlp_training_worker, mlp_trial


@pytest.mark.parametrize("name", [EVENT_SCHEMA, RESPONSE_SCHEMA])
def test_schemas_are_valid_draft_2020_12(name):
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_a_valid_event_passes_the_schema(make_event):
    assert schema_errors(make_event(), EVENT_SCHEMA) is None
    assert schema_errors(make_event(kind="training"), EVENT_SCHEMA) is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"attempt": 0}, "$.attempt"),
        ({"contract": "cescale.handler/2"}, "$.contract"),
        ({"kind": "inference"}, "$.kind"),
        ({"job_id": "../etc"}, "$.job_id"),
        ({"dataset": "http://example.com/x.npz"}, "$.dataset"),
        ({"checkpoint_out": "/tmp/relative"}, "$.checkpoint_out"),
        ({"epochs_to": 3}, "epochs_to"),
        ({"epoch_from": 2, "epoch_to": 1, "checkpoint_in": "file:///x.npz"}, "epoch_to"),
        ({"epoch_from": 1, "epoch_to": 2}, "no checkpoint_in"),
        ({"params": {"lr": "fast"}}, "$.params.lr"),
        ({"params": {"learning_rate": 0.1}}, "learning_rate"),
    ],
)
def test_malformed_events_get_a_handled_invalid_event_payload(make_event, change, expected):
    event = make_event(**change)
    response = logreg_trial(event, None)
    assert set(response) == {"contract", "error"}
    assert response["error"]["type"] == "InvalidEvent"
    assert expected in response["error"]["message"]
    assert schema_errors(response, RESPONSE_SCHEMA) is None


@pytest.mark.parametrize("event", [None, [], "event", 3])
def test_a_non_object_event_is_refused(event):
    assert logreg_trial(event, None)["error"]["type"] == "InvalidEvent"


def test_a_missing_field_is_named(make_event):
    event = make_event()
    del event["store"]
    assert "'store' is a required property" in logreg_trial(event, None)["error"]["message"]


def test_training_events_need_worker_fields_and_a_valid_worker(make_event):
    event = make_event(kind="training")
    del event["workers"]
    assert (
        "'workers' is a required property" in mlp_training_worker(event, None)["error"]["message"]
    )
    bad_worker = mlp_training_worker(make_event(kind="training", worker=3, workers=3), None)
    assert "worker 3 is not in 0..2" in bad_worker["error"]["message"]
    later_round = mlp_training_worker(make_event(kind="training", round=2), None)
    assert "needs the model of round 1" in later_round["error"]["message"]


def test_single_kind_handlers_refuse_the_other_kind(make_event):
    response = mlp_trial(make_event(kind="training"), None)
    assert response["error"] == {
        "type": "InvalidEvent",
        "message": "this handler runs kind 'hpo' events, got 'training'",
    }


def test_a_successful_response_matches_the_response_schema(make_event):
    response = logreg_trial(make_event(), None)
    assert schema_errors(response, RESPONSE_SCHEMA) is None
    assert response["contract"] == "cescale.handler/1"
    assert response["replayed"] is False
    assert response["epochs_done"] == 1
    assert response["peak_memory_mb"] > 10
    assert 0.0 <= response["metrics"]["score"] <= 1.0


def test_checkpoint_out_is_an_exact_uri_or_a_prefix(make_event):
    assert checkpoint_target(make_event(checkpoint_out="s3://b/x/model.npz")) == (
        "s3://b/x/model.npz"
    )
    assert checkpoint_target(make_event(checkpoint_out="s3://b/ckpt/", attempt=2)) == (
        "s3://b/ckpt/job-1/task-1/attempt-2.npz"
    )
