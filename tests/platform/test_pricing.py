"""Pricing: Lambda's us-east-1 list prices (docs/platform.md), in exact decimals."""

from __future__ import annotations

from decimal import Decimal

from service.platform import pricing
from service.platform.interface import ErrorKind, InvokeResult, Report
from service.platform.report import billed_ms


def _report(memory_mb: int, billed: int, init: float | None = None) -> Report:
    return Report("r", float(billed), billed, memory_mb, 100, init)


def test_compute_is_billed_gb_seconds_times_the_architecture_rate() -> None:
    report = _report(512, 396)
    assert pricing.compute_usd(report) == Decimal("0.5") * Decimal("0.396") * Decimal(
        "0.0000166667"
    )
    assert pricing.compute_usd(report, "arm64") == Decimal("0.5") * Decimal("0.396") * Decimal(
        "0.0000133334"
    )
    # One GB for one second is exactly the per-GB-s rate.
    assert pricing.compute_usd(_report(1024, 1000)) == Decimal("0.0000166667")


def test_requests_cost_twenty_cents_per_million() -> None:
    assert pricing.request_usd(_report(128, 1)) * 1_000_000 == Decimal("0.20")
    assert pricing.total(_report(1024, 1000)) == Decimal("0.0000166667") + Decimal("0.0000002")


def test_billed_duration_rounds_up_to_the_millisecond_and_includes_init() -> None:
    assert billed_ms(395.99) == 396
    assert billed_ms(396.0) == 396
    assert billed_ms(100.0000000001) == 100  # float noise is not a millisecond
    assert billed_ms(395.99, 265.72) == 662  # docs/platform.md's REPORT example
    assert billed_ms(0.2) == 1


def test_an_invocation_that_never_ran_costs_nothing() -> None:
    throttled = InvokeResult("f", 512, None, None, None, ErrorKind.THROTTLED)
    assert pricing.result_usd(throttled) == Decimal(0)
    assert pricing.total(None) == Decimal(0)
    ran = InvokeResult("f", 512, "r", {}, _report(512, 100), ErrorKind.UNHANDLED)
    assert pricing.result_usd(ran) == pricing.total(_report(512, 100)) > 0
