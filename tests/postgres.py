"""The test suite's Postgres: the server on this machine, started if it is installed but stopped."""

from __future__ import annotations

import glob
import os
import subprocess
import time

import psycopg

HOST = os.environ.get("CESCALE_TEST_PG_HOST", "127.0.0.1")
PORT = int(os.environ.get("CESCALE_TEST_PG_PORT", "5432"))
USER = os.environ.get("CESCALE_TEST_PG_USER", "postgres")
ADMIN_DSN = f"host={HOST} port={PORT} user={USER} dbname=postgres connect_timeout=3"


def url(database: str) -> str:
    return f"postgresql+psycopg://{USER}@{HOST}:{PORT}/{database}"


def _reachable() -> bool:
    try:
        with psycopg.connect(ADMIN_DSN):
            return True
    except psycopg.OperationalError:
        return False


def ensure_running() -> str | None:
    """None when Postgres answers; otherwise a message saying why it cannot."""
    if _reachable():
        return None
    versions = sorted(os.path.basename(p) for p in glob.glob("/etc/postgresql/*"))
    if not versions:
        return (
            f"Postgres is not reachable at {HOST}:{PORT} and is not installed here "
            "(/etc/postgresql is empty). The tests need a real Postgres with trust auth for "
            f"user {USER}."
        )
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"]
    started = subprocess.run(command, capture_output=True, text=True, check=False)
    for _ in range(30):
        if _reachable():
            return None
        time.sleep(0.5)
    return (
        f"Postgres is not reachable at {HOST}:{PORT}; tried `{' '.join(command)}` "
        f"(exit {started.returncode}: {started.stderr.strip() or started.stdout.strip()})."
    )


def recreate_database(name: str) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
