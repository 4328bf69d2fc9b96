"""The Docker files, checked without a Docker engine (none on the test machines): compose
parses and keeps state in named volumes, the image migrates and creates a first tenant before
serving, and the build context leaves local state and secrets out."""

from __future__ import annotations

import fnmatch
import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"


def dockerfile_env(text: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for block in re.findall(r"^ENV (.+?)(?<!\\)$", text, flags=re.M | re.S):
        env |= dict(re.findall(r"(\w+)=(\S+)", block.replace("\\\n", " ")))
    return env


def test_compose_keeps_keys_and_checkpoints_in_a_named_volume():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    api = compose["services"]["api"]
    state_dir = api["environment"]["CESCALE_STATE_DIR"]
    mounts = dict(volume.split(":", 1) for volume in api["volumes"])
    assert mounts["cescale-state"] == state_dir  # the key file and file:// store live there
    assert "cescale-state" in compose["volumes"] and "pgdata" in compose["volumes"]
    assert api["environment"]["CESCALE_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert api["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
    assert (DOCKER / ".." / api["build"]["dockerfile"]).resolve().is_file()


def test_the_image_migrates_and_creates_a_tenant_before_it_serves():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    env = dockerfile_env(dockerfile)
    assert env["CESCALE_STATE_DIR"] == "/var/lib/cescale"
    assert env["CESCALE_DATABASE_URL"] == "sqlite:////var/lib/cescale/cescale.db"
    assert 'VOLUME ["/var/lib/cescale"]' in dockerfile
    assert 'ENTRYPOINT ["cescale-entrypoint"]' in dockerfile
    assert "COPY docker/entrypoint.sh /usr/local/bin/cescale-entrypoint" in dockerfile
    entrypoint = DOCKER / "entrypoint.sh"
    assert entrypoint.stat().st_mode & 0o111  # executable in the image as in the repository
    subprocess.run(["sh", "-n", str(entrypoint)], check=True)
    script = entrypoint.read_text()
    upgrade, bootstrap, serve = (
        script.index("cescale db upgrade"),
        script.index("cescale bootstrap"),
        script.index('exec "$@"'),
    )
    assert upgrade < bootstrap < serve


def test_the_entrypoint_runs_against_a_fresh_state_directory(tmp_path):
    """What the container does on its first and second start, with this venv's cescale on
    PATH and `true` in place of the server."""
    import os
    import sys

    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CESCALE_")} | {
        "CESCALE_STATE_DIR": str(state),
        "CESCALE_DATABASE_URL": f"sqlite:///{tmp_path / 'cescale.db'}",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    entrypoint = str(DOCKER / "entrypoint.sh")
    first = subprocess.run(
        ["sh", entrypoint, "cescale", "serve", "--help"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.returncode == 0, first.stderr
    key = (state / "api-key").read_text().strip()
    assert "Created tenant 'default'" in first.stdout and key in first.stdout  # printed once
    second = subprocess.run(
        ["sh", entrypoint, "cescale", "serve", "--help"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 0, second.stderr
    assert key not in second.stdout and "Using the API key in" in second.stdout


def test_the_build_context_leaves_out_local_state_and_secrets():
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        return any(
            fnmatch.fnmatch(path, pattern)
            or fnmatch.fnmatch(path, pattern.removeprefix("**/"))
            or path.startswith(pattern.rstrip("/") + "/")
            for pattern in patterns
        )

    for path in (
        ".venv/bin/python",
        ".git/HEAD",
        "cescale.db",
        ".cescale/api-key",
        ".cescale/store/ckpt.npz",
        ".env",
        "benchmarks/out/results.json",
        "service/__pycache__/x.pyc",
    ):
        assert ignored(path), path
    for path in (
        "pyproject.toml",
        "README.md",
        "alembic.ini",
        "migrations/env.py",
        "service/cli/main.py",
        "examples/hpo-digits.json",
        "docker/entrypoint.sh",
    ):
        assert not ignored(path), path
