"""Deploying the built-in handlers as Lambda functions (what `cescale deploy` does).

One function per built-in workload and job kind (``cescale-mlp-hpo``, ...), all from one code
package: the zip of `service.workloads.packaging` (the third-party libraries then come from a
layer) or one container image whose command is set per function. A function that exists gets
the new code and configuration; every ``mem-<MB>`` variant alias of it is then re-published at
its size (`AwsPlatform.put_function` → `refresh_variants`), so no alias keeps running old code.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.platform.aws.lambda_backend import AwsPlatform, FunctionCode

RUNTIME = "python3.11"
INITIAL_MEMORY_MB = 1024  # $LATEST's size on creation; jobs run the mem-<MB> variants
INITIAL_TIMEOUT_S = 300  # jobs set their own (workload.timeout_s)


@dataclass(frozen=True)
class Target:
    """One function to deploy: its name and Lambda's Handler setting (``module.function``)."""

    name: str
    handler: str


@dataclass(frozen=True)
class Deployed:
    name: str
    outcome: str  # created, updated, unchanged
    republished: list[str] = field(default_factory=list)


def package_zip() -> bytes:
    """The handler zip of `cescale package`, built in a temporary directory."""
    from service.workloads.packaging import build_package

    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "cescale-handlers.zip"
        build_package(out)
        return out.read_bytes()


def deploy(
    platform: AwsPlatform,
    targets: list[Target],
    *,
    role_arn: str,
    architecture: str = "x86_64",
    zip_bytes: bytes | None = None,
    image_uri: str | None = None,
    layers: list[str] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Deployed]:
    """Create or update every target; raises `PlatformError` on the first one that fails."""
    if (zip_bytes is None) == (image_uri is None):
        raise ValueError("give exactly one of zip_bytes and image_uri")
    done = []
    for target in targets:
        config: dict[str, Any] = {"Role": role_arn}
        if image_uri is not None:
            code = FunctionCode({"ImageUri": image_uri}, architecture, "Image")
            config["ImageConfig"] = {"Command": [target.handler]}
        else:
            assert zip_bytes is not None
            code = FunctionCode({"ZipFile": zip_bytes}, architecture)
            config |= {"Handler": target.handler, "Runtime": RUNTIME}
        if layers:
            config["Layers"] = list(layers)
        progress(f"{target.name}: deploying ({architecture}, handler {target.handler})")
        outcome, republished = platform.put_function(
            target.name,
            code,
            config,
            initial={"MemorySize": INITIAL_MEMORY_MB, "Timeout": INITIAL_TIMEOUT_S},
        )
        line = f"{target.name}: {outcome}"
        if republished:
            line += f"; re-published {', '.join(sorted(republished, key=_size))} with the new code"
        progress(line)
        done.append(Deployed(target.name, outcome, republished))
    return done


def _size(alias: str) -> int:
    return int(alias.rpartition("-")[2]) if alias.rpartition("-")[2].isdigit() else 0
