"""Object stores: the local one the emulator uses and the S3 one Lambda uses (moto)."""

from __future__ import annotations

import boto3
import numpy as np
import pytest
from moto import mock_aws

from service.workloads.store import (
    FileStore,
    ObjectNotFound,
    S3Store,
    default_s3_client,
    locate,
    open_store,
    resolve,
)


def _roundtrip(store) -> None:
    assert not store.exists("a/b.bin")
    with pytest.raises(ObjectNotFound):
        store.get_bytes("a/b.bin")
    store.put_bytes("a/b.bin", b"payload")
    assert store.exists("a/b.bin")
    assert store.get_bytes("a/b.bin") == b"payload"
    arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "k": np.array([1, 2])}
    uri = store.save_npz("m/model.npz", arrays)
    assert uri == f"{store.root}/m/model.npz"
    loaded = store.load_npz("m/model.npz")
    assert loaded.keys() == arrays.keys()
    assert loaded["w"].dtype == np.float32
    np.testing.assert_array_equal(loaded["w"], arrays["w"])


def test_file_store_roundtrip_leaves_no_temporary_files(tmp_path):
    store = open_store(f"file://{tmp_path}/root")
    assert isinstance(store, FileStore)
    _roundtrip(store)
    leftovers = [p.name for p in (tmp_path / "root").rglob(".*.tmp")]
    assert leftovers == []


def test_npz_with_pickled_objects_is_refused(tmp_path):
    store = FileStore(tmp_path)
    store.save_npz("evil.npz", {"x": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError, match="allow_pickle"):
        store.load_npz("evil.npz")


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    default_s3_client.cache_clear()
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="cescale-test")
        yield client
    default_s3_client.cache_clear()


def test_s3_store_roundtrip(s3):
    store = open_store("s3://cescale-test/some/prefix")
    assert isinstance(store, S3Store)
    assert store.root == "s3://cescale-test/some/prefix"
    _roundtrip(store)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="cescale-test")["Contents"]]
    assert "some/prefix/a/b.bin" in keys


def test_s3_exists_reraises_errors_other_than_not_found(s3):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError):
        S3Store("no-such-bucket-here").exists("x")


def test_s3_missing_bucket_is_not_found_like_a_missing_key(s3):
    with pytest.raises(ObjectNotFound, match=r"s3://no-such-bucket-here/data/x\.npz"):
        open_store("s3://no-such-bucket-here/data").get_bytes("x.npz")


def test_uris_in_the_root_directory_keep_their_three_slashes():
    store, key = locate("file:///absent-at-root.npz")
    assert store.uri(key) == "file:///absent-at-root.npz"
    assert FileStore("/tmp").uri("a/b") == "file:///tmp/a/b"


def test_locate_and_resolve(tmp_path):
    store, key = locate(f"file://{tmp_path}/dir/model.npz")
    assert key == "model.npz"
    assert store.root == f"file://{(tmp_path / 'dir').resolve()}"
    s3_store, s3_key = locate("s3://bucket/a/b/c.npz")
    assert (s3_store.root, s3_key) == ("s3://bucket/a/b", "c.npz")
    assert resolve("k.npz", store) == (store, "k.npz")
    with pytest.raises(ValueError, match="no store"):
        resolve("k.npz")


@pytest.mark.parametrize("uri", ["http://x/y", "s3://", "file://remote-host/path", "relative"])
def test_unsupported_store_uris_are_refused(uri):
    with pytest.raises(ValueError):
        open_store(uri)
