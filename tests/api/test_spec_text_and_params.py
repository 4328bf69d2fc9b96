"""Input a built-in cannot run, or Postgres cannot store, is a 422 at submit naming the field.

Sent as raw JSON text through the app on the real Postgres: a lone surrogate (``"\\ud800"``)
used to pass validation and fail as a 500 on insert; a hyperparameter the workload does not take
used to be accepted and fail only once its invocations were billed.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from service.models import Job
from service.workloads.classifiers import LogisticRegression, MultilayerPerceptron
from service.workloads.params import BUILTIN_PARAMS, accepted
from tests.api.helpers import HPO_SPEC, TRAINING_SPEC, assert_problem, spec

SURROGATE = "\\ud800"  # the six characters of the JSON escape, as an attacker sends them


def job_count(session) -> int:
    return session.scalar(select(func.count()).select_from(Job))


def post_raw(client, alice, document: dict, replace: dict[str, str]):
    """``document`` as JSON text, with each placeholder string replaced by raw JSON text."""
    text = json.dumps(document)
    for placeholder, raw in replace.items():
        assert placeholder in text
        text = text.replace(placeholder, raw)
    return client.post(
        "/v1/jobs",
        content=text.encode(),
        headers={**alice.headers, "Content-Type": "application/json"},
    )


@pytest.mark.parametrize(
    ("document", "where"),
    [
        (
            spec(hpo__search_space={"hidden": {"choice": [32, "@X@"]}}),
            "hpo.search_space.hidden.choice.1",
        ),
        (spec(TRAINING_SPEC, training__params={"hidden": "@X@"}), "training.params.hidden"),
        (spec(TRAINING_SPEC, training__params={"@X@": 1}), "training.params.\\ud800"),
        (spec(hpo__search_space={"@X@": {"choice": [1]}}), "hpo.search_space.\\ud800"),
        (spec(name="job @X@"), "name"),
        (spec(workload={"function": "@X@"}), "workload.function"),
        (spec(workload={"function": "builtin:mlp", "dataset": "s3://b/@X@"}), "workload.dataset"),
        (spec(**{"@X@": 1}), "\\ud800"),  # an unknown field's name
        (spec(policy={"name": "@X@"}), "policy.name"),
    ],
    ids=[
        "choice",
        "params-value",
        "params-key",
        "search-space-key",
        "name",
        "function",
        "dataset",
        "unknown-key",
        "policy-name",
    ],
)
def test_a_lone_surrogate_anywhere_is_a_422_naming_the_field(
    client, alice, session, document, where
):
    response = post_raw(client, alice, document, {"@X@": SURROGATE})
    body = assert_problem(response, 422)
    assert body["detail"].startswith(f"{where}: "), body["detail"]
    assert "surrogate" in body["detail"]
    assert body["errors"][0]["loc"] == ["body", *where.split(".")]
    assert job_count(session) == 0


def test_a_valid_surrogate_pair_is_text_and_is_stored(client, alice):
    # "\ud83d\ude80" is one character (a rocket): JSON's way to write it, not an error.
    response = post_raw(client, alice, spec(name="launch @X@"), {"@X@": "\\ud83d\\ude80"})
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "launch \U0001f680"


@pytest.mark.parametrize(
    ("document", "name"),
    [
        (spec(TRAINING_SPEC, training__params={"epochs": 3}), "epochs"),
        (spec(TRAINING_SPEC, training__params={"lr": 0.1, "act": "relu"}), "act"),
        (
            spec(
                hpo__search_space={"lr": {"log_uniform": [0.001, 0.1]}, "act": {"choice": ["relu"]}}
            ),
            "act",
        ),
        (spec(hpo__search_space={"epochs": {"int_uniform": [1, 9]}}), "epochs"),
    ],
    ids=["training-epochs", "training-act", "search-space-act", "search-space-epochs"],
)
def test_a_parameter_the_builtin_does_not_take_is_a_422_listing_those_it_does(
    client, alice, session, document, name
):
    response = client.post("/v1/jobs", json=document, headers=alice.headers)
    body = assert_problem(response, 422)
    section = "training.params" if "training" in document else "hpo.search_space"
    assert body["detail"].startswith(f"{section}.{name}: builtin:mlp takes no parameter '{name}'")
    assert body["detail"].endswith("it takes " + ", ".join(accepted("builtin:mlp")))
    assert body["errors"][0]["loc"] == ["body", *section.split("."), name]
    assert job_count(session) == 0


@pytest.mark.parametrize(
    ("document", "where", "reason"),
    [
        (
            spec(TRAINING_SPEC, training__params={"lr": "fast"}),
            "training.params.lr",
            "not of type 'number'",
        ),
        (spec(TRAINING_SPEC, training__params={"lr": 0}), "training.params.lr", "minimum of 0"),
        (
            spec(TRAINING_SPEC, training__params={"batch_size": 0.5}),
            "training.params.batch_size",
            "not of type 'integer'",
        ),
        (
            spec(TRAINING_SPEC, training__params={"hidden": "20000"}),
            "training.params.hidden",
            "at most 16384 wide",
        ),
        (
            spec(hpo__search_space={"batch_size": {"uniform": [8, 64]}}),
            "hpo.search_space.batch_size",
            "takes integers",
        ),
        (
            spec(hpo__search_space={"lr": {"uniform": [-1, 1]}}),
            "hpo.search_space.lr",
            "minimum of 0",
        ),
        (
            spec(hpo__search_space={"l2": {"log_uniform": [0.001, 2]}}),
            "hpo.search_space.l2",
            "maximum of 1",
        ),
        (
            spec(hpo__search_space={"hidden": {"choice": [32, "64,x"]}}),
            "hpo.search_space.hidden",
            "does not match",
        ),
        (
            spec(hpo__search_space={"hidden": {"int_uniform": [16, 99999]}}),
            "hpo.search_space.hidden",
            "maximum of 16384",
        ),
    ],
    ids=[
        "lr-string",
        "lr-zero",
        "batch-fraction",
        "hidden-too-wide",
        "uniform-for-integer",
        "range-past-bound",
        "log-range-past-bound",
        "choice-bad-value",
        "int-range-past-bound",
    ],
)
def test_a_value_the_builtin_cannot_use_is_a_422_naming_the_parameter(
    client, alice, session, document, where, reason
):
    response = client.post("/v1/jobs", json=document, headers=alice.headers)
    body = assert_problem(response, 422)
    assert body["detail"].startswith(f"{where}: "), body["detail"]
    assert reason in body["detail"], body["detail"]
    assert job_count(session) == 0


def test_every_parameter_and_form_a_builtin_takes_is_accepted(client, alice):
    space = {
        "lr": {"log_uniform": [0.0001, 0.5]},
        "l2": {"uniform": [0, 0.01]},
        "batch_size": {"int_uniform": [16, 128]},
        "seed": {"choice": [0, 1]},
        "hidden": {"choice": [32, "64,32"]},
    }
    created = client.post("/v1/jobs", json=spec(hpo__search_space=space), headers=alice.headers)
    assert created.status_code == 201, created.text
    params = {"lr": 0.1, "l2": 0, "batch_size": 32, "seed": 7, "hidden": "64,32"}
    training = spec(TRAINING_SPEC, training__params=params)
    assert client.post("/v1/jobs", json=training, headers=alice.headers).status_code == 201
    logreg = spec(
        TRAINING_SPEC, workload={"function": "builtin:logreg"}, training__params={"lr": 1}
    )
    assert client.post("/v1/jobs", json=logreg, headers=alice.headers).status_code == 201
    # logreg has no hidden layers: the same parameter is refused there.
    wrong = spec(HPO_SPEC, workload={"function": "builtin:logreg"})
    body = assert_problem(client.post("/v1/jobs", json=wrong, headers=alice.headers), 422)
    assert "hpo.search_space.hidden: builtin:logreg takes no parameter 'hidden'" in body["detail"]


def test_your_own_function_s_params_are_not_checked(client, alice):
    """A bring-your-own function declares no schema to the control plane: its params pass."""
    document = spec(
        TRAINING_SPEC,
        workload={"function": "my-ridge"},
        training__params={"epochs": 3, "act": "relu"},
    )
    assert client.post("/v1/jobs", json=document, headers=alice.headers).status_code == 201
    own = spec(workload={"function": "my-ridge"}, hpo__search_space={"act": {"choice": ["relu"]}})
    assert client.post("/v1/jobs", json=own, headers=alice.headers).status_code == 201


def test_the_handlers_check_params_against_the_same_schemas():
    """One source of truth: what submit checks is what the handler validates."""
    assert LogisticRegression.params_schema is BUILTIN_PARAMS["builtin:logreg"]
    assert MultilayerPerceptron.params_schema is BUILTIN_PARAMS["builtin:mlp"]
    from service.workloads.contract import InvalidEvent
    from service.workloads.handlers import MLP
    from service.workloads.sdk import _validated_params

    with pytest.raises(InvalidEvent, match="epochs"):
        _validated_params(MLP, {"epochs": 3})
    assert _validated_params(MLP, {"hidden": "64,32"})["hidden"] == [64, 32]
