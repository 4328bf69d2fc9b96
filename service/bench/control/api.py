"""The API under load: ``cescale serve`` on the bench database (controller off), a tenant made
with ``cescale tenants create``, and the load generator (``loadgen``) in a separate process on
loopback for a bounded time per route."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

JOB = {
    "name": "bench-api-hpo",
    "kind": "hpo",
    "workload": {"function": "builtin:mlp", "dataset": "builtin:digits"},
    "hpo": {
        "search_space": {"lr": {"log_uniform": [0.0001, 0.1]}, "hidden": {"choice": [32, 64]}},
        "trials": 27,
        "eta": 3,
        "min_epochs": 1,
        "max_epochs": 27,
    },
    "qos": {"deadline_s": 900},
    "policy": {"name": "ce-scaling"},
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cescale() -> str:
    """The ``cescale`` next to this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "cescale"
    return str(beside) if beside.exists() else "cescale"


def measure(url: str, seconds: float = 10.0, threads: int = 8) -> dict[str, Any]:
    environment = os.environ | {
        "CESCALE_DATABASE_URL": url,
        "CESCALE_CONTROLLER_ENABLED": "false",
    }
    created = subprocess.run(
        [_cescale(), "tenants", "create", f"bench-api-{uuid.uuid4().hex[:6]}", "--json"],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    key = json.loads(created.stdout)["api_key"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="cescale-bench-api-") as scratch:
        log = Path(scratch) / "serve.log"
        body = Path(scratch) / "job.json"
        body.write_text(json.dumps(JOB), encoding="utf-8")
        with log.open("w") as log_file:
            serve = [_cescale(), "serve", "--host", "127.0.0.1", "--port", str(port)]
            server = subprocess.Popen(
                [*serve, "--log-level", "warning"],
                env=environment,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            try:
                _wait_ready(base, server, log)
                headers = {"Authorization": f"Bearer {key}"}
                response = httpx.post(f"{base}/v1/jobs", json=JOB, headers=headers, timeout=10)
                response.raise_for_status()
                job_id = response.json()["id"]
                get = _load(f"{base}/v1/jobs/{job_id}", key, "GET", None, seconds, threads)
                post = _load(f"{base}/v1/jobs", key, "POST", body, seconds, threads)
            finally:
                server.terminate()
                try:
                    server.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    server.kill()
    return {
        "server": "cescale serve (uvicorn, 1 process, log level warning), controller off",
        "load_generator": f"separate process, {threads} threads, keep-alive httpx clients, "
        f"{seconds:g} s per route, loopback",
        "get_job": get,
        "post_job": post,
    }


def _wait_ready(base: str, server: subprocess.Popen, log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"cescale serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"cescale serve not ready after {timeout_s:g} s: {log.read_text()[-2000:]}")


def _load(
    url: str, key: str, method: str, body: Path | None, seconds: float, threads: int
) -> dict[str, Any]:
    command = [sys.executable, "-m", "service.bench.control.loadgen", "--url", url, "--key", key]
    command += ["--method", method, "--seconds", str(seconds), "--threads", str(threads)]
    if body is not None:
        command += ["--body", str(body)]
    done = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 120
    )
    return json.loads(done.stdout)
