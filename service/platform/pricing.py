"""What an invocation costs, in exact decimal dollars.

Prices are AWS Lambda's on-demand list prices in us-east-1 (docs/platform.md; AWS Lambda pricing
page, https://aws.amazon.com/lambda/pricing/):

- compute: x86_64 $0.0000166667 per GB-s, arm64 $0.0000133334 per GB-s, where GB is
  memory_mb / 1024 and seconds are the *billed* duration (duration + init, rounded up to 1 ms);
- requests: $0.20 per million.

Not modelled: the free tier, volume discount tiers past 6 billion GB-s a month, ephemeral
storage above 512 MB, provisioned concurrency. A throttled invocation is neither run nor billed.
"""

from __future__ import annotations

from decimal import Decimal

from service.platform.interface import Architecture, ErrorKind, InvokeResult, Report

GB_SECOND_USD: dict[str, Decimal] = {
    "x86_64": Decimal("0.0000166667"),
    "arm64": Decimal("0.0000133334"),
}
REQUEST_USD = Decimal("0.20") / Decimal(1_000_000)
_MB_PER_GB = Decimal(1024)
_MS_PER_S = Decimal(1000)


def compute_usd(report: Report, architecture: Architecture = "x86_64") -> Decimal:
    """Duration charge: billed GB-seconds times the architecture's rate."""
    gb = Decimal(report.memory_mb) / _MB_PER_GB
    seconds = Decimal(report.billed_ms) / _MS_PER_S
    return gb * seconds * GB_SECOND_USD[architecture]


def request_usd(report: Report | None) -> Decimal:
    """Request charge: one request per invocation that ran (has a report)."""
    return REQUEST_USD if report is not None else Decimal(0)


def total(report: Report | None, architecture: Architecture = "x86_64") -> Decimal:
    """Everything one invocation costs; zero for an invocation that never ran."""
    if report is None:
        return Decimal(0)
    return compute_usd(report, architecture) + request_usd(report)


def result_usd(result: InvokeResult, architecture: Architecture = "x86_64") -> Decimal:
    """Cost of an invocation result. Throttled: free. Ambiguous with no report: unknown → 0
    here; the ledger must reconcile it from the logs (`Platform.find_reports`)."""
    if result.error is ErrorKind.THROTTLED:
        return Decimal(0)
    return total(result.report, architecture)
