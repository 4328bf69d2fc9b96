"""Datasets: the built-ins, user .npz files (local and S3), and data-parallel shards."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import boto3
import numpy as np
import pytest
from moto import mock_aws

from service.workloads.datasets import DatasetError, _digits_arrays, load_dataset, synthetic
from service.workloads.store import default_s3_client
from tests.workloads.conftest import ROOT


def test_digits_is_the_real_scikit_learn_set_split_80_20():
    data = load_dataset("builtin:digits")
    assert data.n_features == 64 and data.n_classes == 10
    assert len(data.y_train) + len(data.y_val) == 1797
    assert len(data.y_val) == 359
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int32
    assert data.x_train.min() >= 0.0 and data.x_train.max() <= 1.0
    assert set(np.unique(data.y_val)) == set(range(10))
    assert not data.x_train.flags.writeable  # the warm-process cache must not be mutated


def test_digits_are_read_without_importing_scikit_learn():
    from sklearn.datasets import load_digits

    x, y = _digits_arrays()
    x_ref, y_ref = load_digits(return_X_y=True)
    np.testing.assert_array_equal(x, x_ref)
    np.testing.assert_array_equal(y, y_ref)
    # In a fresh process: no scikit-learn/SciPy import, so a digits function fits in 128 MB.
    child = (
        "import json, sys\n"
        "from service.workloads.datasets import load_dataset\n"
        "from service.workloads.usage import peak_memory_mb\n"
        "load_dataset('builtin:digits')\n"
        "print(json.dumps({'sklearn': 'sklearn' in sys.modules, 'peak': peak_memory_mb()}))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, check=True, cwd=ROOT
    )
    measured = json.loads(completed.stdout)
    assert measured["sklearn"] is False
    assert measured["peak"] < 100, measured


def test_synthetic_is_seeded_and_sized_by_its_options():
    a = load_dataset("builtin:synthetic?n=1000&d=7&classes=3&seed=5")
    b = synthetic(n=1000, d=7, classes=3, seed=5)
    c = synthetic(n=1000, d=7, classes=3, seed=6)
    assert a.x_train.shape == (800, 7) and a.x_val.shape == (200, 7)
    assert a.n_classes == 3 and set(np.unique(a.y_train)) == {0, 1, 2}
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)
    assert a.nbytes == 1000 * 7 * 4 + 1000 * 4


def test_synthetic_defaults():
    data = load_dataset("builtin:synthetic")
    assert data.x_train.shape[0] + data.x_val.shape[0] == 10_000
    assert data.n_features == 20 and data.n_classes == 2


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("builtin:synthetic?n=100&depth=3", "unknown synthetic dataset option 'depth'"),
        ("builtin:synthetic?n=many", "not an integer"),
        ("builtin:synthetic?n=5", "outside"),
        ("builtin:synthetic?n=50000000&d=100000", "too large"),
        ("builtin:mnist", "unknown dataset"),
        ("file:///tmp/data.csv", ".npz"),
    ],
)
def test_bad_dataset_uris_are_refused_with_a_reason(uri, message):
    with pytest.raises(DatasetError, match=message):
        load_dataset(uri)


def _npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_user_npz_from_file_is_split_and_cast(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4))
    y = np.arange(50) % 3
    (tmp_path / "data.npz").write_bytes(_npz_bytes(x=x, y=y))
    data = load_dataset(f"file://{tmp_path}/data.npz")
    assert data.x_train.shape == (40, 4) and data.x_val.shape == (10, 4)
    assert data.x_train.dtype == np.float32 and data.n_classes == 3
    # Rows are shuffled before the split, so sorted user data still gets a fair validation set.
    assert sorted(np.concatenate([data.y_train, data.y_val]).tolist()) == sorted(y.tolist())


def test_user_npz_with_explicit_validation_split(tmp_path):
    arrays = {
        "x": np.ones((6, 2)),
        "y": np.array([0, 1, 0, 1, 0, 1]),
        "x_val": np.zeros((2, 2)),
        "y_val": np.array([1, 0]),
    }
    (tmp_path / "d.npz").write_bytes(_npz_bytes(**arrays))
    data = load_dataset(f"file://{tmp_path}/d.npz")
    assert data.x_train.shape == (6, 2) and data.x_val.shape == (2, 2)


@pytest.mark.parametrize(
    "arrays",
    [
        {"features": np.ones((4, 2)), "y": np.zeros(4)},
        {"x": np.ones((4, 2)), "y": np.zeros(3)},
        {"x": np.ones((4, 2)), "y": np.array([0, 1, 0.5, 1])},
        {"x": np.ones((4, 2)), "y": np.zeros(4)},
    ],
)
def test_malformed_user_npz_is_refused(tmp_path, arrays):
    (tmp_path / "bad.npz").write_bytes(_npz_bytes(**arrays))
    with pytest.raises(DatasetError):
        load_dataset(f"file://{tmp_path}/bad.npz")


def _npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not an archive at all\n", "not a zip archive"),
        (_npy_bytes(np.ones((4, 2))), "not a zip archive"),  # a bare .npy named .npz
        (_npz_bytes(x=np.ones((40, 2)), y=np.arange(40) % 2)[:120], "not a readable .npz"),
        (_npz_bytes(x=np.array([{"a": 1}] * 4, dtype=object), y=np.arange(4)), "allow_pickle"),
        (_npz_bytes(x=np.full((4, 2), np.nan), y=np.arange(4) % 2), "NaN or infinite"),
        (
            _npz_bytes(
                x=np.ones((4, 2)),
                y=np.arange(4) % 2,
                x_val=np.full((2, 2), np.inf),
                y_val=np.array([0, 1]),
            ),
            "x_val holds NaN or infinite",
        ),
    ],
)
def test_unreadable_user_npz_is_a_dataset_error_not_a_crash(tmp_path, content, message):
    """A retry cannot fix a corrupt file, so it must be a DatasetError (a handled InvalidInput),
    not whatever numpy raises (which would make Lambda report FunctionError and retry)."""
    (tmp_path / "broken.npz").write_bytes(content)
    with pytest.raises(DatasetError, match=message):
        load_dataset(f"file://{tmp_path}/broken.npz")


def test_user_npz_from_s3(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    default_s3_client.cache_clear()
    try:
        with mock_aws():
            client = boto3.client("s3", region_name="us-east-1")
            client.create_bucket(Bucket="data")
            body = _npz_bytes(x=np.eye(10), y=np.arange(10) % 2)
            client.put_object(Bucket="data", Key="sets/eye.npz", Body=body)
            data = load_dataset("s3://data/sets/eye.npz")
    finally:
        default_s3_client.cache_clear()
    assert data.n_features == 10 and data.n_classes == 2


def test_shards_are_disjoint_balanced_views():
    data = load_dataset("builtin:synthetic?n=1003&d=3")
    shards = [data.shard(w, 4) for w in range(4)]
    sizes = [len(s.y_train) for s in shards]
    assert sum(sizes) == len(data.y_train) and max(sizes) - min(sizes) <= 1
    rows = np.concatenate([s.x_train for s in shards])
    assert len(np.unique(rows, axis=0)) == len(data.y_train)
    assert all(np.shares_memory(s.x_train, data.x_train) for s in shards)
    with pytest.raises(DatasetError):
        data.shard(4, 4)
