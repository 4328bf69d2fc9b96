"""CloudWatch `GetMetricData` for a function's AWS/Lambda metrics (and Lambda Insights memory).

Metrics arrive at 1-minute granularity and late; a period with no datapoint is left out of the
series, never filled with zero (docs/platform.md: a missing datapoint is unknown). None of the
AWS/Lambda metrics is memory used: that comes from Lambda Insights' `used_memory_max` when the
extension is enabled on the function, otherwise from REPORT lines (`logs.py`).

A variant (alias) is selected with the `Resource` dimension ``<function>:<alias>``, which Lambda
publishes for invocations through an alias; Insights metrics exist per function only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.platform.interface import Datapoint, FunctionMetrics

_QUERIES = (
    # (query id, namespace, metric, statistic, field of FunctionMetrics)
    ("invocations", "AWS/Lambda", "Invocations", "Sum", "invocations"),
    ("duration_avg", "AWS/Lambda", "Duration", "Average", "duration_avg"),
    ("duration_max", "AWS/Lambda", "Duration", "Maximum", "duration_max"),
    ("errors", "AWS/Lambda", "Errors", "Sum", "errors"),
    ("throttles", "AWS/Lambda", "Throttles", "Sum", "throttles"),
)
_INSIGHTS = ("memory_used_max", "LambdaInsights", "used_memory_max", "Maximum", "memory_used_max")


def metric_queries(
    function: str, period_s: int, qualifier: str | None, insights: bool
) -> list[dict[str, Any]]:
    dimensions = [{"Name": "FunctionName", "Value": function}]
    if qualifier is not None:
        dimensions.append({"Name": "Resource", "Value": f"{function}:{qualifier}"})
    queries = [
        _query(query_id, namespace, metric, stat, period_s, dimensions)
        for query_id, namespace, metric, stat, _ in _QUERIES
    ]
    if insights:
        query_id, namespace, metric, stat, _ = _INSIGHTS
        queries.append(
            _query(
                query_id,
                namespace,
                metric,
                stat,
                period_s,
                [{"Name": "function_name", "Value": function}],
            )
        )
    return queries


def fetch_metrics(
    cloudwatch: Any,
    function: str,
    start: float,
    end: float,
    *,
    period_s: int = 60,
    qualifier: str | None = None,
    insights: bool = False,
) -> FunctionMetrics:
    queries = metric_queries(function, period_s, qualifier, insights)
    fields = {q[0]: q[4] for q in (*_QUERIES, _INSIGHTS)}
    points: dict[str, dict[float, float]] = {field: {} for field in fields.values()}
    request: dict[str, Any] = {
        "MetricDataQueries": queries,
        "StartTime": datetime.fromtimestamp(start, UTC),
        "EndTime": datetime.fromtimestamp(end, UTC),
        "ScanBy": "TimestampAscending",
    }
    while True:
        response = cloudwatch.get_metric_data(**request)
        for result in response.get("MetricDataResults", []):
            series = points[fields[result["Id"]]]
            stamps, values = result.get("Timestamps", []), result.get("Values", [])
            for stamp, value in zip(stamps, values, strict=False):
                series[stamp.timestamp()] = float(value)
        token = response.get("NextToken")
        if not token:
            break
        request["NextToken"] = token
    return FunctionMetrics(
        function=function,
        period_s=period_s,
        **{field: _sorted(series) for field, series in points.items()},
    )


def _query(
    query_id: str,
    namespace: str,
    metric: str,
    stat: str,
    period_s: int,
    dimensions: list[dict[str, str]],
) -> dict[str, Any]:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dimensions},
            "Period": period_s,
            "Stat": stat,
        },
        "ReturnData": True,
    }


def _sorted(series: dict[float, float]) -> tuple[Datapoint, ...]:
    return tuple(sorted(series.items()))
