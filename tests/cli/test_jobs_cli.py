"""`cescale jobs` against a live `cescale serve` (its own process, embedded SQLite, emulator).

Each command runs as a user runs it: a subprocess, its exit status and its output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.test_service_e2e import free_port

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "service.cli.main"]
HPO = str(ROOT / "examples" / "hpo-digits.json")


class Service:
    def __init__(self, base: str, env: dict[str, str], tmp: Path) -> None:
        self.base = base
        self.env = env
        self.tmp = tmp

    def cli(self, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*CLI, *args],
            env=self.env | env,
            cwd=self.tmp,  # not the repository: the key file comes from CESCALE_STATE_DIR
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def jobs(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.cli("jobs", *args, **kwargs)

    def submit(self, path: str = HPO) -> str:
        done = self.jobs("submit", path, "-o", "json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["id"]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jobs-cli")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CESCALE_")} | {
        "CESCALE_DATABASE_URL": f"sqlite:///{tmp / 'cescale.db'}",
        "CESCALE_STATE_DIR": str(tmp / ".cescale"),
        "CESCALE_CONTROLLER_INTERVAL_S": "0.2",
        "CESCALE_PAGE_SIZE_DEFAULT": "2",  # so that `list` has to follow cursors
        "CESCALE_URL": f"http://127.0.0.1:{port}",
        "CESCALE_LOG_FORMAT": "json",  # the server's log, checked below; the CLI logs nothing
        "PYTHONPATH": str(ROOT),
    }
    run = Service(f"http://127.0.0.1:{port}", env, tmp)
    assert run.cli("db", "upgrade").returncode == 0
    assert run.cli("bootstrap", "--port", str(port)).returncode == 0
    log = (tmp / "serve.log").open("w")
    server = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)],
        env=env,
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{run.base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, "the server exited"
            time.sleep(0.1)
        else:
            pytest.fail("the server did not become ready")
        yield run
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def one_error_line(done: subprocess.CompletedProcess) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in done.stderr
    return lines[0]


def test_submit_and_watch_a_job_to_success(service):
    done = service.jobs("submit", HPO, "--watch", "--interval", "0.5", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("submitted job ")
    job_id = lines[0].split()[2]
    # not a terminal: one plain line per change, with progress, memory per shape and cost
    progress = [line for line in lines if " running: " in line]
    assert progress, done.stdout
    assert any("rung-0" in line and "to deadline" in line for line in progress)
    assert any("memory hidden=" in line and " MB" in line for line in progress)
    assert lines[-1].startswith(f"job {job_id} succeeded in ")
    assert "deadline met" in lines[-1] and "cost $" in lines[-1]

    got = service.jobs("get", job_id, "-o", "json")
    assert got.returncode == 0
    job = json.loads(got.stdout)
    assert job["status"] == "succeeded" and job["result"]["best"]["score"] > 0.8

    table = service.jobs("get", job_id)
    assert table.returncode == 0
    assert job_id in table.stdout and "succeeded" in table.stdout
    assert "result.best" in table.stdout and "completion time" in table.stdout

    cost = json.loads(service.jobs("cost", job_id, "-o", "json").stdout)
    assert cost["total_usd"] > 0 and cost["invocations"] >= 27
    cost_table = service.jobs("cost", job_id).stdout
    assert "rung-0" in cost_table and "total" in cost_table
    assert f"{cost['invocations']}" in cost_table

    timeline = json.loads(service.jobs("timeline", job_id, "-o", "json").stdout)
    types = [e["type"] for e in timeline["events"]]
    assert types[0] == "job.submitted" and types[-1] == "job.succeeded"
    rung0 = next(e for e in timeline["events"] if e["type"] == "stage.finished")
    assert rung0["detail"]["tasks"]["succeeded"] == rung0["detail"]["tasks"]["total"] == 27
    changes = [e for e in timeline["events"] if e["type"] == "allocation.changed"]
    assert {e["detail"]["shape"] for e in changes} == {"hidden=32", "hidden=64", "hidden=256"}
    timeline_table = service.jobs("timeline", job_id).stdout
    assert "allocation.changed" in timeline_table and "hidden=64:" in timeline_table
    assert "[explore]" in timeline_table  # reasons print as text, not Rich markup


def test_serve_logs_each_event_as_one_json_line_with_time_level_and_logger(service):
    """CESCALE_LOG_FORMAT=json: uvicorn's lines and the service's share one format, and the
    control loop's INFO line for each ended job carries its id, status, cost and JCT."""
    job_id = service.submit(str(ROOT / "examples" / "training-digits.json"))
    watched = service.jobs("watch", job_id, "--interval", "0.2", timeout=300)
    assert watched.returncode == 0, watched.stdout + watched.stderr
    records = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the loop logs the end right after its commit
        lines = (service.tmp / "serve.log").read_text().splitlines()
        records = [json.loads(line) for line in lines]  # every line is one JSON object
        ends = [r for r in records if r.get("job_id") == job_id]
        if ends:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"no log line for the end of {job_id}")
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record)
        assert record["time"].endswith("+00:00")
    loggers = {r["logger"] for r in records}
    assert {"uvicorn.error", "service.api.requests", "service.control.service"} <= loggers
    # the access log: one line per request, with the id the response returned as X-Request-Id
    requests = [r for r in records if r["logger"] == "service.api.requests"]
    assert requests and all(len(r["request_id"]) == 32 for r in requests)
    (end,) = ends
    assert end["level"] == "INFO" and end["status"] == "succeeded"
    assert end["cost_usd"] > 0 and end["jct_s"] > 0 and end["deadline_missed"] is False
    assert end["message"].startswith(f"job {job_id} (digits-mlp-training) succeeded: cost $")


def test_watch_of_a_cancelled_job_exits_non_zero(service):
    job_id = service.submit()
    cancelled = service.jobs("cancel", job_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert job_id in cancelled.stdout
    watched = service.jobs("watch", job_id, "--interval", "0.2", timeout=300)
    assert watched.returncode == 1
    assert watched.stdout.strip().splitlines()[-1].startswith(f"job {job_id} cancelled")
    as_json = service.jobs("watch", job_id, "-o", "json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["status"] == "cancelled"
    again = service.jobs("cancel", job_id, "-o", "json")  # a no-op on a cancelled job
    assert again.returncode == 0 and json.loads(again.stdout)["status"] == "cancelled"


def test_list_follows_cursors_and_filters(service):
    ids = [service.submit() for _ in range(3)]
    for job_id in ids[1:]:
        assert service.jobs("cancel", job_id).returncode == 0
    for job_id in ids[1:]:  # a running job ends cancelled once its in-flight work returns
        assert service.jobs("watch", job_id, "--interval", "0.2", timeout=300).returncode == 1
    listed = service.jobs("list", "-o", "json")
    assert listed.returncode == 0
    every = [job["id"] for job in json.loads(listed.stdout)]
    assert set(ids) <= set(every)  # the page size is 2: the CLI followed the cursors
    assert len(every) == len(set(every))
    limited = json.loads(service.jobs("list", "--limit", "3", "-o", "json").stdout)
    assert [job["id"] for job in limited] == every[:3]
    cancelled = json.loads(service.jobs("list", "--status", "cancelled", "-o", "json").stdout)
    assert set(ids[1:]) <= {job["id"] for job in cancelled}
    assert {job["status"] for job in cancelled} == {"cancelled"}
    training = json.loads(service.jobs("list", "--kind", "training", "-o", "json").stdout)
    assert {job["kind"] for job in training} <= {"training"}
    assert not set(ids) & {job["id"] for job in training}
    table = service.jobs("list", "--kind", "hpo")
    assert table.returncode == 0
    for job_id in ids:
        assert job_id in table.stdout  # whole ids, even though stdout is not a terminal
    assert table.stdout.splitlines()[0].split()[:4] == ["ID", "NAME", "KIND", "STATUS"]


def test_api_errors_are_one_line_with_exit_status_1(service):
    bad_key = service.jobs("list", "--api-key", "cesk_nope")
    assert bad_key.returncode == 1
    line = one_error_line(bad_key)
    assert "401" in line and "--api-key" in line

    unknown = service.jobs("get", "00000000-0000-0000-0000-000000000000")
    assert unknown.returncode == 1
    assert "404 Not found" in one_error_line(unknown)

    spec = json.loads(Path(HPO).read_text())
    spec["hpo"]["eta"] = 1
    invalid = service.tmp / "invalid.json"
    invalid.write_text(json.dumps(spec))
    refused = service.jobs("submit", str(invalid))
    assert refused.returncode == 1
    line = one_error_line(refused)
    assert "422" in line and "hpo.eta" in line

    unreachable = service.jobs("list", "--url", f"http://127.0.0.1:{free_port()}")
    assert unreachable.returncode == 1
    assert "cannot reach the service" in one_error_line(unreachable)


def test_bad_usage_exits_2_and_says_why(service):
    missing = service.jobs("submit", str(service.tmp / "nope.json"))
    assert missing.returncode == 2
    assert "spec file not found" in one_error_line(missing)

    broken = service.tmp / "broken.json"
    broken.write_text('{"name": ')
    invalid = service.jobs("submit", str(broken))
    assert invalid.returncode == 2
    assert "is not valid JSON" in one_error_line(invalid)

    empty_state = service.tmp / "elsewhere"
    no_key = service.jobs("list", CESCALE_STATE_DIR=str(empty_state))
    assert no_key.returncode == 2
    line = one_error_line(no_key)
    assert "no API key" in line and str(empty_state / "api-key") in line

    key = (service.tmp / ".cescale" / "api-key").read_text().strip()
    from_env = service.jobs(
        "list", "-o", "json", CESCALE_STATE_DIR=str(empty_state), CESCALE_API_KEY=key
    )
    assert from_env.returncode == 0 and isinstance(json.loads(from_env.stdout), list)
