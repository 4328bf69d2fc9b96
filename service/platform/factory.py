"""Build the configured platform from settings (`CESCALE_BACKEND`: emulator or aws)."""

from __future__ import annotations

from typing import Any

from service.platform.clock import Clock
from service.platform.interface import Platform


def build_platform(settings: Any, *, clock: Clock | None = None, **options: Any) -> Platform:
    """The settings' backend. `options` go to the backend's constructor (e.g. `seed`,
    `keep_alive_s`, `concurrency_limit` for the emulator; `lambda_insights` for AWS)."""
    if settings.backend == "emulator":
        from service.platform.emulator.backend import EmulatorPlatform

        return EmulatorPlatform(clock, **options)
    if settings.backend == "aws":
        from service.platform.aws.lambda_backend import AwsPlatform

        return AwsPlatform.from_settings(settings, clock=clock, **options)
    raise ValueError(f"unknown backend {settings.backend!r}")
