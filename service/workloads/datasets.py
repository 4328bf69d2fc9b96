"""Datasets the workloads train on, addressed by the URI in the event's ``dataset`` field.

- ``builtin:digits`` — the 8x8 handwritten digits that ship with scikit-learn (1,797 samples,
  64 features, 10 classes): real data, small enough for a 128 MB function (read from
  scikit-learn's data file without importing scikit-learn, see ``_digits_arrays``).
- ``builtin:synthetic?n=200000&d=100&classes=2&clusters=2&seed=0`` — a seeded Gaussian-mixture
  classification set of any size, so memory footprints and durations scale like real data do.
  Each class is a mixture of ``clusters`` blobs, so a linear model cannot fit it perfectly and an
  MLP has something to learn beyond logistic regression.
- ``file:///path/data.npz`` or ``s3://bucket/key.npz`` — user data: arrays ``x`` (n, d) and ``y``
  (n,) with integer labels 0..k-1, optionally ``x_val``/``y_val``; otherwise 20 % is held out.

Arrays are float32 features and int32 labels (what a careful practitioner ships to Lambda), and
are read-only because a warm function keeps the last dataset cached between invocations.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np

from service.workloads.store import locate

VALIDATION_FRACTION = 0.2
SPLIT_SEED = 0  # the train/validation split must not depend on any trial's seed
_SYNTHETIC_DEFAULTS = {"n": 10_000, "d": 20, "classes": 2, "clusters": 2, "seed": 0}
_SYNTHETIC_LIMITS = {
    "n": (10, 50_000_000),
    "d": (1, 100_000),
    "classes": (2, 1_000),
    "clusters": (1, 100),
    "seed": (0, 2**32 - 1),
}
_MAX_ELEMENTS = 2_700_000_000  # ~10 GB of float32: the largest Lambda cannot hold more
_INFORMATIVE = 10  # dimensions that carry the class signal; the rest is noise
_CLUSTER_SPREAD = 1.0  # std of blob centres; with unit noise this gives ~80-90 % accuracy
_ZIP_MAGIC = b"PK\x03\x04"  # every .npz is a zip archive
_CHUNK_ROWS = 65_536  # generate in chunks so the peak stays close to the dataset's own size


class DatasetError(ValueError):
    """The dataset URI or its content is unusable (the caller's mistake; retrying won't help)."""


@dataclass(frozen=True)
class Dataset:
    """Train and validation splits of one classification problem."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    n_classes: int

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.x_train, self.y_train, self.x_val, self.y_val))

    def shard(self, worker: int, workers: int) -> Dataset:
        """Worker ``worker``'s share for data-parallel training: every ``workers``-th row.

        Rows are already shuffled, so strided shards are balanced; they are views, so W workers
        in one process (the emulator's warm pool) do not copy the data W times.
        """
        if not 0 <= worker < workers:
            raise DatasetError(f"worker {worker} is not in 0..{workers - 1}")
        if workers > self.x_train.shape[0]:
            raise DatasetError(f"{workers} workers but only {self.x_train.shape[0]} samples")
        return Dataset(
            name=f"{self.name}#shard={worker}/{workers}",
            x_train=self.x_train[worker::workers],
            y_train=self.y_train[worker::workers],
            x_val=self.x_val[worker::workers],
            y_val=self.y_val[worker::workers],
            n_classes=self.n_classes,
        )


@lru_cache(maxsize=1)
def load_dataset(uri: str) -> Dataset:
    """Load (or reuse, in a warm process) the dataset named by ``uri``."""
    if uri == "builtin:digits":
        return _digits()
    if uri == "builtin:synthetic" or uri.startswith("builtin:synthetic?"):
        return synthetic(**_synthetic_options(uri))
    if uri.startswith(("file://", "s3://")):
        return _npz(uri)
    raise DatasetError(
        f"unknown dataset {uri!r}: use builtin:digits, builtin:synthetic?n=..&d=.., "
        "file:///path.npz or s3://bucket/key.npz"
    )


def synthetic(n: int, d: int, classes: int = 2, clusters: int = 2, seed: int = 0) -> Dataset:
    """A seeded Gaussian-mixture classification set; the same arguments give the same bytes."""
    rng = np.random.default_rng(seed)
    informative = min(d, _INFORMATIVE)
    centres = rng.normal(0.0, _CLUSTER_SPREAD, size=(classes * clusters, informative))
    centres = centres.astype(np.float32)
    blob = rng.integers(0, classes * clusters, size=n)
    x = rng.standard_normal((n, d), dtype=np.float32)
    for start in range(0, n, _CHUNK_ROWS):
        stop = start + _CHUNK_ROWS
        x[start:stop, :informative] += centres[blob[start:stop]]
    y = (blob % classes).astype(np.int32)
    del blob
    # Rows are i.i.d., so the split is a plain cut: views, no copy of the largest array.
    n_train = n - max(1, round(n * VALIDATION_FRACTION))
    query = f"n={n}&d={d}&classes={classes}&clusters={clusters}&seed={seed}"
    return _frozen(
        f"builtin:synthetic?{query}", x[:n_train], y[:n_train], x[n_train:], y[n_train:], classes
    )


def _synthetic_options(uri: str) -> dict[str, int]:
    _, _, query = uri.partition("?")
    options = dict(_SYNTHETIC_DEFAULTS)
    for key, raw in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
        if key not in _SYNTHETIC_LIMITS:
            raise DatasetError(
                f"unknown synthetic dataset option {key!r}; options are "
                + ", ".join(_SYNTHETIC_LIMITS)
            )
        try:
            value = int(raw)
        except ValueError:
            raise DatasetError(f"synthetic option {key}={raw!r} is not an integer") from None
        low, high = _SYNTHETIC_LIMITS[key]
        if not low <= value <= high:
            raise DatasetError(f"synthetic option {key}={value} is outside [{low}, {high}]")
        options[key] = value
    if options["n"] * options["d"] > _MAX_ELEMENTS:
        raise DatasetError(f"synthetic set n*d={options['n'] * options['d']} is too large")
    return options


def _digits() -> Dataset:
    x, y = _digits_arrays()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(y))
    x = (x[order] / 16.0).astype(np.float32)  # pixel intensities are 0..16
    y = y[order].astype(np.int32)
    n_train = len(y) - round(len(y) * VALIDATION_FRACTION)
    return _frozen("builtin:digits", x[:n_train], y[:n_train], x[n_train:], y[n_train:], 10)


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits, read from the CSV it ships without importing scikit-learn.

    ``import sklearn.datasets`` pulls in SciPy: ~130 MB of resident memory and ~2 s of cold
    start for a 1,797-row dataset, which would put every digits function above Lambda's
    128 MB minimum. ``find_spec`` locates the package without running it; the file is the one
    ``load_digits`` parses, so the arrays are identical (tested).
    """
    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec else None
    if path is None or not path.is_file():  # another layout: fall back to the real loader
        from sklearn.datasets import load_digits

        return load_digits(return_X_y=True)
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",")
    return table[:, :-1], table[:, -1].astype(int)


def _npz(uri: str) -> Dataset:
    if not uri.endswith(".npz"):
        raise DatasetError(f"user datasets are .npz files, got {uri!r}")
    store, key = locate(uri)
    content = store.get_bytes(key)
    if not content.startswith(_ZIP_MAGIC):  # otherwise np.load would try .npy, then pickle
        raise DatasetError(f"{uri} is not a readable .npz: it is not a zip archive of arrays")
    try:
        with np.load(io.BytesIO(content), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        # Not an .npz, a truncated one, or one holding pickled objects: the caller's data is
        # at fault and a retry would fail the same way.
        raise DatasetError(f"{uri} is not a readable .npz: {exc}") from None
    x = arrays.get("x", arrays.get("X"))
    y = arrays.get("y")
    if x is None or y is None:
        raise DatasetError(f"{uri} must hold arrays 'x' (n, d) and 'y' (n,); has {sorted(arrays)}")
    x, y = _checked(uri, "x", x, "y", y)
    if "x_val" in arrays and "y_val" in arrays:
        x_val, y_val = _checked(uri, "x_val", arrays["x_val"], "y_val", arrays["y_val"])
        if x_val.shape[1] != x.shape[1]:
            raise DatasetError(f"{uri}: x_val has {x_val.shape[1]} features, x has {x.shape[1]}")
    else:
        order = np.random.default_rng(SPLIT_SEED).permutation(len(y))
        n_val = max(1, round(len(y) * VALIDATION_FRACTION))
        x, y, x_val, y_val = x[order[n_val:]], y[order[n_val:]], x[order[:n_val]], y[order[:n_val]]
    n_classes = int(max(y.max(), y_val.max())) + 1
    if n_classes < 2:
        raise DatasetError(f"{uri}: labels must span at least two classes")
    return _frozen(uri, x, y, x_val, y_val, n_classes)


def _checked(
    uri: str, x_name: str, x: np.ndarray, y_name: str, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise DatasetError(
            f"{uri}: {x_name} must be (n, d) and {y_name} (n,), got {x.shape} and {y.shape}"
        )
    if not np.issubdtype(x.dtype, np.number) or not np.issubdtype(y.dtype, np.number):
        raise DatasetError(f"{uri}: {x_name} and {y_name} must be numeric")
    labels = y.astype(np.int32)
    if (labels != y).any() or labels.min() < 0:
        raise DatasetError(f"{uri}: {y_name} must hold integer class labels 0..k-1")
    x = x.astype(np.float32, copy=False)
    # NaN or inf features would train to a NaN loss that looks like divergence; checked in
    # chunks so the check does not add a full-size boolean array to the footprint.
    for start in range(0, x.shape[0], _CHUNK_ROWS):
        if not np.isfinite(x[start : start + _CHUNK_ROWS]).all():
            raise DatasetError(f"{uri}: {x_name} holds NaN or infinite values")
    return x, labels


def _frozen(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    n_classes: int,
) -> Dataset:
    for array in (x_train, y_train, x_val, y_val):
        array.flags.writeable = False
    return Dataset(name, x_train, y_train, x_val, y_val, n_classes)
