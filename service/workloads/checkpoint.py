"""Checkpoints: a model's arrays plus a small JSON header, stored as one ``.npz`` object.

The header says which workload wrote the model, how many epochs it has done and on how many
samples, so a resume can refuse a checkpoint from another model or epoch instead of silently
training the wrong thing, and model averaging can weight each worker by its shard size.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.workloads.contract import InvalidInput
from service.workloads.store import ObjectNotFound, ObjectStore, resolve

META_KEY = "__meta__"


@dataclass
class Checkpoint:
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def epoch(self) -> int:
        return int(self.meta.get("epoch", 0))

    @property
    def n_samples(self) -> int:
        return int(self.meta.get("n_samples", 1))


def write_checkpoint(ref: str, checkpoint: Checkpoint, store: ObjectStore | None = None) -> str:
    """Write ``checkpoint`` at ``ref`` (a URI, or a key in ``store``); returns its URI."""
    bad = [name for name in checkpoint.arrays if name.startswith("__")]
    if bad:
        raise ValueError(f"array names starting with '__' are reserved: {bad}")
    target, key = resolve(ref, store)
    header = np.array(json.dumps(checkpoint.meta, sort_keys=True))
    return target.save_npz(key, {**checkpoint.arrays, META_KEY: header})


def read_checkpoint(ref: str, store: ObjectStore | None = None) -> Checkpoint:
    """The checkpoint at ``ref``; a missing or unreadable one is the caller's mistake."""
    source, key = resolve(ref, store)
    try:
        arrays = source.load_npz(key)
    except ObjectNotFound:
        raise InvalidInput(f"checkpoint {source.uri(key)} does not exist") from None
    except (ValueError, OSError) as exc:  # not an npz, or one holding pickled objects
        raise InvalidInput(f"checkpoint {source.uri(key)} is not readable: {exc}") from None
    header = arrays.pop(META_KEY, None)
    meta = json.loads(str(header)) if header is not None else {}
    return Checkpoint(arrays, meta)


def average(checkpoints: Sequence[Checkpoint]) -> Checkpoint:
    """Model averaging (local SGD): the sample-weighted mean of the workers' float arrays.

    Every worker must have started from the same model, so workload, epoch and array shapes must
    agree; non-float arrays (counters, vocabularies) must be identical and are kept as they are.
    """
    if not checkpoints:
        raise ValueError("nothing to average")
    first = checkpoints[0]
    for other in checkpoints[1:]:
        for key in ("workload", "epoch", "model"):
            if other.meta.get(key) != first.meta.get(key):
                raise InvalidInput(
                    f"cannot average checkpoints with different {key}: "
                    f"{first.meta.get(key)!r} vs {other.meta.get(key)!r}"
                )
        if other.arrays.keys() != first.arrays.keys():
            raise InvalidInput("cannot average checkpoints with different arrays")
    weights = np.array([c.n_samples for c in checkpoints], dtype=np.float64)
    weights /= weights.sum()
    arrays: dict[str, np.ndarray] = {}
    for name, reference in first.arrays.items():
        stack = [c.arrays[name] for c in checkpoints]
        if any(a.shape != reference.shape for a in stack):
            raise InvalidInput(f"cannot average array {name!r}: shapes differ")
        if np.issubdtype(reference.dtype, np.floating):
            total = np.zeros(reference.shape, dtype=np.float64)
            for weight, array in zip(weights, stack, strict=True):
                total += weight * array
            arrays[name] = total.astype(reference.dtype)
        elif all(np.array_equal(a, reference) for a in stack):
            arrays[name] = reference
        else:
            raise InvalidInput(f"cannot average non-float array {name!r}: workers disagree")
    losses = [c.meta.get("loss") for c in checkpoints]
    loss = (
        float(np.dot(weights, np.asarray(losses, dtype=np.float64)))
        if all(isinstance(v, int | float) for v in losses)
        else None
    )
    meta = {
        **{k: first.meta[k] for k in ("workload", "epoch", "model", "round") if k in first.meta},
        "n_samples": int(sum(c.n_samples for c in checkpoints)),
        "loss": loss,
        "averaged_from": len(checkpoints),
    }
    return Checkpoint(arrays, meta)


def average_checkpoints(
    uris: Sequence[str], out_uri: str, store: ObjectStore | None = None
) -> dict[str, Any]:
    """Average the workers' updates of one round into the next round's starting model.

    The control loop calls this between rounds (it is cheap: one pass over W parameter sets, no
    data) and passes ``out_uri`` as the next round's ``checkpoint_in``. Alternatively a round's
    workers can be given the list of updates as ``checkpoint_in`` and average lazily themselves.
    Each reference is a URI, or a key in ``store``. Returns the round's summary: the written
    checkpoint, the sample-weighted training loss of the round, its epoch and worker count.
    """
    averaged = average([read_checkpoint(uri, store) for uri in uris])
    written = write_checkpoint(out_uri, averaged, store)
    return {
        "checkpoint": written,
        "loss": averaged.meta["loss"],
        "epoch": averaged.epoch,
        "round": averaged.meta.get("round"),
        "workers": len(uris),
        "n_samples": averaged.n_samples,
    }
