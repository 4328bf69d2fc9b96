"""The platform contract, run against both backends: the emulator and AWS (moto + priming).

Each test states one thing the control plane relies on, whichever backend it talks to.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.platform import pricing
from service.platform.interface import (
    ErrorKind,
    FunctionNotFoundError,
    Platform,
    PlatformError,
    VariantNotFoundError,
)
from tests.platform.conftest import MotoServer
from tests.platform.harness import AwsHarness, EmulatorHarness

Harness = EmulatorHarness | AwsHarness


@pytest.fixture(scope="module", params=["emulator", "aws"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    if request.param == "emulator":
        built: Harness = EmulatorHarness()
    else:
        moto: MotoServer = request.getfixturevalue("moto_server")
        built = AwsHarness(moto)
    yield built
    built.close()


def test_both_backends_implement_the_protocol(harness: Harness) -> None:
    assert isinstance(harness.platform, Platform)


def test_ensure_function_is_idempotent_and_sets_memory(harness: Harness) -> None:
    spec = harness.spec("echo", memory_mb=512)
    harness.platform.ensure_function(spec)
    harness.platform.ensure_function(spec)
    assert harness.platform.memory_of(spec.name) == 512


def test_set_memory_changes_the_function_and_rejects_sizes_lambda_has_not(
    harness: Harness,
) -> None:
    spec = harness.spec("echo", memory_mb=512)
    harness.platform.ensure_function(spec)
    harness.platform.set_memory(spec.name, 1769)
    assert harness.platform.memory_of(spec.name) == 1769
    for bad in (127, 10_241):
        with pytest.raises(ValueError, match="between 128 and 10240"):
            harness.platform.set_memory(spec.name, bad)
    assert harness.platform.memory_of(spec.name) == 1769


def test_invoke_returns_the_payload_and_a_report(harness: Harness) -> None:
    spec = harness.spec("echo", memory_mb=640)
    harness.platform.ensure_function(spec)
    harness.expect_echo({"x": 1}, 640)
    result = harness.platform.invoke(spec.name, {"x": 1})
    assert result.error is ErrorKind.NONE and result.ok and not result.ambiguous
    assert result.payload == {"echo": {"x": 1}, "memory_limit_in_mb": 640}
    assert result.report is not None
    assert result.report.memory_mb == 640 == result.memory_mb
    assert result.report.billed_ms >= result.report.duration_ms
    assert 0 < result.report.max_memory_used_mb <= 640
    assert result.request_id
    assert result.finished_at >= result.started_at
    assert pricing.result_usd(result) > 0


def test_start_invoke_then_poll_returns_the_result_exactly_once(harness: Harness) -> None:
    spec = harness.spec("echo", memory_mb=512)
    harness.platform.ensure_function(spec)
    harness.expect_echo({"n": 2}, 512)
    handle = harness.platform.start_invoke(spec.name, {"n": 2})
    assert handle.function == spec.name
    result = harness.wait_for(handle)
    assert result.payload["echo"] == {"n": 2}
    with pytest.raises(PlatformError, match="unknown or already collected"):
        harness.platform.poll(handle)


def test_a_memory_variant_runs_at_its_size(harness: Harness) -> None:
    """(On AWS, $LATEST of a function the service owns is left at the last variant's size:
    the service never invokes it, and restoring it is what let two replicas race.)"""
    spec = harness.spec("echo", memory_mb=512)
    harness.platform.ensure_function(spec)
    assert harness.platform.ensure_variant(spec.name, 1024) == "mem-1024"
    assert harness.platform.ensure_variant(spec.name, 1024) == "mem-1024"  # idempotent
    harness.expect_echo({}, 1024)
    result = harness.platform.invoke(spec.name, {}, memory_mb=1024)
    assert result.report is not None and result.report.memory_mb == 1024
    assert result.ok


def test_invoking_what_does_not_exist_is_an_error_not_a_result(harness: Harness) -> None:
    spec = harness.spec("echo")
    harness.platform.ensure_function(spec)
    with pytest.raises(VariantNotFoundError):
        harness.platform.invoke(spec.name, {}, memory_mb=2048)
    with pytest.raises(FunctionNotFoundError):
        harness.platform.set_memory("no-such-function", 256)
    with pytest.raises(FunctionNotFoundError):
        harness.platform.memory_of("no-such-function")
    # Invoking a missing function: moto's lambda-simple answers 200 for any name, so that case
    # is covered per backend (test_emulator.py; Stubber in test_aws_stubbed.py).


def test_an_exception_in_the_handler_is_an_unhandled_error(harness: Harness) -> None:
    spec = harness.spec("fail", memory_mb=256)
    harness.platform.ensure_function(spec)
    harness.expect_error("boom", 256)
    result = harness.platform.invoke(spec.name, {"message": "boom"})
    assert result.error is ErrorKind.UNHANDLED
    assert not result.ok and not result.ambiguous
    assert "boom" in (result.error_message or "")
    assert result.payload["errorType"] == "ValueError"
    assert result.report is not None  # it ran, so it is billed
    assert pricing.result_usd(result) > 0


def test_out_of_memory_is_told_apart_from_other_errors(harness: Harness) -> None:
    spec = harness.spec("allocate", memory_mb=128)
    harness.platform.ensure_function(spec)
    harness.expect_oom(128)
    result = harness.platform.invoke(spec.name, {"mb": 200})
    assert result.error is ErrorKind.OUT_OF_MEMORY
    assert result.report is not None
    assert result.report.max_memory_used_mb == 128


def test_a_timeout_is_told_apart_from_out_of_memory(harness: Harness) -> None:
    # Emulator: 60 ms of CPU at 128 MB (0.072 vCPU) models to ~830 ms, past a 0.5 s timeout.
    spec = harness.spec("cpu_loop", memory_mb=128, timeout_s=0.5)
    harness.platform.ensure_function(spec)
    harness.expect_timeout(128, 0.5)
    result = harness.platform.invoke(spec.name, {"cpu_ms": 60})
    assert result.error is ErrorKind.TIMEOUT
    assert result.report is not None
    assert result.report.duration_ms == pytest.approx(500.0)


def test_metrics_count_invocations_and_leave_empty_periods_unknown(harness: Harness) -> None:
    spec = harness.spec("echo", memory_mb=512)
    harness.platform.ensure_function(spec)
    results = []
    for i in range(3):
        harness.expect_echo({"i": i}, 512)
        results.append(harness.platform.invoke(spec.name, {"i": i}))
    harness.record(results)
    first = min(r.started_at for r in results)
    start = float(int(first) - 600)  # ten empty minutes before the invocations
    end = float(int(max(r.started_at for r in results)) + 60)
    metrics = harness.platform.metrics(spec.name, start, end, period_s=60)
    assert sum(value for _, value in metrics.invocations) == 3
    assert sum(value for _, value in metrics.errors) == 0
    assert len(metrics.invocations) <= 2  # only periods with data; never zero-filled
    assert all(stamp >= first - 60 for stamp, _ in metrics.invocations)
    assert all(value > 0 for _, value in metrics.invocations)
    durations = [r.report.duration_ms for r in results if r.report is not None]
    assert max(value for _, value in metrics.duration_max) == pytest.approx(max(durations))
    quiet = harness.platform.metrics(spec.name, start, start + 300, period_s=60)
    assert quiet.invocations == () and quiet.duration_avg == ()


def test_find_reports_recovers_report_records_by_request_id(harness: Harness) -> None:
    spec = harness.spec("echo", memory_mb=512)
    harness.platform.ensure_function(spec)
    results = []
    for i in range(2):
        harness.expect_echo({"i": i}, 512)
        results.append(harness.platform.invoke(spec.name, {"i": i}))
    harness.record(results)
    wanted = results[1].report
    assert wanted is not None
    found = harness.platform.find_reports(
        spec.name,
        results[0].started_at - 1,
        results[-1].finished_at + 1,
        request_ids=frozenset({wanted.request_id}),
    )
    assert [r.request_id for r in found] == [wanted.request_id]
    assert found[0].memory_mb == 512
    assert found[0].billed_ms == wanted.billed_ms


def test_the_account_concurrency_limit_is_known(harness: Harness) -> None:
    with harness.account_settings(1000):
        assert harness.platform.concurrency_limit() == 1000
