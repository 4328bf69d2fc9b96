"""Fixtures of the platform tests: a moto server on 127.0.0.1 and fake AWS credentials.

The credentials are moto's placeholders, set in the environment so that boto3's standard chain
finds them first (and never looks further, e.g. at an instance metadata endpoint).
"""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from service.platform.aws.clients import make_clients
from service.platform.aws.lambda_backend import AwsPlatform
from tests.lambda_standin import CREDENTIALS, LambdaStandIn

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
REGION = "us-east-1"


@pytest.fixture(scope="module")
def fake_aws_credentials() -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in (*FAKE_CREDENTIALS, "AWS_PROFILE")}
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.pop("AWS_PROFILE", None)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@dataclass(frozen=True)
class MotoServer:
    endpoint: str

    def post(self, path: str, body: dict) -> bytes:
        request = urllib.request.Request(
            self.endpoint + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read()


@pytest.fixture(scope="module")
def moto_server(fake_aws_credentials: None) -> Iterator[MotoServer]:
    """A moto server in this process, Lambda without Docker ("lambda-simple")."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    moto = MotoServer(f"http://127.0.0.1:{port}")
    moto.post("/moto-api/config", {"lambda": {"use_docker": False}})
    yield moto
    moto.post("/moto-api/config", {"lambda": {"use_docker": True}})  # moto's config is global
    server.stop()


@pytest.fixture(scope="module")
def standin_patches() -> dict[tuple[object, str], object]:
    """What a module replaces while its ``standin`` runs, as (object, attribute) → value: moto
    where it lacks an API's part (a module overrides this fixture)."""
    return {}


@pytest.fixture(scope="module")
def standin(standin_patches: dict[tuple[object, str], object]) -> Iterator[LambdaStandIn]:
    """moto with the Lambda runtime stand-in (``tests/lambda_standin.py``), one per module,
    with its credentials in the environment."""
    saved = pytest.MonkeyPatch()
    for (target, name), value in standin_patches.items():
        saved.setattr(target, name, value)
    for key, value in CREDENTIALS.items():
        saved.setenv(key, value)
    saved.delenv("AWS_PROFILE", raising=False)
    lambda_standin = LambdaStandIn(max_running=2, max_environments=4)
    yield lambda_standin
    lambda_standin.close()
    saved.undo()


@pytest.fixture
def platform(standin: LambdaStandIn) -> Iterator[AwsPlatform]:
    """The AWS backend against the module's ``standin``."""
    aws = AwsPlatform(make_clients("us-east-1", standin.endpoint), update_poll_s=0.01)
    yield aws
    aws.close()
