"""The handler contract ``cescale.handler/1``: event and response schemas, errors, and keys.

The JSON Schemas in ``schema/`` are the source of truth (they ship with the package, so the
control plane and third-party functions can validate against the same files). This module adds
what JSON Schema cannot say — ``epoch_to >= epoch_from``, ``worker < workers`` — and derives the
deterministic keys that make a handler idempotent per (job, task, attempt).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources
from typing import Any, ClassVar

CONTRACT = "cescale.handler/1"
EVENT_SCHEMA = "event.schema.json"
RESPONSE_SCHEMA = "response.schema.json"


class HandledError(Exception):
    """A failure that retrying cannot fix: returned as a payload instead of raised.

    Anything else (MemoryError, an S3 outage) propagates, so Lambda reports ``FunctionError``
    and the control plane's retry and out-of-memory handling see it.
    """

    type: ClassVar[str] = "HandledError"

    def payload(self) -> dict[str, Any]:
        return {"contract": CONTRACT, "error": {"type": self.type, "message": str(self)}}


class InvalidEvent(HandledError):
    """The event breaks the contract (schema, epoch range, params of the workload)."""

    type = "InvalidEvent"


class InvalidInput(HandledError):
    """The event is well-formed but what it points at is not: missing or mismatched data."""

    type = "InvalidInput"


class IdempotencyConflict(HandledError):
    """A different event arrived under a (job, task, attempt) that already has a result."""

    type = "IdempotencyConflict"


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A shipped schema; read through importlib.resources so it also works from a zip."""
    text = resources.files("service.workloads").joinpath("schema", name).read_text("utf-8")
    return json.loads(text)


@cache
def _validator(name: str) -> Any:
    from jsonschema import Draft202012Validator

    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_errors(instance: Any, name: str, where: str = "") -> str | None:
    """The most relevant violation of schema ``name`` as one readable line, or None."""
    from jsonschema.exceptions import best_match

    error = best_match(_validator(name).iter_errors(instance))
    if error is None:
        return None
    path = where + error.json_path.removeprefix("$")
    return f"{path or '$'}: {error.message}"


def validate_event(event: Any, kind: str | None = None) -> dict[str, Any]:
    """The event, checked against the schema and the rules the schema cannot express.

    ``kind`` is set when the handler serves only one kind of job (the built-ins do).
    Integer fields are normalised to ``int`` (JSON Schema accepts 2.0 as an integer).
    """
    if not isinstance(event, dict):
        raise InvalidEvent(f"the event must be a JSON object, got {type(event).__name__}")
    problem = schema_errors(event, EVENT_SCHEMA, "$")
    if problem:
        raise InvalidEvent(problem)
    event = dict(event)
    for field in ("attempt", "epoch_from", "epoch_to", "worker", "workers", "round"):
        if field in event:
            event[field] = int(event[field])
    if kind is not None and event["kind"] != kind:
        raise InvalidEvent(f"this handler runs kind {kind!r} events, got {event['kind']!r}")
    if event["epoch_to"] < event["epoch_from"]:
        raise InvalidEvent(
            f"epoch_to ({event['epoch_to']}) must be >= epoch_from ({event['epoch_from']})"
        )
    resuming = event["checkpoint_in"] is not None
    if not resuming and event["epoch_from"] != 0:
        raise InvalidEvent(
            f"epoch_from is {event['epoch_from']} but there is no checkpoint_in to resume from"
        )
    if event["kind"] == "training":
        if event["worker"] >= event["workers"]:
            raise InvalidEvent(f"worker {event['worker']} is not in 0..{event['workers'] - 1}")
        if event["round"] > 0 and not resuming:
            raise InvalidEvent(
                f"round {event['round']} needs the model of round {event['round'] - 1} "
                "as checkpoint_in"
            )
    return event


def event_fingerprint(event: dict[str, Any]) -> str:
    """A stable hash of the event: tells a re-delivery from a different event under one key."""
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def result_key(event: dict[str, Any]) -> str:
    """Where the result of this (job, task, attempt) lives in the event's store."""
    return f"results/{event['job_id']}/{event['task_id']}/attempt-{event['attempt']}.json"


def checkpoint_target(event: dict[str, Any]) -> str:
    """The exact URI to write the checkpoint to (see ``checkpoint_out`` in the schema)."""
    out = event["checkpoint_out"]
    if out.endswith(".npz"):
        return out
    return f"{out.rstrip('/')}/{event['job_id']}/{event['task_id']}/attempt-{event['attempt']}.npz"
