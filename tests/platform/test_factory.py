"""The platform is chosen by settings: the emulator by default, AWS when configured."""

from __future__ import annotations

from service.platform.aws.lambda_backend import AwsPlatform
from service.platform.clock import VirtualClock
from service.platform.emulator.backend import EmulatorPlatform
from service.platform.factory import build_platform
from service.platform.interface import Platform
from service.settings import Settings


def test_the_default_backend_is_the_emulator() -> None:
    clock = VirtualClock(5.0)
    platform = build_platform(Settings(backend="emulator"), clock=clock, seed=1)
    try:
        assert isinstance(platform, EmulatorPlatform) and isinstance(platform, Platform)
        assert platform.clock is clock
    finally:
        platform.close()


def test_the_aws_backend_uses_the_configured_region_and_endpoint(
    fake_aws_credentials: None,
) -> None:
    settings = Settings(
        backend="aws",
        aws_region="eu-west-1",
        aws_endpoint_url="http://127.0.0.1:4566",
        store_url="s3://bucket/prefix",
    )
    platform = build_platform(settings)
    try:
        assert isinstance(platform, AwsPlatform) and isinstance(platform, Platform)
        for client in (
            platform.clients.lambda_control,
            platform.clients.lambda_invoke,
            platform.clients.cloudwatch,
            platform.clients.logs,
        ):
            assert client.meta.region_name == "eu-west-1"
            assert client.meta.endpoint_url == "http://127.0.0.1:4566"
        assert platform.clients.lambda_invoke.meta.config.retries["total_max_attempts"] == 1
    finally:
        platform.close()
