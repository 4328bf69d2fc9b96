"""Bring your own function: write the training step, get the handler contract for free.

Subclass :class:`Workload`, implement ``init_model``, ``train_epoch`` and ``evaluate``, and turn
an instance into a Lambda handler with :func:`make_handler`::

    class Ridge(Workload):
        name = "my-ridge"
        params_schema = {"type": "object", "properties": {"lr": {"type": "number", "default": 0.1}}}

        def init_model(self, params, data, rng): ...
        def train_epoch(self, model, data, epoch, params, rng): ...  # returns the epoch's loss
        def evaluate(self, model, x, y): ...  # returns {"loss": ..., "score": ...}

    handler = make_handler(Ridge())

The handler then validates events against ``cescale.handler/1``, replays stored results of
re-delivered events instead of training again, resumes from checkpoints, shards data for
data-parallel rounds, averages worker updates when given a list, reports peak memory and
timings, and turns caller mistakes into handled error payloads. The built-in workloads are
written exactly this way (``service/workloads/classifiers.py``).

Determinism is part of the contract: the SDK seeds the init from ``params["seed"]`` (default 0)
and each epoch from (seed, epoch, worker), so epochs 0→2 then 2→4 reproduce epochs 0→4, and a
retried attempt reproduces the same model.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import cache
from typing import Any, ClassVar

import numpy as np

from service.workloads import checkpoint as ckpt
from service.workloads.contract import (
    CONTRACT,
    HandledError,
    IdempotencyConflict,
    InvalidEvent,
    InvalidInput,
    checkpoint_target,
    event_fingerprint,
    result_key,
    validate_event,
)
from service.workloads.datasets import Dataset, DatasetError, load_dataset
from service.workloads.store import ObjectNotFound, ObjectStore, open_store
from service.workloads.usage import peak_memory_mb

Model = Any
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class Workload(ABC):
    """One trainable model family. Subclasses write the ML; the SDK owns the plumbing."""

    name: ClassVar[str] = "custom"
    #: JSON Schema (draft 2020-12) of ``params``; a property's ``default`` fills it in when absent.
    params_schema: ClassVar[dict[str, Any]] = {"type": "object"}

    def prepare_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Normalise validated params (e.g. parse a layer spec); raise ValueError if unusable."""
        return params

    def describe(self, params: dict[str, Any], data: Dataset) -> dict[str, Any]:
        """The model's shape; a checkpoint whose shape differs is refused on resume."""
        return {}

    @abstractmethod
    def init_model(self, params: dict[str, Any], data: Dataset, rng: np.random.Generator) -> Model:
        """A fresh model; ``rng`` is seeded from ``params['seed']`` only, so every worker of a
        data-parallel job starts from the same model."""

    @abstractmethod
    def train_epoch(
        self,
        model: Model,
        data: Dataset,
        epoch: int,
        params: dict[str, Any],
        rng: np.random.Generator,
    ) -> float:
        """Train one epoch on ``data.x_train``/``data.y_train`` in place; return its mean loss."""

    @abstractmethod
    def evaluate(self, model: Model, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """Metrics of ``model`` on (x, y): ``loss``, and ``score`` (higher is better) if any."""

    def save(self, model: Model) -> dict[str, np.ndarray]:
        """The model as named arrays (float arrays are what data-parallel rounds average)."""
        return dict(model)

    def load(self, arrays: dict[str, np.ndarray], params: dict[str, Any], data: Dataset) -> Model:
        """The model from ``save``'s arrays (copies: loaded arrays may be read-only)."""
        return {name: np.array(array) for name, array in arrays.items()}


def make_handler(workload: Workload, kind: str | None = None) -> Handler:
    """A Lambda handler ``handler(event, context) -> dict`` running ``workload``.

    With ``kind`` ("hpo" or "training") the handler refuses events of the other kind.
    """

    def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        try:
            return _Invocation(workload, validate_event(event, kind)).run()
        except HandledError as error:
            return error.payload()

    handler.__doc__ = f"Lambda handler for {workload.name} ({kind or 'any kind'})."
    handler.workload = workload  # type: ignore[attr-defined]
    handler.kind = kind  # type: ignore[attr-defined]
    return handler


_warm = False  # a second invocation in the same process is a warm start, as on Lambda


class _Invocation:
    """One run of the contract: replay or train, then record the result before returning."""

    def __init__(self, workload: Workload, event: dict[str, Any]) -> None:
        self.workload = workload
        self.event = event
        self.timings: dict[str, float] = {}
        self.started = time.perf_counter()
        self.params = _validated_params(workload, event["params"])
        self.seed = int(self.params.get("seed", 0))
        self.worker = event.get("worker", 0) if event["kind"] == "training" else 0
        try:
            self.store = open_store(event["store"])
        except ValueError as exc:
            raise InvalidEvent(f"$.store: {exc}") from None

    def run(self) -> dict[str, Any]:
        global _warm
        cold, _warm = not _warm, True
        fingerprint = event_fingerprint(self.event)
        key = result_key(self.event)
        replayed = self._replay(key, fingerprint)
        if replayed is not None:
            return replayed
        response = self._train()
        response["cold_start"] = cold
        record = {"event_sha256": fingerprint, "response": response}
        with self._timed("result_write"):
            self.store.put_bytes(key, json.dumps(record).encode())
        response["timings_ms"]["total"] = _ms(time.perf_counter() - self.started)
        return response

    def _replay(self, key: str, fingerprint: str) -> dict[str, Any] | None:
        try:
            record = json.loads(self.store.get_bytes(key))
        except ObjectNotFound:
            return None
        if record.get("event_sha256") != fingerprint:
            raise IdempotencyConflict(
                f"{self.store.uri(key)} holds the result of a different event for job "
                f"{self.event['job_id']} task {self.event['task_id']} attempt "
                f"{self.event['attempt']}: use a new attempt number for a changed event"
            )
        return {**record["response"], "replayed": True}

    def _train(self) -> dict[str, Any]:
        event, workload = self.event, self.workload
        data = self._dataset()
        model_shape = workload.describe(self.params, data)
        model = self._starting_model(data, model_shape)
        losses: list[float] = []
        with self._timed("train"):
            for epoch in range(event["epoch_from"], event["epoch_to"]):
                rng = np.random.default_rng([self.seed, epoch, self.worker])
                losses.append(float(workload.train_epoch(model, data, epoch, self.params, rng)))
        with self._timed("evaluate"):
            val = workload.evaluate(model, data.x_val, data.y_val)
            if losses:
                loss = losses[-1]
            else:  # an evaluation-only run reports the loaded model's training loss
                loss = workload.evaluate(model, data.x_train, data.y_train)["loss"]
        metrics: dict[str, Any] = {
            "loss": _finite(loss),
            "score": _finite(val.get("score")),
            "val_loss": _finite(val.get("loss")),
            "train_losses": losses,
            "epochs_run": len(losses),
            "n_samples": int(data.x_train.shape[0]),
        }
        if event["kind"] == "training":
            metrics |= {"worker": event["worker"], "round": event["round"]}
        meta = {
            "contract": CONTRACT,
            "workload": workload.name,
            "model": model_shape,
            "epoch": event["epoch_to"],
            "n_samples": metrics["n_samples"],
            "loss": metrics["loss"],
            "job_id": event["job_id"],
            "task_id": event["task_id"],
            "attempt": event["attempt"],
            "round": event.get("round"),
            "worker": event.get("worker"),
        }
        with self._timed("checkpoint_io"):
            written = ckpt.write_checkpoint(
                checkpoint_target(event), ckpt.Checkpoint(workload.save(model), meta)
            )
        return {
            "contract": CONTRACT,
            "job_id": event["job_id"],
            "task_id": event["task_id"],
            "attempt": event["attempt"],
            "metrics": metrics,
            "epochs_done": event["epoch_to"],
            "checkpoint": written,
            "peak_memory_mb": peak_memory_mb(),
            "replayed": False,
            "timings_ms": self.timings,
        }

    def _dataset(self) -> Dataset:
        event = self.event
        with self._timed("dataset"):
            try:
                data = load_dataset(event["dataset"])
                if event["kind"] == "training":
                    data = data.shard(event["worker"], event["workers"])
            except DatasetError as exc:
                raise InvalidInput(str(exc)) from None
            except ObjectNotFound as exc:
                raise InvalidInput(f"dataset {exc} does not exist") from None
        return data

    def _starting_model(self, data: Dataset, model_shape: dict[str, Any]) -> Model:
        event, workload = self.event, self.workload
        source = event["checkpoint_in"]
        if source is None:
            return workload.init_model(self.params, data, np.random.default_rng([self.seed]))
        with self._timed("checkpoint_io"):
            if isinstance(source, list):  # lazy averaging of the last round's worker updates
                start = ckpt.average([ckpt.read_checkpoint(uri) for uri in source])
            else:
                start = ckpt.read_checkpoint(source)
        found = (start.meta.get("workload"), start.meta.get("model"), start.epoch)
        wanted = (workload.name, model_shape, event["epoch_from"])
        if found != wanted:
            raise InvalidInput(
                "checkpoint_in does not fit this event: it holds (workload, model, epoch) = "
                f"{found}, the event needs {wanted}"
            )
        return workload.load(start.arrays, self.params, data)

    def _timed(self, name: str) -> _Timer:
        return _Timer(self.timings, name)


class _Timer:
    def __init__(self, timings: dict[str, float], name: str) -> None:
        self.timings, self.name = timings, name

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        elapsed = _ms(time.perf_counter() - self.started)
        self.timings[self.name] = round(self.timings.get(self.name, 0.0) + elapsed, 3)


def _validated_params(workload: Workload, params: dict[str, Any]) -> dict[str, Any]:
    from jsonschema.exceptions import best_match

    schema = workload.params_schema
    error = best_match(_params_validator(type(workload)).iter_errors(params))
    if error is not None:
        path = "$.params" + error.json_path.removeprefix("$")
        raise InvalidEvent(f"{path}: {error.message} (workload {workload.name})")
    defaults = {
        name: spec["default"]
        for name, spec in schema.get("properties", {}).items()
        if isinstance(spec, dict) and "default" in spec
    }
    try:
        return workload.prepare_params({**defaults, **params})
    except ValueError as exc:
        raise InvalidEvent(f"$.params: {exc} (workload {workload.name})") from None


@cache
def _params_validator(workload_type: type[Workload]) -> Any:
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(workload_type.params_schema)
    return Draft202012Validator(workload_type.params_schema)


def _finite(value: Any) -> float | None:
    """JSON has no NaN: a diverged or empty metric is reported as null."""
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


__all__ = ["Handler", "Model", "ObjectStore", "Workload", "make_handler"]
