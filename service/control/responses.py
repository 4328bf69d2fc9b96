"""Checking what a handler answered against the contract ``cescale.handler/1``.

Every response of a run that ended normally goes through `problem` before the loop records it,
on every backend: a function that answers anything else (moto's canned reply, a function that is
not a cescale handler, a broken one) fails its task with the first violation instead of
"succeeding" with no loss, score or checkpoint. The response schema is compiled once, one
validator per branch (result, handled error), so a violation names the field that is wrong
rather than "not valid under any of the given schemas".
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from service.workloads.contract import RESPONSE_SCHEMA, load_schema

MAX_PROBLEM_CHARS = 300


@cache
def _validators() -> dict[str, Draft202012Validator]:
    schema = load_schema(RESPONSE_SCHEMA)
    Draft202012Validator.check_schema(schema)
    return {
        branch: Draft202012Validator({"$ref": f"#/$defs/{branch}", "$defs": schema["$defs"]})
        for branch in ("result", "error")
    }


def problem(payload: Any, invocation: Any, task: Any) -> str | None:
    """The first way `payload` breaks the contract for this attempt, as one short line; None
    when it is a valid result or handled error of this very (job, task, attempt)."""
    if payload is None:
        return "the function returned no payload"
    branch = "error" if isinstance(payload, dict) and "error" in payload else "result"
    error = best_match(_validators()[branch].iter_errors(payload))
    if error is not None:
        where = "$" + error.json_path.removeprefix("$")
        return _short(f"{where}: {error.message}")
    expected = {
        "job_id": str(invocation.job_id),
        "task_id": str(task.id),
        "attempt": invocation.attempt,
    }
    for key, value in expected.items():
        if key in payload and payload[key] != value:
            return _short(f"$.{key}: {payload[key]!r} is not this invocation's {value!r}")
    return None


def _short(text: str) -> str:
    if len(text) <= MAX_PROBLEM_CHARS:
        return text
    return text[: MAX_PROBLEM_CHARS - 1] + "…"
