"""Bring your own function: a multiclass linear SVM on the cescale handler contract.

Only the machine learning is written here — a Crammer-Singer hinge loss trained by minibatch
SGD. The SDK supplies the rest: event validation, checkpoints and exact resume, shards and
model averaging for data-parallel rounds, idempotent re-delivery and the response format.

Run it locally (from the repository root):

    cescale profile examples.byo_function.handler:handler --dataset builtin:digits --json

Deploy it as a Lambda function whose Handler setting is ``handler.handler`` (see README.md).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from service.workloads.datasets import Dataset
from service.workloads.sdk import Workload, make_handler


class LinearSVM(Workload):
    name = "example:linear-svm"
    # Hyperparameters as JSON Schema; "default" fills in what an event leaves out.
    params_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "lr": {"type": "number", "exclusiveMinimum": 0, "default": 0.05},
            "c": {"type": "number", "minimum": 0, "default": 1e-3},
            "batch_size": {"type": "integer", "minimum": 1, "default": 64},
            "seed": {"type": "integer", "minimum": 0, "default": 0},
        },
    }

    def describe(self, params: dict[str, Any], data: Dataset) -> dict[str, Any]:
        return {"features": data.n_features, "classes": data.n_classes}

    def init_model(self, params: dict[str, Any], data: Dataset, rng: np.random.Generator):
        return {
            "w": np.zeros((data.n_features, data.n_classes), dtype=np.float32),
            "b": np.zeros(data.n_classes, dtype=np.float32),
        }

    def train_epoch(self, model, data: Dataset, epoch: int, params: dict[str, Any], rng):
        x, y = data.x_train, data.y_train
        order = rng.permutation(len(y))
        total = 0.0
        for start in range(0, len(order), params["batch_size"]):
            rows = order[start : start + params["batch_size"]]
            xb, yb = x[rows], y[rows]
            margins, violated = self._margins(model, xb, yb)
            total += float(margins.sum())
            # Subgradient: push the true class up and the most violating class down.
            grad = np.zeros((len(yb), model["b"].shape[0]), dtype=np.float32)
            hit = np.flatnonzero(violated[0])
            grad[hit, violated[1][hit]] += 1.0
            grad[hit, yb[hit]] -= 1.0
            grad /= len(yb)
            model["w"] -= params["lr"] * (xb.T @ grad + params["c"] * model["w"])
            model["b"] -= params["lr"] * grad.sum(axis=0)
        return total / len(order)

    def evaluate(self, model, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        margins, _ = self._margins(model, x, y)
        scores = x @ model["w"] + model["b"]
        return {"loss": float(margins.mean()), "score": float((scores.argmax(1) == y).mean())}

    @staticmethod
    def _margins(model, x: np.ndarray, y: np.ndarray):
        """Per-sample hinge loss max(0, 1 + max_{j != y} s_j - s_y), and who violates it."""
        scores = x @ model["w"] + model["b"]
        rows = np.arange(len(y))
        rivals = scores + 1.0
        rivals[rows, y] = -np.inf
        worst = rivals.argmax(axis=1)
        margins = np.maximum(0.0, rivals[rows, worst] - scores[rows, y])
        return margins, (margins > 0, worst)


handler = make_handler(LinearSVM())
