"""The parameters the built-in workloads take: one JSON Schema per built-in, and its checks.

This is the single source of truth for ``builtin:logreg`` and ``builtin:mlp`` hyperparameters:
the handlers validate every event's ``params`` against these schemas
(``service.workloads.classifiers``), and the job spec checks ``training.params`` and every
search-space dimension against them at submit (``service.spec``), so a typo is a 422, not a job
that fails after its first invocations were billed. Bring-your-own functions declare no schema
to the control plane; their params are checked only by the function itself.

Pure data and pure functions: importing this module loads neither NumPy nor jsonschema.
"""

from __future__ import annotations

from functools import cache
from typing import Any

MAX_LAYERS = 8
MAX_WIDTH = 16_384

_SGD_PARAMS: dict[str, Any] = {
    "batch_size": {"type": "integer", "minimum": 1, "maximum": 65_536, "default": 64},
    "l2": {"type": "number", "minimum": 0, "maximum": 1, "default": 1e-4},
    "seed": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1, "default": 0},
}


def _lr(default: float) -> dict[str, Any]:
    return {"type": "number", "exclusiveMinimum": 0, "maximum": 10, "default": default}


LOGREG_PARAMS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"lr": _lr(0.1), **_SGD_PARAMS},
}

MLP_PARAMS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "lr": _lr(0.05),
        # A search space can only choose scalars, hence the "64,32" string form.
        "hidden": {
            "oneOf": [
                {"type": "integer", "minimum": 1, "maximum": MAX_WIDTH},
                {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 1, "maximum": MAX_WIDTH},
                    "minItems": 1,
                    "maxItems": MAX_LAYERS,
                },
                {"type": "string", "pattern": r"^[1-9][0-9]{0,4}(,[1-9][0-9]{0,4}){0,7}$"},
            ],
            "default": [64],
        },
        **_SGD_PARAMS,
    },
}

#: The parameter schema of each built-in workload, by its ``workload.function`` name.
BUILTIN_PARAMS: dict[str, dict[str, Any]] = {
    "builtin:logreg": LOGREG_PARAMS,
    "builtin:mlp": MLP_PARAMS,
}


class InvalidParams(ValueError):
    """A parameter the workload does not take, or a value it cannot use."""

    def __init__(self, name: str | None, reason: str) -> None:
        super().__init__(f"{name}: {reason}" if name else reason)
        self.name = name
        self.reason = reason


def hidden_layers(hidden: Any) -> list[int]:
    """``hidden`` (64, [64, 32] or "64,32", already schema-valid) as a list of layer widths."""
    if isinstance(hidden, str):
        hidden = [int(part) for part in hidden.split(",")]
    elif not isinstance(hidden, list):
        hidden = [hidden]
    layers = [int(width) for width in hidden]
    if max(layers) > MAX_WIDTH:
        raise ValueError(f"hidden layers are at most {MAX_WIDTH} wide, got {layers}")
    return layers


def accepted(function: str) -> list[str]:
    """The parameter names built-in ``function`` takes."""
    return list(BUILTIN_PARAMS[function]["properties"])


def check_params(function: str, params: dict[str, Any]) -> None:
    """Raise :class:`InvalidParams` naming the first parameter built-in ``function`` refuses."""
    for name in params:
        _check_known(function, name)
    from jsonschema.exceptions import best_match

    error = best_match(validator(function).iter_errors(params))
    if error is not None:
        path = list(error.absolute_path)
        raise InvalidParams(str(path[0]) if path else None, error.message)
    if "hidden" in params:
        try:
            hidden_layers(params["hidden"])
        except ValueError as exc:
            raise InvalidParams("hidden", str(exc)) from None


def takes_fractions(function: str, name: str) -> bool:
    """Whether parameter ``name`` accepts any number (uniform and log_uniform draw fractions)."""
    _check_known(function, name)
    return _accepts_type(BUILTIN_PARAMS[function]["properties"][name], "number")


def _accepts_type(node: dict[str, Any], kind: str) -> bool:
    types = node.get("type")
    if types == kind or (isinstance(types, list) and kind in types):
        return True
    branches = node.get("oneOf", []) + node.get("anyOf", [])
    return any(_accepts_type(branch, kind) for branch in branches)


def _check_known(function: str, name: str) -> None:
    known = accepted(function)
    if name not in known:
        raise InvalidParams(
            name, f"{function} takes no parameter {name!r}; it takes {', '.join(known)}"
        )


@cache
def validator(function: str) -> Any:
    """The (checked, cached) Draft 2020-12 validator of built-in ``function``'s params."""
    from jsonschema import Draft202012Validator

    schema = BUILTIN_PARAMS[function]
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)
