"""Which handler runs which built-in workload, by import path (``module:attribute``).

The control plane and the emulator address handlers by these strings, so they never import the
ML code themselves (the emulator imports it inside its worker processes).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

_MODULE = "service.workloads.handlers"

BUILTIN_HANDLERS: dict[str, str] = {
    "builtin:logreg": f"{_MODULE}:logreg_trial",
    "builtin:mlp": f"{_MODULE}:mlp_trial",
}
TRAINING_HANDLERS: dict[str, str] = {
    "builtin:logreg": f"{_MODULE}:logreg_training_worker",
    "builtin:mlp": f"{_MODULE}:mlp_training_worker",
}
_BY_KIND = {"hpo": BUILTIN_HANDLERS, "training": TRAINING_HANDLERS}


class UnknownWorkload(LookupError):
    """Not a built-in workload, or not a job kind the built-ins serve."""


def resolve(function: str, kind: str) -> str:
    """The handler path of built-in ``function`` for a job of ``kind`` ("hpo" or "training")."""
    table = _BY_KIND.get(kind)
    if table is None:
        raise UnknownWorkload(f"unknown job kind {kind!r}; kinds are {', '.join(_BY_KIND)}")
    try:
        return table[function]
    except KeyError:
        raise UnknownWorkload(
            f"{function!r} is not a built-in workload; built-ins are {', '.join(table)}"
        ) from None


def load_handler(path: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """Import the handler at ``module:attribute`` (also accepts Lambda's ``module.attribute``)."""
    module_name, sep, attribute = path.partition(":")
    if not sep:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise UnknownWorkload(f"{path!r} is not a handler path like 'package.module:function'")
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise UnknownWorkload(f"cannot import handler {path!r}: {exc}") from None
    if not callable(handler):
        raise UnknownWorkload(f"{path!r} is not callable")
    return handler


def lambda_handler_setting(path: str) -> str:
    """The same handler in the form Lambda's Handler setting takes (``module.function``)."""
    return path.replace(":", ".")
