"""CPU time per invocation from Lambda Insights on the AWS backend, against a moto server.

A function with the LambdaInsightsExtension layer writes one performance event per invocation
to ``/aws/lambda-insights``; the events are put here into moto's CloudWatch Logs as Lambda
Insights would. Moto has no Insights layer of its own: one named ``LambdaInsightsExtension``
is published in its account, which is how the backend recognises the extension (by name).
Moto ignores JSON filter patterns, so another function's events reach the backend here: they
must be told apart from the message itself.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from service.platform.aws.clients import make_clients
from service.platform.aws.insights import LOG_GROUP, filter_pattern
from service.platform.aws.lambda_backend import AwsPlatform
from tests.platform.conftest import REGION, MotoServer
from tests.platform.harness import _ZIP


def insights_event(function: str, request_id: str, cpu_ms: float, **more: Any) -> str:
    """A performance event as Lambda Insights logs it (embedded metric format; the shape of
    AWS's example event, trimmed)."""
    return json.dumps(
        {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": "LambdaInsights",
                        "Dimensions": [["function_name"], ["function_name", "version"]],
                        "Metrics": [
                            {"Name": "used_memory_max", "Unit": "Megabytes"},
                            {"Name": "cpu_total_time", "Unit": "Milliseconds"},
                            {"Name": "init_duration", "Unit": "Milliseconds"},
                        ],
                    }
                ],
            },
            "event_type": "performance",
            "function_name": function,
            "version": "3",
            "request_id": request_id,
            "duration": 45191,
            "cold_start": False,
            "used_memory_max": 63,
            "total_memory": 256,
            "cpu_user_time": cpu_ms - 50,
            "cpu_system_time": 50,
            "cpu_total_time": cpu_ms,
            **more,
        }
    )


@dataclass
class Insights:
    platform: AwsPlatform
    logs: Any
    with_layer: str  # a function with the Insights extension's layer
    without_layer: str  # one without
    calls: list[str]  # FilterLogEvents requests the platform made, by log group

    def put(self, *messages: str) -> None:
        """Log these messages to /aws/lambda-insights now, as the extension does."""
        with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
            self.logs.create_log_group(logGroupName=LOG_GROUP)
        stream = uuid.uuid4().hex
        self.logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
        stamp = int(time.time() * 1000)
        self.logs.put_log_events(
            logGroupName=LOG_GROUP,
            logStreamName=stream,
            logEvents=[{"timestamp": stamp, "message": message} for message in messages],
        )

    def cpu_times(self, function: str, request_ids: set[str]) -> dict[str, float]:
        now = time.time()
        return self.platform.find_cpu_times(function, now - 600, now + 60, frozenset(request_ids))


@pytest.fixture
def insights(moto_server: MotoServer) -> Iterator[Insights]:
    endpoint = moto_server.endpoint
    lambda_ = boto3.client("lambda", region_name=REGION, endpoint_url=endpoint)
    iam = boto3.client("iam", region_name=REGION, endpoint_url=endpoint)
    logs = boto3.client("logs", region_name=REGION, endpoint_url=endpoint)
    try:
        role = iam.create_role(RoleName="cescale-insights", AssumeRolePolicyDocument="{}")
    except iam.exceptions.EntityAlreadyExistsException:
        role = iam.get_role(RoleName="cescale-insights")
    layer = lambda_.publish_layer_version(
        LayerName="LambdaInsightsExtension", Content={"ZipFile": _ZIP}
    )["LayerVersionArn"]
    names = {}
    for key, layers in (("with_layer", [layer]), ("without_layer", [])):
        names[key] = f"insights-{uuid.uuid4().hex[:8]}"
        lambda_.create_function(
            FunctionName=names[key],
            Runtime="python3.11",
            Role=role["Role"]["Arn"],
            Handler="handler.handler",
            Code={"ZipFile": _ZIP},
            Layers=layers,
        )
    platform = AwsPlatform(make_clients(REGION, endpoint), sleep=lambda _: None)
    calls: list[str] = []
    platform.clients.logs.meta.events.register(
        "provide-client-params.cloudwatch-logs.FilterLogEvents",
        lambda params, **_: calls.append(params["logGroupName"]),
    )
    for name in names.values():
        platform.memory_of(name)  # reads the configuration, as the loop does before invoking
    yield Insights(platform, logs, calls=calls, **names)
    platform.close()
    with contextlib.suppress(logs.exceptions.ResourceNotFoundException):
        logs.delete_log_group(logGroupName=LOG_GROUP)


def test_cpu_times_are_read_by_request_id_from_the_insights_log_group(insights):
    fn, other = insights.with_layer, insights.without_layer
    insights.put(
        insights_event(fn, "a", 2260.0),
        insights_event(fn, "b", 6690),
        insights_event(other, "c", 999.0),  # another function's run: not ours
        insights_event(fn, "d", 12.5),  # ours, but not asked for
        insights_event(fn, "e", 5.0, event_type="shutdown"),  # not a performance event
        insights_event(fn, "f", 5.0, cpu_total_time="5"),  # malformed figures are skipped
        insights_event(fn, "g", 5.0, cpu_total_time=None),
        json.dumps({"function_name": fn, "request_id": "h"}),
        "START RequestId: i",  # not JSON at all
        json.dumps([fn, "j", 5.0]),
    )
    asked = {"a", "b", "c", "e", "f", "g", "h", "i", "j", "k"}  # k: its event is not in yet
    assert insights.cpu_times(fn, asked) == {"a": 2260.0, "b": 6690.0}
    assert insights.calls == [LOG_GROUP]


def test_a_function_without_insights_has_none_and_costs_no_call(insights):
    insights.put(insights_event(insights.without_layer, "c", 999.0))
    assert insights.cpu_times(insights.without_layer, {"c"}) == {}
    assert insights.calls == []
    # the lambda_insights setting says every function has it: then its events are read
    insights.platform.lambda_insights = True
    assert insights.cpu_times(insights.without_layer, {"c"}) == {"c": 999.0}


def test_no_insights_log_group_yet_means_no_cpu_times_rather_than_an_error(insights):
    with contextlib.suppress(insights.logs.exceptions.ResourceNotFoundException):
        insights.logs.delete_log_group(logGroupName=LOG_GROUP)
    assert insights.cpu_times(insights.with_layer, {"a"}) == {}
    assert insights.calls == [LOG_GROUP]  # asked, and told there is no such group


def test_nothing_to_ask_for_makes_no_call(insights):
    assert insights.cpu_times(insights.with_layer, set()) == {}
    assert insights.calls == []


def test_the_filter_pattern_selects_one_functions_performance_events():
    assert filter_pattern("cescale-mlp-training") == (
        '{ ($.event_type = "performance") && ($.function_name = "cescale-mlp-training") }'
    )
