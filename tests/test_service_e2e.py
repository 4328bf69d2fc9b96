"""The embedded default end to end: what `make run` does, on a real uvicorn process and SQLite.

upgrade → bootstrap → serve, then the README's sample curl (as an HTTP call) and the checks the
issue lists: 201, GET, no key → 401, another tenant → 404, invalid → 422, idempotent retry.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "service.cli.main"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    env = os.environ | {
        "CESCALE_DATABASE_URL": f"sqlite:///{tmp_path / 'cescale.db'}",
        "CESCALE_STATE_DIR": str(tmp_path / ".cescale"),
        "CESCALE_CONTROLLER_INTERVAL_S": "0.2",
    }
    port = free_port()

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*CLI, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
        )

    assert cli("db", "upgrade").returncode == 0
    boot = cli("bootstrap", "--port", str(port))
    assert boot.returncode == 0, boot.stderr
    server = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None:
                pytest.fail(f"server exited: {server.stderr.read().decode()}")
            time.sleep(0.1)
        else:
            pytest.fail("server did not become ready")
        yield base, (tmp_path / ".cescale" / "api-key").read_text().strip(), cli, boot.stdout
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_make_run_flow(served):
    base, key, cli, boot_output = served
    assert f"curl -sS -X POST {base}/v1/jobs" in boot_output
    sample = json.loads((ROOT / "examples" / "hpo-digits.json").read_text())
    auth = {"Authorization": f"Bearer {key}"}

    created = httpx.post(f"{base}/v1/jobs", json=sample, headers=auth)
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    assert httpx.get(f"{base}{location}", headers=auth).json()["id"] == created.json()["id"]

    assert httpx.get(f"{base}{location}").status_code == 401
    other = json.loads(cli("tenants", "create", "other", "--json").stdout)["api_key"]
    assert (
        httpx.get(f"{base}{location}", headers={"Authorization": f"Bearer {other}"}).status_code
        == 404
    )

    for bad in [
        {**sample, "hpo": {**sample["hpo"], "eta": 1}},
        {**sample, "qos": {"deadline_s": -1}},
        {**sample, "policy": {"name": "magic"}},
    ]:
        response = httpx.post(f"{base}/v1/jobs", json=bad, headers=auth)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
    malformed = httpx.post(
        f"{base}/v1/jobs", content=b"{nope", headers=auth | {"Content-Type": "application/json"}
    )
    assert malformed.status_code == 422

    retry = auth | {"Idempotency-Key": "sample-1"}
    one = httpx.post(f"{base}/v1/jobs", json=sample, headers=retry)
    two = httpx.post(f"{base}/v1/jobs", json=sample, headers=retry)
    assert one.status_code == two.status_code == 201
    assert one.json()["id"] == two.json()["id"]
    listed = httpx.get(f"{base}/v1/jobs", headers=auth).json()["items"]
    assert len(listed) == 2  # the first sample and the idempotent one


def wait_until_finished(base: str, location: str, auth: dict, stall_s: float) -> dict:
    """Wait on observed progress, not on the machine's speed: fail only when neither the job's
    timeline nor its billed invocations have grown for ``stall_s`` (a job running real training
    on a loaded 2-core machine may take minutes; one that stopped moving is stuck)."""
    seen, last_progress = None, time.monotonic()
    while True:
        job = httpx.get(f"{base}{location}", headers=auth).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        events = httpx.get(f"{base}{location}/timeline", headers=auth).json()["events"]
        billed = httpx.get(f"{base}{location}/cost", headers=auth).json()["invocations"]
        if (len(events), billed) != seen:
            seen, last_progress = (len(events), billed), time.monotonic()
        elif time.monotonic() - last_progress > stall_s:
            pytest.fail(f"{location} still {job['status']}, no progress for {stall_s}s")
        time.sleep(0.25)


@pytest.mark.parametrize("example", ["hpo-digits.json", "training-digits.json"])
def test_sample_jobs_run_to_success_in_the_live_service(served, example):
    """The in-process control loop (APScheduler, wall clock, emulator, real training)."""
    base, key, _cli, _ = served
    auth = {"Authorization": f"Bearer {key}"}
    spec = json.loads((ROOT / "examples" / example).read_text())
    created = httpx.post(f"{base}/v1/jobs", json=spec, headers=auth)
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    job = wait_until_finished(base, location, auth, stall_s=120)
    assert job["status"] == "succeeded", job["status_reason"]
    if spec["kind"] == "hpo":
        assert job["result"]["best"]["score"] > 0.8  # digits is easy for a tuned MLP
    else:
        assert job["result"]["losses"][-1] < job["result"]["losses"][0]
        assert len(job["result"]["checkpoint"]) == spec["training"]["workers"]  # the model
    cost = httpx.get(f"{base}{location}/cost", headers=auth).json()
    assert cost["total_usd"] > 0 and cost["invocations"] > 0
    assert sum(stage["total_usd"] for stage in cost["stages"]) == pytest.approx(cost["total_usd"])
    timeline = httpx.get(f"{base}{location}/timeline", headers=auth).json()["events"]
    types = [event["type"] for event in timeline]
    assert types[0] == "job.submitted" and types[-1] == "job.succeeded"
    assert "allocation.changed" in types and "stage.finished" in types


def test_training_example_is_a_valid_spec():
    from service.spec import JobSpec

    for name in ["hpo-digits.json", "training-digits.json"]:
        JobSpec.model_validate_json((ROOT / "examples" / name).read_text())
