"""A private Postgres database for one benchmark run: created, migrated, and dropped at the end.

The server is the local one the tests use (127.0.0.1:5432, user postgres, trust auth); if it is
installed but stopped it is started with ``pg_ctlcluster``, as the test suite does.
"""

from __future__ import annotations

import glob
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from service.migrate import upgrade

HOST = os.environ.get("CESCALE_BENCH_PG_HOST", "127.0.0.1")
PORT = int(os.environ.get("CESCALE_BENCH_PG_PORT", "5432"))
USER = os.environ.get("CESCALE_BENCH_PG_USER", "postgres")
ADMIN_DSN = f"host={HOST} port={PORT} user={USER} dbname=postgres connect_timeout=3"


class PostgresUnavailable(RuntimeError):
    """The benchmark needs a Postgres server it cannot reach; the message says why."""


def url(database: str) -> str:
    return f"postgresql+psycopg://{USER}@{HOST}:{PORT}/{database}"


def _reachable() -> bool:
    try:
        with psycopg.connect(ADMIN_DSN):
            return True
    except psycopg.OperationalError:
        return False


def ensure_running() -> None:
    if _reachable():
        return
    versions = sorted(os.path.basename(p) for p in glob.glob("/etc/postgresql/*"))
    if not versions:
        raise PostgresUnavailable(
            f"Postgres is not reachable at {HOST}:{PORT} and is not installed here; "
            f"bench-control needs one with trust auth for user {USER}"
        )
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"]
    started = subprocess.run(command, capture_output=True, text=True, check=False)
    for _ in range(30):
        if _reachable():
            return
        time.sleep(0.5)
    raise PostgresUnavailable(
        f"Postgres is not reachable at {HOST}:{PORT}; tried `{' '.join(command)}` "
        f"(exit {started.returncode}: {started.stderr.strip() or started.stdout.strip()})"
    )


@contextmanager
def bench_database(prefix: str = "cescale_bench") -> Iterator[str]:
    """A fresh, migrated database; yields its SQLAlchemy URL and drops it afterwards."""
    ensure_running()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        upgrade(url(name))
        yield url(name)
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
