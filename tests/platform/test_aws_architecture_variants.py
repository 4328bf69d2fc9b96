"""Variants on a named architecture (architecture "auto") on AWS, against moto in server mode
with the Lambda runtime stand-in: UpdateFunctionCode with ``Architectures`` moves $LATEST, the
version is published and aliased ``mem-<MB>-<architecture>``, and $LATEST moves back."""

from __future__ import annotations

import dataclasses

import pytest
from moto.awslambda.models import LambdaFunction

from service.platform.aws.clients import make_clients
from service.platform.aws.deploy import deploy
from service.platform.aws.lambda_backend import AwsPlatform, variant_of
from service.platform.interface import VariantNotFoundError
from tests.lambda_standin import LambdaStandIn
from tests.platform.test_aws_deploy import ECHO as DEPLOY_ECHO
from tests.platform.test_aws_deploy import _zip

# A name of its own: moto's backends are per process, so a function this module creates is still
# there for test_aws_deploy's, which expects to create its own
ECHO = dataclasses.replace(DEPLOY_ECHO, name="cescale-echo-architectures")


def _update_code_with_architectures(self, updated_spec):
    """Lambda's UpdateFunctionCode: the code, and ``Architectures`` when given (API
    reference). moto 5.2 takes the code only; this adds the architecture, nothing else."""
    if updated_spec.get("Architectures"):
        self.architectures = updated_spec["Architectures"]
    return _moto_update_code(self, updated_spec)


_moto_update_code = LambdaFunction.update_function_code


@pytest.fixture(scope="module")
def standin_patches() -> dict[tuple[object, str], object]:
    return {(LambdaFunction, "update_function_code"): _update_code_with_architectures}


def _alias_config(lam, name: str, alias: str) -> dict:
    version = lam.get_alias(FunctionName=name, Name=alias)["FunctionVersion"]
    return lam.get_function_configuration(FunctionName=name, Qualifier=version)


def test_an_arm64_variant_runs_beside_the_x86_64_ones_and_latest_stays_put(
    standin: LambdaStandIn, platform: AwsPlatform
) -> None:
    deploy(platform, [ECHO], role_arn=standin.role(), zip_bytes=_zip(1))
    lam = standin.client("lambda")
    with pytest.raises(VariantNotFoundError, match="mem-512-arm64"):
        platform.start_invoke(ECHO.name, {}, memory_mb=512, architecture="arm64")

    assert platform.ensure_variant(ECHO.name, 512) == "mem-512"
    assert platform.ensure_variant(ECHO.name, 512, "arm64") == "mem-512-arm64"
    arm = _alias_config(lam, ECHO.name, "mem-512-arm64")
    assert arm["Architectures"] == ["arm64"] and arm["MemorySize"] == 512
    x86 = _alias_config(lam, ECHO.name, "mem-512")
    assert x86["Architectures"] == ["x86_64"]
    assert arm["CodeSha256"] == x86["CodeSha256"]  # the same code, on the other architecture
    latest = lam.get_function_configuration(FunctionName=ECHO.name)
    assert latest.get("Architectures", ["x86_64"]) == ["x86_64"]  # moved back

    ran = platform.invoke(ECHO.name, {}, memory_mb=512, architecture="arm64")
    assert ran.ok and ran.payload == {"version": 1, "memory": 512}
    assert ran.architecture == "arm64"  # priced as arm64: read from the version it ran
    assert platform.invoke(ECHO.name, {}, memory_mb=512).architecture == "x86_64"

    # a fresh process finds the variant already there: nothing is published again
    versions = len(lam.list_versions_by_function(FunctionName=ECHO.name)["Versions"])
    other = AwsPlatform(make_clients("us-east-1", standin.endpoint), update_poll_s=0.01)
    try:
        assert other.ensure_variant(ECHO.name, 512, "arm64") == "mem-512-arm64"
    finally:
        other.close()
    assert len(lam.list_versions_by_function(FunctionName=ECHO.name)["Versions"]) == versions

    # a redeploy re-publishes it with the new code, still on arm64
    again = deploy(platform, [ECHO], role_arn=standin.role(), zip_bytes=_zip(2))
    assert sorted(again[0].republished) == ["mem-512", "mem-512-arm64"]
    assert _alias_config(lam, ECHO.name, "mem-512-arm64")["Architectures"] == ["arm64"]
    moved = platform.invoke(ECHO.name, {}, memory_mb=512, architecture="arm64")
    assert moved.payload == {"version": 2, "memory": 512} and moved.architecture == "arm64"


def test_variant_aliases_parse_back():
    assert variant_of("mem-1024") == (1024, None)
    assert variant_of("mem-1024-arm64") == (1024, "arm64")
    assert variant_of("mem-1024-x86-64") == (1024, "x86_64")
    assert variant_of("live") is None and variant_of("mem-big-arm64") is None
