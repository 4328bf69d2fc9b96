"""Sample specs and small assertions shared by the API tests."""

from __future__ import annotations

import copy
from typing import Any

HPO_SPEC: dict[str, Any] = {
    "name": "digits-mlp-hpo",
    "kind": "hpo",
    "workload": {"function": "builtin:mlp", "dataset": "builtin:digits"},
    "hpo": {
        "search_space": {
            "lr": {"log_uniform": [0.0001, 0.1]},
            "hidden": {"choice": [32, 64, 256]},
        },
        "trials": 27,
        "eta": 3,
        "min_epochs": 1,
        "max_epochs": 27,
    },
    "qos": {"deadline_s": 900},
    "budget": {"max_cost_usd": 2.0},
    "policy": {"name": "ce-scaling"},
}

TRAINING_SPEC: dict[str, Any] = {
    "name": "digits-training",
    "kind": "training",
    "workload": {"function": "builtin:mlp"},
    "training": {"workers": 4, "max_epochs": 10, "target_loss": 0.2},
    "qos": {"deadline_s": 600},
    "policy": {"name": "static", "memory_mb": 1024},
}


def spec(base: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """A deep copy of ``base`` (HPO by default) with dotted-path changes, e.g. hpo__eta=1."""
    document = copy.deepcopy(base or HPO_SPEC)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = document
        for part in parents:
            node = node[part]
        if value is _DELETE:
            del node[leaf]
        else:
            node[leaf] = value
    return document


_DELETE = object()
DELETE = _DELETE


def assert_problem(response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"]
    return body
