"""The built-in workloads: softmax logistic regression and a ReLU MLP, written with the SDK.

Both are the dense network of ``nn.py`` (logistic regression has no hidden layer); this module
takes their parameter schemas from ``params.py`` (the job spec checks submissions against the
same ones) and wires the network into the :class:`Workload` hooks, so the built-ins get
checkpointing, resume and idempotency exactly as a user's function would.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from service.workloads import nn
from service.workloads.datasets import Dataset
from service.workloads.params import LOGREG_PARAMS, MLP_PARAMS, hidden_layers
from service.workloads.sdk import Workload


class DenseClassifier(Workload):
    """Shared hooks of the two built-ins; subclasses differ only in their hidden layers."""

    def hidden(self, params: dict[str, Any]) -> tuple[int, ...]:
        return ()

    def describe(self, params: dict[str, Any], data: Dataset) -> dict[str, Any]:
        return {
            "features": data.n_features,
            "hidden": list(self.hidden(params)),
            "classes": data.n_classes,
        }

    def init_model(
        self, params: dict[str, Any], data: Dataset, rng: np.random.Generator
    ) -> nn.Params:
        return nn.init_params(data.n_features, self.hidden(params), data.n_classes, rng)

    def train_epoch(
        self,
        model: nn.Params,
        data: Dataset,
        epoch: int,
        params: dict[str, Any],
        rng: np.random.Generator,
    ) -> float:
        return nn.train_epoch(
            model,
            data.x_train,
            data.y_train,
            lr=float(params["lr"]),
            batch_size=int(params["batch_size"]),
            l2=float(params["l2"]),
            rng=rng,
        )

    def evaluate(self, model: nn.Params, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        loss, accuracy = nn.evaluate(model, x, y)
        return {"loss": loss, "score": accuracy}


class LogisticRegression(DenseClassifier):
    """``builtin:logreg`` — multinomial logistic regression (softmax, L2, minibatch SGD)."""

    name = "builtin:logreg"
    params_schema: ClassVar[dict[str, Any]] = LOGREG_PARAMS


class MultilayerPerceptron(DenseClassifier):
    """``builtin:mlp`` — ReLU hidden layers; ``hidden`` is 64, [64, 32] or "64,32"."""

    name = "builtin:mlp"
    params_schema: ClassVar[dict[str, Any]] = MLP_PARAMS

    def prepare_params(self, params: dict[str, Any]) -> dict[str, Any]:
        hidden = hidden_layers(params["hidden"])
        return {**params, "hidden": hidden}

    def hidden(self, params: dict[str, Any]) -> tuple[int, ...]:
        return tuple(params["hidden"])
