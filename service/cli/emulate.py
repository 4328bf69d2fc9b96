"""`cescale emulate`: what would this function do on Lambda at that memory size?

A what-if tool for users and the way we check the emulator's fidelity against real Lambda
measurements: give it a profile (a measured profile, or a code profile from `cescale profile`)
and a memory size, and it runs N invocations through the emulator on a virtual clock, then
prints the duration percentiles, billed time, memory used and cost per invocation.
"""

from __future__ import annotations

import json
import statistics
from decimal import Decimal
from pathlib import Path

import typer

from service.platform import pricing
from service.platform.clock import VirtualClock
from service.platform.interface import (
    MAX_MEMORY_MB,
    MAX_TIMEOUT_S,
    MIN_MEMORY_MB,
    ErrorKind,
    FunctionSpec,
    InvokeResult,
    PlatformError,
)

FUNCTION = "emulated"


def register(app: typer.Typer) -> None:
    app.command("emulate")(emulate)


def emulate(
    profile: Path = typer.Option(
        ..., "--profile", help="Measured profile or code profile (JSON).", show_default=False
    ),
    memory: int = typer.Option(
        ...,
        "--memory",
        help=f"Memory size in MB ({MIN_MEMORY_MB}..{MAX_MEMORY_MB}).",
        show_default=False,
    ),
    invocations: int = typer.Option(100, "--invocations", min=1, help="How many to run."),
    seed: int | None = typer.Option(None, "--seed", help="Seed for reproducible noise."),
    cold: bool = typer.Option(False, "--cold", help="Make every invocation a cold start."),
    architecture: str = typer.Option("x86_64", "--architecture", help="Price as x86_64 or arm64."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Emulate INVOCATIONS runs of a profiled function at MEMORY MB and summarise them."""
    if not MIN_MEMORY_MB <= memory <= MAX_MEMORY_MB:
        _fail(f"--memory must be between {MIN_MEMORY_MB} and {MAX_MEMORY_MB} MB, got {memory}")
    if architecture not in ("x86_64", "arm64"):
        _fail(f"--architecture must be x86_64 or arm64, got {architecture!r}")
    from service.platform.emulator.profiles import ProfileError, load_profile

    try:
        load_profile(profile)  # fail early with the profile's own message
    except ProfileError as error:
        _fail(str(error))
    results = _run(profile, memory, invocations, seed, cold, architecture)
    summary = summarise(results, memory, architecture)
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        _print_table(summary, invocations, cold)


def _run(
    profile: Path,
    memory: int,
    invocations: int,
    seed: int | None,
    cold: bool,
    architecture: str = "x86_64",
) -> list[InvokeResult]:
    # the emulator (NumPy, profiles) only for this command, not for every `cescale` command
    from service.platform.emulator.backend import DEFAULT_KEEP_ALIVE_S, EmulatorPlatform

    clock = VirtualClock()
    keep_alive = 0.0 if cold else DEFAULT_KEEP_ALIVE_S
    with EmulatorPlatform(clock, seed=seed, keep_alive_s=keep_alive) as platform:
        try:
            platform.ensure_function(
                FunctionSpec(
                    FUNCTION,
                    memory_mb=memory,
                    timeout_s=MAX_TIMEOUT_S,
                    architecture=architecture,  # type: ignore[arg-type]
                    profile=profile,
                )
            )
        except PlatformError as error:
            _fail(str(error))
        return [platform.invoke(FUNCTION, {}) for _ in range(invocations)]


def summarise(results: list[InvokeResult], memory: int, architecture: str) -> dict[str, object]:
    reports = [r.report for r in results if r.report is not None]
    durations = sorted(r.duration_ms for r in reports)
    cpus = sorted(r.cpu_ms for r in reports if r.cpu_ms is not None)
    costs = [pricing.result_usd(r, architecture) for r in results]  # type: ignore[arg-type]
    mean_cost = sum(costs, Decimal(0)) / len(costs)
    return {
        "memory_mb": memory,
        "duration_ms": {
            "p10": round(_percentile(durations, 0.10), 2),
            "p50": round(_percentile(durations, 0.50), 2),
            "p90": round(_percentile(durations, 0.90), 2),
        },
        "billed_ms_mean": round(statistics.fmean(r.billed_ms for r in reports), 2),
        "max_memory_used_mb": max(r.max_memory_used_mb for r in reports),
        # Lambda Insights' cpu_total_time: below one vCPU, the part of a run that scales as 1/m
        "cpu_ms": {"p50": round(_percentile(cpus, 0.50), 2)} if cpus else None,
        "cost_usd_per_invocation": float(mean_cost),
        "out_of_memory": any(r.error is ErrorKind.OUT_OF_MEMORY for r in results),
    }


def _cpu(summary: dict[str, object]) -> str:
    cpu, durations = summary["cpu_ms"], summary["duration_ms"]
    if not isinstance(cpu, dict) or not isinstance(durations, dict) or not durations["p50"]:
        return "not reported"
    return f"{cpu['p50']:.1f} ms ({cpu['p50'] / durations['p50']:.0%} of the duration)"


def _percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method)."""
    if len(values) == 1:
        return values[0]
    position = q * (len(values) - 1)
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def _print_table(summary: dict[str, object], invocations: int, cold: bool) -> None:
    durations = summary["duration_ms"]
    assert isinstance(durations, dict)
    starts = "all cold" if cold else "first cold, then warm"
    rows = [
        ("memory", f"{summary['memory_mb']} MB"),
        ("invocations", f"{invocations} ({starts})"),
        (
            "duration p10/p50/p90",
            f"{durations['p10']:.1f} / {durations['p50']:.1f} / {durations['p90']:.1f} ms",
        ),
        ("billed (mean)", f"{summary['billed_ms_mean']:.1f} ms"),
        ("max memory used", f"{summary['max_memory_used_mb']} MB"),
        ("CPU time p50", _cpu(summary)),
        ("cost per invocation", f"${summary['cost_usd_per_invocation']:.10f}"),
        ("out of memory", "YES" if summary["out_of_memory"] else "no"),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        typer.echo(f"{label:<{width}}  {value}")


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(2)
