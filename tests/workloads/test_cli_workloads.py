"""`cescale profile` and `cescale package` as a user runs them."""

from __future__ import annotations

import json
import zipfile

import pytest
import typer
from typer.testing import CliRunner

from service.cli.workloads import register

from .conftest import ROOT

PROFILE_KEYS = {
    "name",
    "cpu_ms",
    "parallel_fraction",
    "max_threads",
    "io_ms",
    "peak_memory_mb",
    "init_ms",
}
SMALL = ["--dataset", "builtin:synthetic?n=2000&d=10", "--repeats", "1"]


@pytest.fixture
def cli():
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_profile_prints_the_emulator_code_profile(cli, tmp_path):
    out = tmp_path / "profiles" / "mlp.json"
    params = json.dumps({"hidden": 32})
    result = cli("profile", "builtin:mlp", *SMALL, "--params", params, "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    profile = json.loads(result.stdout)
    assert set(profile) == PROFILE_KEYS
    assert profile["name"] == "builtin:mlp" and profile["max_threads"] == 2
    assert profile["cpu_ms"] > 0 and profile["init_ms"] > 0 and profile["io_ms"] >= 0
    assert 0.0 <= profile["parallel_fraction"] <= 1.0
    assert 20 < profile["peak_memory_mb"] < 1000
    assert json.loads(out.read_text()) == profile
    # progress, one line per batch of runs, on stderr (stdout stays the JSON)
    assert result.stderr.splitlines() == [
        "profiling: 1 run(s) at 1 thread",
        "profiling: 1 run(s) at 2 threads",
    ]


def test_profile_runs_a_training_worker_and_a_bring_your_own_handler(cli, monkeypatch):
    monkeypatch.chdir(ROOT)  # the handler path is importable from the project root
    worker = cli("profile", "builtin:logreg", "--kind", "training", *SMALL, "--json")
    assert worker.exit_code == 0, worker.output
    byo = cli("profile", "examples.byo_function.handler:handler", *SMALL, "--json")
    assert byo.exit_code == 0, byo.output
    assert json.loads(byo.stdout)["name"] == "examples.byo_function.handler:handler"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["builtin:svm"], "not a built-in workload"),
        (["nothing_here"], "not a built-in workload"),
        (["no.such.module:handler"], "cannot import handler"),
        (["builtin:mlp", "--params", "{lr: 1}"], "--params is not valid JSON"),
        (["builtin:mlp", "--params", "[1, 2]"], "must be a JSON object"),
        (["builtin:mlp", "--params", '{"lr": -1}'], "$.params.lr"),
        (["builtin:mlp", "--dataset", "builtin:synthetic?n=x"], "not an integer"),
        (["builtin:mlp", "--kind", "inference"], "--kind must be"),
    ],
)
def test_profile_bad_input_is_a_usage_error_without_traceback(cli, args, message):
    result = cli("profile", *args, "--repeats", "1")
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


@pytest.mark.parametrize("content", [b"garbage", b"PK\x03\x04 truncated"])
def test_profile_unreadable_dataset_file_is_a_usage_error(cli, tmp_path, content):
    (tmp_path / "broken.npz").write_bytes(content)
    result = cli("profile", "builtin:logreg", "--dataset", f"file://{tmp_path}/broken.npz")
    assert result.exit_code == 2, result.output
    assert "is not a readable .npz" in result.stderr
    assert "Traceback" not in result.output and 'File "' not in result.output


def test_profile_unreachable_s3_is_one_clear_line_not_a_traceback(cli, monkeypatch):
    """Not the caller's input (exit 1), but still one line naming the failure."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on port 9
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    result = cli("profile", "builtin:logreg", "--dataset", "s3://bucket/data.npz")
    assert result.exit_code == 1, result.output
    *progress, error = result.stderr.strip().splitlines()
    assert error.startswith("error: EndpointConnectionError: ")  # one line, after the progress
    assert all(line.startswith("profiling: ") for line in progress)
    assert "Traceback" not in result.output


def test_package_writes_the_zip(cli, tmp_path):
    out = tmp_path / "dist" / "cescale-handlers.zip"
    result = cli("package", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    built = json.loads(result.stdout)
    assert built["zip"] == str(out)
    with zipfile.ZipFile(out) as archive:
        assert "service/workloads/handlers.py" in archive.namelist()
    human = cli("package", "--out", str(out))
    assert "service.workloads.handlers.logreg_training_worker" in human.stdout
