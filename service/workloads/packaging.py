"""``cescale package``: a Lambda deployment zip of the handler code.

The zip holds ``service/__init__.py`` and the ``service/workloads`` package (code, JSON Schemas,
README) plus ``cescale-handlers.json``, which lists every handler by workload and job kind in
both forms (``module:function`` for the emulator, ``module.function`` for Lambda's Handler
setting). It does not bundle the third-party runtime dependencies — NumPy, jsonschema and, for
``builtin:digits`` only, scikit-learn — because their compiled wheels must match Lambda's
platform: use the container image (``docker/lambda.Dockerfile``) or a Lambda layer built for
``manylinux2014_x86_64``/``aarch64``. boto3 is part of the Lambda Python runtime.

Entries have fixed timestamps and a sorted order, so the same source gives the same bytes and a
code hash that only changes when the code does.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from service.workloads.contract import CONTRACT
from service.workloads.registry import BUILTIN_HANDLERS, TRAINING_HANDLERS, lambda_handler_setting

MANIFEST = "cescale-handlers.json"
RUNTIME_REQUIREMENTS = (
    "numpy>=2,<3",
    "jsonschema>=4,<5",
    "scikit-learn>=1.3,<2  # builtin:digits only (its data file; never imported)",
    "boto3  # s3:// (already in the Lambda Python runtime)",
)
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_INCLUDED_SUFFIXES = (".py", ".json", ".md")


def package_sources() -> dict[str, Path]:
    """Archive name → file, for everything the handlers import from this project."""
    import service
    import service.workloads

    root = Path(service.__file__).resolve().parent
    sources = {"service/__init__.py": root / "__init__.py"}
    workloads = Path(service.workloads.__file__).resolve().parent
    for path in sorted(workloads.rglob("*")):
        if path.is_file() and path.suffix in _INCLUDED_SUFFIXES and "__pycache__" not in path.parts:
            sources[f"service/workloads/{path.relative_to(workloads).as_posix()}"] = path
    return sources


def manifest() -> dict[str, Any]:
    def entry(path: str) -> dict[str, str]:
        return {"path": path, "lambda_handler": lambda_handler_setting(path)}

    return {
        "contract": CONTRACT,
        "handlers": {
            workload: {"hpo": entry(BUILTIN_HANDLERS[workload]), "training": entry(path)}
            for workload, path in TRAINING_HANDLERS.items()
        },
        "runtime_requirements": list(RUNTIME_REQUIREMENTS),
    }


def build_package(out: Path) -> dict[str, Any]:
    """Write the zip to ``out``; returns the manifest plus the archive's path and entries."""
    out.parent.mkdir(parents=True, exist_ok=True)
    contents = manifest()
    names = []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in package_sources().items():
            _add(archive, name, path.read_bytes())
            names.append(name)
        _add(archive, MANIFEST, (json.dumps(contents, indent=2) + "\n").encode())
        names.append(MANIFEST)
    return {**contents, "zip": str(out), "files": names, "bytes": out.stat().st_size}


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16  # readable by the Lambda runtime user
    archive.writestr(info, data)
