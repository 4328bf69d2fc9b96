"""Object stores for datasets, checkpoints and idempotency records.

Handlers only ever see URIs in their events, so one small interface with two backends lets the same
function code run inside the emulator (``file://``) and on AWS Lambda (``s3://``). Keys are always
``/``-separated and relative to the store's root.
"""

from __future__ import annotations

import io
import os
import tempfile
from abc import ABC, abstractmethod
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np


class ObjectNotFound(LookupError):
    """The object at a URI does not exist (a caller's mistake, not a transient failure)."""


class ObjectStore(ABC):
    """A flat key → bytes store rooted at ``root`` (a URI)."""

    root: str

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The object's content; raises ObjectNotFound when it does not exist."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Write the object whole; a reader never sees a partial object."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    def uri(self, key: str) -> str:
        # removesuffix, not rstrip: the root directory's store is "file:///".
        return f"{self.root.removesuffix('/')}/{key.lstrip('/')}"

    def save_npz(self, key: str, arrays: dict[str, np.ndarray]) -> str:
        """Store arrays as an uncompressed ``.npz`` (fast to write, and numpy reads it lazily)."""
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        self.put_bytes(key, buffer.getvalue())
        return self.uri(key)

    def load_npz(self, key: str) -> dict[str, np.ndarray]:
        """Arrays of an ``.npz``; never unpickles (a checkpoint must not be able to run code)."""
        with np.load(io.BytesIO(self.get_bytes(key)), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}


class FileStore(ObjectStore):
    """``file://`` — a directory on local disk; what the emulator uses."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        # A plain path, not percent-encoded: open_store() reads URIs back verbatim.
        self.root = f"file://{self.directory.resolve()}"

    def _path(self, key: str) -> Path:
        return self.directory / key.lstrip("/")

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFound(self.uri(key)) from exc

    def put_bytes(self, key: str, data: bytes) -> None:
        # Write to a temporary file and rename: a crash mid-write leaves no torn object behind.
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()


@cache
def default_s3_client() -> Any:
    """One boto3 client per process: a warm Lambda reuses it (creating one costs ~100 ms).

    boto3 itself honours ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` and the region variables,
    so the same code talks to a moto server or LocalStack without a flag of ours.
    """
    import boto3  # only s3:// needs it, and it is slow to import

    return boto3.client("s3")


class S3Store(ObjectStore):
    """``s3://bucket/prefix`` via boto3 (S3 PUTs are atomic, so no temp-object dance)."""

    def __init__(self, bucket: str, prefix: str = "", client: Any | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.root = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = default_s3_client()
        return self._client

    def _key(self, key: str) -> str:
        key = key.lstrip("/")
        return f"{self.prefix}/{key}" if self.prefix else key

    def get_bytes(self, key: str) -> bytes:
        errors = self.client.exceptions
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except (errors.NoSuchKey, errors.NoSuchBucket) as exc:  # a retry cannot make it appear
            raise ObjectNotFound(self.uri(key)) from exc
        return response["Body"].read()

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True


def open_store(uri: str) -> ObjectStore:
    """The store rooted at ``uri`` (``file:///dir`` or ``s3://bucket/prefix``)."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"file:// URIs must be local paths, got {uri!r}")
        return FileStore(parsed.path or "/")
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"s3:// URI without a bucket: {uri!r}")
        return S3Store(parsed.netloc, parsed.path)
    raise ValueError(f"unsupported store URI {uri!r}: use file:///path or s3://bucket/prefix")


def locate(uri: str) -> tuple[ObjectStore, str]:
    """The store holding the object at ``uri`` and its key there (its last path component)."""
    head, _, name = uri.rstrip("/").rpartition("/")
    if not name or "://" not in head + "/":
        raise ValueError(f"not an object URI: {uri!r}")
    return open_store(head), name


def resolve(ref: str, store: ObjectStore | None = None) -> tuple[ObjectStore, str]:
    """A full URI (``scheme://…``) is located on its own; anything else is a key in ``store``."""
    if "://" in ref:
        return locate(ref)
    if store is None:
        raise ValueError(f"{ref!r} is a key, not a URI, and no store was given")
    return store, ref
