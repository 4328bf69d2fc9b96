"""What an invocation costs, in exact decimal dollars.

Prices are AWS Lambda's on-demand list prices in us-east-1 (docs/platform.md; AWS Lambda pricing
page, https://aws.amazon.com/lambda/pricing/):

- compute: x86_64 $0.0000166667 per GB-s, arm64 $0.0000133334 per GB-s, where GB is
  memory_mb / 1024 and seconds are the *billed* duration (duration + init, rounded up to 1 ms);
- requests: $0.20 per million, for every invocation that reached Lambda.

The architecture is the one the function really ran on (`InvokeResult.architecture`, read from
the function's configuration), not what a job spec claims.

An invocation that reached Lambda but whose REPORT line was not seen (a truncated log tail, a
read timeout) is billed its request at once; its duration charge is unknown until the REPORT is
found in CloudWatch Logs, so its `Bill` is not `reported` and the ledger marks it unreconciled.

Not modelled: the free tier, volume discount tiers past 6 billion GB-s a month, ephemeral
storage above 512 MB, provisioned concurrency. A throttled invocation is neither run nor billed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from service.domain.lambda_limits import GB_SECOND_USD, REQUEST_USD
from service.platform.interface import Architecture, ErrorKind, InvokeResult, Report

_MB_PER_GB = Decimal(1024)
_MS_PER_S = Decimal(1000)


@dataclass(frozen=True)
class Bill:
    """One invocation's charges. `reported` False: it reached Lambda but its REPORT line is
    missing, so `compute_usd` (0 here) is still to be reconciled from the logs."""

    compute_usd: Decimal
    request_usd: Decimal
    reported: bool

    @property
    def total_usd(self) -> Decimal:
        return self.compute_usd + self.request_usd


def compute_usd(report: Report, architecture: Architecture = "x86_64") -> Decimal:
    """Duration charge: billed GB-seconds times the architecture's rate."""
    gb = Decimal(report.memory_mb) / _MB_PER_GB
    seconds = Decimal(report.billed_ms) / _MS_PER_S
    return gb * seconds * GB_SECOND_USD[architecture]


def request_usd(report: Report | None = None) -> Decimal:
    """Request charge of one invocation that reached Lambda, whether or not its REPORT is known
    (the argument is ignored; a throttled invocation never reaches this: see `bill`)."""
    return REQUEST_USD


def total(report: Report | None, architecture: Architecture = "x86_64") -> Decimal:
    """Everything one invocation with this REPORT costs; zero for one that never ran."""
    if report is None:
        return Decimal(0)
    return compute_usd(report, architecture) + REQUEST_USD


def bill(result: InvokeResult, architecture: Architecture = "x86_64") -> Bill:
    """The charges of an invocation result. Throttled: free (never ran). Otherwise the request,
    plus the duration charge when the REPORT is known. Priced at the architecture the result
    says the function ran on; `architecture` only when the result does not say."""
    if result.error is ErrorKind.THROTTLED:
        return Bill(Decimal(0), Decimal(0), reported=True)
    if result.report is None:
        return Bill(Decimal(0), REQUEST_USD, reported=False)
    arch = result.architecture or architecture
    return Bill(compute_usd(result.report, arch), REQUEST_USD, reported=True)


def result_usd(result: InvokeResult, architecture: Architecture = "x86_64") -> Decimal:
    """What the result is known to cost so far (see `bill`)."""
    return bill(result, architecture).total_usd
