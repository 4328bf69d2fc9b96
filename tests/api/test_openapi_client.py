"""A client generated with openapi-python-client from a live server's /openapi.json works.

openapi-python-client cannot be installed next to the project (it pins an older typer), so it
lives in a venv of its own under the user's cache directory, made once per generator version
and reused; a file lock keeps two pytest processes from building it at the same time. Making it
needs PyPI; without network the test fails and says so (it is not skipped).

Each run generates the client from the live document into a temporary directory and runs a
small script with the generator venv's Python and that directory on its path (installing each
generated client into the shared venv would let two test runs overwrite each other's).
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import HPO_SPEC
from tests.api.test_live_server import serve

GENERATOR = "openapi-python-client==0.29.1"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cescale-tests"
VENV = CACHE / f"openapi-client-{GENERATOR.split('==')[1]}"
CONFIG = "package_name_override: cescale_client\npost_hooks: []\n"

CLIENT_SCRIPT = """
import json, sys, uuid
from cescale_client import AuthenticatedClient
from cescale_client.api.jobs import cancel_job, get_job, list_jobs, submit_job
from cescale_client.models import HpoJobSpec, JobOut, JobPage, Problem, ValidationIssue

url, key, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
client = AuthenticatedClient(base_url=url, token=key, raise_on_unexpected_status=True)
out = {}

created = submit_job.sync_detailed(client=client, body=HpoJobSpec.from_dict(spec))
assert isinstance(created.parsed, JobOut), created
out["submit"] = [int(created.status_code), created.parsed.status, created.headers["location"]]

job = get_job.sync(client=client, job_id=created.parsed.id)
assert isinstance(job, JobOut), job
out["get"] = [str(job.id), job.name, job.status]

page = list_jobs.sync(client=client)
assert isinstance(page, JobPage), page
out["list"] = [str(item.id) for item in page.items]

cancelled = cancel_job.sync_detailed(client=client, job_id=job.id)
assert isinstance(cancelled.parsed, JobOut), cancelled
out["cancel"] = [int(cancelled.status_code), cancelled.parsed.status]

missing = get_job.sync(client=client, job_id=uuid.UUID(int=0))
assert isinstance(missing, Problem), missing
out["missing"] = [missing.status, missing.type_, missing.instance]

bad = dict(spec, hpo=dict(spec["hpo"], search_space={"lr": {"uniform": [1.0, 0.5]}}))
invalid = submit_job.sync(client=client, body=HpoJobSpec.from_dict(bad))
assert isinstance(invalid, Problem), invalid
assert all(isinstance(issue, ValidationIssue) for issue in invalid.errors), invalid.errors
out["invalid"] = [invalid.status, invalid.type_, [issue.loc for issue in invalid.errors]]
print(json.dumps(out))
"""


def _run(command: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, **kwargs)
    if done.returncode != 0:
        pytest.fail(
            f"{what} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    return done


def _works(python: Path) -> bool:
    """A venv left by an earlier run still runs (its base interpreter may have gone)."""
    check = [str(python), "-c", "import openapi_python_client"]
    return python.exists() and subprocess.run(check, capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def generator_python() -> Path:
    """The Python of a venv holding openapi-python-client (built once, then reused)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    python = VENV / "bin" / "python"
    ready = VENV / ".ready"
    with (CACHE / f"{VENV.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not ready.exists() or not _works(python):
            _run([sys.executable, "-m", "venv", "--clear", str(VENV)], "making the venv")
            installed = subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", GENERATOR],
                capture_output=True,
                text=True,
                timeout=900,
            )
            if installed.returncode != 0:
                pytest.fail(
                    f"could not install {GENERATOR} into {VENV}: this test needs network "
                    f"access to PyPI the first time (then the venv is reused).\n"
                    f"{installed.stdout[-2000:]}{installed.stderr[-2000:]}"
                )
            ready.write_text(GENERATOR + "\n")
    return python


def test_a_generated_client_submits_reads_cancels_and_gets_typed_problems(
    tmp_path, generator_python
):
    with serve(tmp_path, "client") as server:
        document = httpx.get(f"{server.base}/openapi.json", timeout=30).json()
        (tmp_path / "openapi.json").write_text(json.dumps(document))
        (tmp_path / "config.yaml").write_text(CONFIG)
        _run(
            [
                str(generator_python.parent / "openapi-python-client"),
                "generate",
                "--path",
                "openapi.json",
                "--meta",
                "none",
                "--config",
                "config.yaml",
                "--fail-on-warning",
            ],
            "openapi-python-client generate",
            cwd=tmp_path,
        )
        assert (tmp_path / "cescale_client" / "api" / "jobs" / "submit_job.py").exists()
        done = _run(
            [
                str(generator_python),
                "-c",
                CLIENT_SCRIPT,
                server.base,
                server.auth["Authorization"].removeprefix("Bearer "),
                json.dumps(HPO_SPEC),
            ],
            "the generated client",
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(tmp_path)},
        )
        out = json.loads(done.stdout)

    status, job_status, location = out["submit"]
    assert (status, job_status) == (201, "pending")
    job_id, name, _ = out["get"]
    assert location == f"/v1/jobs/{job_id}" and name == HPO_SPEC["name"]
    assert out["list"] == [job_id]
    assert out["cancel"] == [200, "cancelled"]  # the control loop is off: the job was pending
    assert out["missing"] == [
        404,
        "urn:cescale:problem:not-found",
        "/v1/jobs/00000000-0000-0000-0000-000000000000",
    ]
    status, problem_type, locations = out["invalid"]
    assert (status, problem_type) == (422, "urn:cescale:problem:validation-error")
    assert locations == [["body", "hpo", "search_space", "lr"]]
