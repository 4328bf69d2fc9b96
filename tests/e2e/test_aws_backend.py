"""The sample jobs end to end on the AWS backend, as a user would run them.

`cescale deploy` creates the built-in functions; the bring-your-own example is deployed as the
user's own Lambda function; `cescale serve` (API only) and a separate `cescale controller` run
as processes with CESCALE_BACKEND=aws. AWS is moto in server mode, with the Lambda runtime
stand-in of `tests/lambda_standin.py` in front of it: it runs each version's deployed zip at
the version's memory and writes what Lambda writes (the REPORT tail, CloudWatch Logs and
metrics). The S3 checkpoint store is in moto too. The jobs are the examples, shrunk (fewer
trials, epochs and workers) to keep the test near a minute or two.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.migrate import upgrade
from service.workloads.packaging import package_sources
from tests import postgres
from tests.lambda_standin import CREDENTIALS, LambdaStandIn

pytestmark = pytest.mark.aws_e2e

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "service.cli.main"]
BUCKET = "cescale-e2e"
USER_FUNCTION = "linear-svm"
GB_SECOND_USD = Decimal("0.0000166667")  # x86_64, us-east-1
REQUEST_USD = Decimal("0.20") / Decimal(1_000_000)
PICO = Decimal(10) ** 12
JOB_TIMEOUT_S = 900.0  # a generous cap, not a timing assertion: progress is what is waited on


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pico(usd: Decimal) -> Decimal:
    return (usd * PICO).to_integral_value() / PICO


def _byo_zip() -> bytes:
    """The user's deployment: handler.py next to the `service` package (its SDK)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in package_sources().items():
            archive.writestr(name, path.read_bytes())
        archive.writestr("handler.py", (ROOT / "examples/byo_function/handler.py").read_bytes())
    return buffer.getvalue()


def _example(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "examples" / name).read_text())


def _jobs() -> dict[str, dict[str, Any]]:
    hpo = _example("hpo-digits.json")
    hpo["hpo"] |= {"trials": 9, "max_epochs": 3}
    training = _example("training-digits.json")
    training["training"] |= {"workers": 2, "max_epochs": 3}
    byo = {
        "name": "byo-linear-svm-hpo",
        "kind": "hpo",
        "workload": {"function": USER_FUNCTION, "dataset": "builtin:digits"},
        "hpo": {
            "search_space": {"lr": {"log_uniform": [0.01, 0.5]}},
            "trials": 3,
            "eta": 3,
            "min_epochs": 1,
            "max_epochs": 3,
        },
        "qos": {"deadline_s": 900},
        "budget": {"max_cost_usd": 1.0},
        "policy": {"name": "ce-scaling"},
    }
    return {"hpo": hpo, "training": training, "byo": byo}


@dataclass
class Deployment:
    standin: LambdaStandIn
    base: str
    auth: dict[str, str]
    deploy_output: str
    logs: Path


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("aws-e2e")
    database = f"cescale_e2e_{os.getpid()}"
    postgres.recreate_database(database)
    upgrade(postgres.url(database))
    standin = LambdaStandIn(max_running=3, max_environments=8)
    processes: list[subprocess.Popen] = []
    try:
        role = standin.role("cescale-functions")
        standin.client("s3").create_bucket(Bucket=BUCKET)
        lam = standin.client("lambda")
        lam.create_function(  # the user's own function, deployed the user's way
            FunctionName=USER_FUNCTION,
            Runtime="python3.11",
            Role=role,
            Handler="handler.handler",
            Code={"ZipFile": _byo_zip()},
            MemorySize=2048,
            Timeout=120,
        )
        env = {
            **os.environ,
            **CREDENTIALS,
            "CESCALE_DATABASE_URL": postgres.url(database),
            "CESCALE_STATE_DIR": str(tmp / ".cescale"),
            "CESCALE_BACKEND": "aws",
            "CESCALE_AWS_ENDPOINT_URL": standin.endpoint,
            "CESCALE_AWS_ROLE_ARN": role,
            "CESCALE_STORE_URL": f"s3://{BUCKET}/store",
            "CESCALE_AWS_CONCURRENCY_LIMIT": "3",  # no GetAccountSettings in moto
            "CESCALE_CONTROLLER_ENABLED": "false",  # serve is the API only
            "CESCALE_CONTROLLER_INTERVAL_S": "0.2",
            "CESCALE_METRICS_INTERVAL_S": "5",
        }
        env.pop("AWS_PROFILE", None)

        def cli(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [*CLI, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
            )

        deployed = cli("deploy")
        assert deployed.returncode == 0, deployed.stderr
        booted = cli("bootstrap")
        assert booted.returncode == 0, booted.stderr
        key = (tmp / ".cescale" / "api-key").read_text().strip()

        port = _free_port()
        logs = tmp / "logs"
        logs.mkdir()
        for name, args in (
            ("serve", ["serve", "--port", str(port), "--log-level", "warning"]),
            ("controller", ["controller", "--interval", "0.2", "--log-level", "warning"]),
        ):
            with (logs / f"{name}.log").open("w") as log:
                processes.append(
                    subprocess.Popen(
                        [*CLI, *args], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
                    )
                )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            for process in processes:
                assert process.poll() is None, _tail(logs)
            assert time.monotonic() < deadline, "the API did not become ready"
            time.sleep(0.2)
        yield Deployment(standin, base, {"Authorization": f"Bearer {key}"}, deployed.stdout, logs)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        standin.close()
        postgres.drop_database(database)


def _tail(logs: Path) -> str:
    return "\n".join(
        f"--- {path.name}\n" + "\n".join(path.read_text().splitlines()[-30:])
        for path in sorted(logs.glob("*.log"))
    )


def _wait_all(deployment: Deployment, ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Poll until every job has ended; fail early if a process died."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    done: dict[str, dict[str, Any]] = {}
    while len(done) < len(ids):
        for label, job_id in ids.items():
            if label in done:
                continue
            job = httpx.get(
                f"{deployment.base}/v1/jobs/{job_id}", headers=deployment.auth, timeout=10
            ).json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                done[label] = job
        assert time.monotonic() < deadline, f"jobs still running: {set(ids) - set(done)}"
        time.sleep(0.5)
    return done


def test_the_sample_jobs_run_to_success_on_aws(deployment: Deployment) -> None:
    assert "deployed 4 functions" in deployment.deploy_output
    ids = {}
    for label, spec in _jobs().items():
        created = httpx.post(
            f"{deployment.base}/v1/jobs", json=spec, headers=deployment.auth, timeout=30
        )
        assert created.status_code == 201, created.text
        ids[label] = created.json()["id"]
    jobs = _wait_all(deployment, ids)
    for label, job in jobs.items():
        assert job["status"] == "succeeded", (label, job["status_reason"], _tail(deployment.logs))

    # Real results, from the handlers' own answers.
    for label in ("hpo", "byo"):
        best = jobs[label]["result"]["best"]
        assert 0.25 < best["score"] <= 1.0, (label, best)  # chance is 0.1 (10 digits)
        assert best["loss"] is not None and best["loss"] > 0
        assert best["checkpoint"].startswith(f"s3://{BUCKET}/store/")
    training = jobs["training"]["result"]
    assert training["final_loss"] is not None and training["final_loss"] > 0
    assert all(loss is not None for loss in training["losses"])
    assert training["losses"][-1] < training["losses"][0]
    s3 = deployment.standin.client("s3")
    for uri in [jobs["hpo"]["result"]["best"]["checkpoint"], *training["checkpoint"]]:
        key = uri.removeprefix(f"s3://{BUCKET}/")
        assert s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] > 0

    lam = deployment.standin.client("lambda")
    for label, job_id in ids.items():
        # The ledger is exactly the REPORT lines Lambda (the stand-in) wrote for this job.
        reports = [r for r in deployment.standin.reports if r.job_id == job_id]
        assert reports, label
        cost = httpx.get(
            f"{deployment.base}/v1/jobs/{job_id}/cost", headers=deployment.auth, timeout=10
        ).json()
        gb_seconds = sum(Decimal(r.memory_mb) / 1024 * Decimal(r.billed_ms) / 1000 for r in reports)
        # each invocation's charge in the ledger's unit, integer picodollars
        expected = sum(
            _pico(Decimal(r.memory_mb) / 1024 * Decimal(r.billed_ms) / 1000 * GB_SECOND_USD)
            + _pico(REQUEST_USD)
            for r in reports
        )
        assert cost["invocations"] == len(reports), label
        assert cost["gb_seconds"] == pytest.approx(float(gb_seconds), abs=1e-6), label
        assert cost["total_usd"] == pytest.approx(float(expected), rel=1e-12), label

        # Memory moved through aliases as the timeline says: each size it names is alias
        # mem-<MB> of the function, on a version with exactly that memory.
        timeline = httpx.get(
            f"{deployment.base}/v1/jobs/{job_id}/timeline", headers=deployment.auth, timeout=10
        ).json()["events"]
        changes = [e["detail"] for e in timeline if e["type"] == "allocation.changed"]
        assert all(c["state"] in ("applied", "intent") for c in changes), (label, changes)
        sizes = {(c["function"], c["to_mb"]) for c in changes if c["state"] == "applied"}
        assert sizes, (label, changes)  # memory did move, and was applied
        sizes |= {(r.function, r.memory_mb) for r in reports}
        assert sizes, label
        for function, memory_mb in sizes:
            alias = lam.get_alias(FunctionName=function, Name=f"mem-{memory_mb}")
            version = lam.get_function_configuration(
                FunctionName=function, Qualifier=alias["FunctionVersion"]
            )
            assert version["MemorySize"] == memory_mb, (label, function, memory_mb)
        # Every invocation ran through the alias of its size, never $LATEST.
        assert all(r.alias == f"mem-{r.memory_mb}" for r in reports), label

    # The user's function ran only through the service's copy; its own $LATEST is untouched.
    user = lam.get_function_configuration(FunctionName=USER_FUNCTION)
    assert user["MemorySize"] == 2048
    assert lam.list_aliases(FunctionName=USER_FUNCTION)["Aliases"] == []
    byo_functions = {r.function for r in deployment.standin.reports if r.job_id == ids["byo"]}
    assert byo_functions == {f"cescale-byo-{USER_FUNCTION}"}
