"""`cescale package`: the zip holds the handlers and imports on its own; the Dockerfile fits."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

from service.workloads.packaging import MANIFEST, RUNTIME_REQUIREMENTS, build_package
from service.workloads.registry import BUILTIN_HANDLERS, TRAINING_HANDLERS

from .conftest import ROOT

# Imports the handlers from the zip alone: the zip goes first on sys.path and the project's
# editable install is switched off, so nothing can come from the working tree.
_IMPORT_FROM_ZIP = r"""
import json, sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()
                    and "editable" not in getattr(f, "__name__", "").lower()]
sys.path.insert(0, sys.argv[1])
from service.workloads.registry import load_handler
handler = load_handler("service.workloads.handlers.logreg_trial")
import service.workloads.handlers as module
print(json.dumps({"file": module.__file__, "response": handler(json.loads(sys.argv[2]), None)}))
"""


def test_package_zip_has_the_handlers_and_a_manifest(tmp_path):
    built = build_package(tmp_path / "dist" / "handlers.zip")
    with zipfile.ZipFile(built["zip"]) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read(MANIFEST))
    assert {
        "service/__init__.py",
        "service/workloads/__init__.py",
        "service/workloads/handlers.py",
        "service/workloads/sdk.py",
        "service/workloads/schema/event.schema.json",
        "service/workloads/schema/response.schema.json",
    } <= names
    assert not any("__pycache__" in name or name.startswith("service/api") for name in names)
    assert manifest["handlers"]["builtin:mlp"] == {
        "hpo": {
            "path": BUILTIN_HANDLERS["builtin:mlp"],
            "lambda_handler": "service.workloads.handlers.mlp_trial",
        },
        "training": {
            "path": TRAINING_HANDLERS["builtin:mlp"],
            "lambda_handler": "service.workloads.handlers.mlp_training_worker",
        },
    }


def test_package_is_reproducible(tmp_path):
    first = build_package(tmp_path / "a.zip")
    second = build_package(tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    assert first["files"] == second["files"]


def test_handlers_import_and_run_from_the_zip(tmp_path, make_event):
    zip_path = tmp_path / "handlers.zip"
    build_package(zip_path)
    event = make_event(dataset="builtin:synthetic?n=500&d=5")
    completed = subprocess.run(
        [sys.executable, "-c", _IMPORT_FROM_ZIP, str(zip_path), json.dumps(event)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["file"].startswith(str(zip_path))
    assert result["response"]["epochs_done"] == 1
    assert "error" not in result["response"]


def test_dockerfile_uses_the_lambda_base_image_and_a_real_handler():
    dockerfile = (ROOT / "docker" / "lambda.Dockerfile").read_text()
    assert "FROM public.ecr.aws/lambda/python:3.11" in dockerfile
    assert "COPY service/workloads" in dockerfile
    cmd = next(line for line in dockerfile.splitlines() if line.startswith("CMD"))
    handler = json.loads(cmd.removeprefix("CMD").strip())[0]
    module, _, attribute = handler.rpartition(".")
    assert f"{module}:{attribute}" in BUILTIN_HANDLERS.values()


def test_dockerfile_installs_what_the_manifest_says_the_handlers_need():
    dockerfile = (ROOT / "docker" / "lambda.Dockerfile").read_text()
    for requirement in RUNTIME_REQUIREMENTS:
        spec = requirement.split("#")[0].strip()
        assert f'"{spec}"' in dockerfile or "<" not in spec, spec
