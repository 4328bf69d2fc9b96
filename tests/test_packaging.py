"""The wheel stands on its own: built from the repository, installed into a fresh virtualenv
(not editable), it migrates a new database and serves, from a directory outside the source tree.

Dependencies come from this test's environment (its site-packages on PYTHONPATH), so the test
needs no package index; the wheel itself is installed with ``--no-deps --no-index``. Only the
wheel provides ``service`` there: the editable install's path hook is a .pth file, which Python
does not read from PYTHONPATH (the test checks where ``service`` is imported from).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx
import pytest

from service.migrate import head_revision
from tests.test_service_e2e import free_port

ROOT = Path(__file__).resolve().parent.parent


def run(args: list, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str], Path]:
    tmp = tmp_path_factory.mktemp("wheel")
    wheels = tmp / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)])
    (wheel,) = wheels.glob("cescale-*.whl")
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CESCALE_", "PYTHON"))}
    env["PYTHONPATH"] = sysconfig.get_paths()["purelib"]  # the dependencies, not cescale
    work = tmp / "elsewhere"  # no alembic.ini, no migrations/ here
    work.mkdir()
    env |= {
        "CESCALE_DATABASE_URL": f"sqlite:///{work / 'fresh.db'}",
        "CESCALE_STATE_DIR": str(work / "state"),
    }
    return venv, env, work


def test_the_installed_wheel_is_the_one_imported(installed):
    venv, env, work = installed
    where = run(
        [venv / "bin" / "python", "-c", "import service; print(service.__file__)"],
        env=env,
        cwd=work,
    ).stdout.strip()
    assert Path(where).is_relative_to(venv), where
    assert (Path(where).parent / "migrations" / "versions").is_dir()
    version = run([venv / "bin" / "cescale", "--version"], env=env, cwd=work).stdout
    assert version.strip() == f"cescale {_project_version()}"


def test_the_installed_wheel_migrates_and_serves(installed):
    venv, env, work = installed
    cescale = venv / "bin" / "cescale"
    upgraded = run([cescale, "db", "upgrade"], env=env, cwd=work)
    head = head_revision()  # of the source tree the wheel was built from
    assert f"database at {head}" in upgraded.stdout
    assert "Traceback" not in upgraded.stderr
    status = run([cescale, "db", "status"], env=env, cwd=work).stdout
    assert f"current: {head}  head: {head}" in status
    run([cescale, "bootstrap"], env=env, cwd=work)
    key = (work / "state" / "api-key").read_text().strip()
    port = free_port()
    server = subprocess.Popen(
        [cescale, "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"{base}/readyz", timeout=1)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None:
                pytest.fail(f"the installed service exited: {server.stderr.read()}")
            time.sleep(0.1)
        assert ready is not None and ready.status_code == 200
        jobs = httpx.get(f"{base}/v1/jobs", headers={"Authorization": f"Bearer {key}"})
        assert jobs.status_code == 200 and jobs.json()["items"] == []
    finally:
        server.terminate()
        server.wait(timeout=20)


def _project_version() -> str:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
