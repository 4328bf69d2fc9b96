"""boto3 clients for the AWS backend, built from settings.

Credentials come only from boto3's default chain (environment, shared config, SSO, container
or instance role); nothing here reads or stores a secret. Region and endpoint (e.g. a moto
server in tests) come from `Settings.aws_region` / `Settings.aws_endpoint_url`.

Two Lambda clients on purpose:
- `lambda_control` (configuration calls) uses botocore's standard retry mode: those calls are
  reads or conditional updates, safe to repeat;
- `lambda_invoke` makes exactly one attempt per call: botocore would otherwise silently resend
  an Invoke after a read timeout or a 5xx, running the function twice. Its read timeout covers
  Lambda's 900 s maximum run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from service.platform.interface import MAX_TIMEOUT_S


@dataclass(frozen=True)
class AwsClients:
    lambda_control: Any
    lambda_invoke: Any
    cloudwatch: Any
    logs: Any


def make_clients(
    region: str, endpoint_url: str | None = None, *, max_connections: int = 64
) -> AwsClients:
    session = boto3.session.Session()
    control = Config(region_name=region, retries={"mode": "standard"})
    invoke = Config(
        region_name=region,
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=10,
        read_timeout=MAX_TIMEOUT_S + 60,
        max_pool_connections=max_connections,
        tcp_keepalive=True,
    )
    return AwsClients(
        lambda_control=session.client("lambda", endpoint_url=endpoint_url, config=control),
        lambda_invoke=session.client("lambda", endpoint_url=endpoint_url, config=invoke),
        cloudwatch=session.client("cloudwatch", endpoint_url=endpoint_url, config=control),
        logs=session.client("logs", endpoint_url=endpoint_url, config=control),
    )
