"""`cescale simulate`: run a job spec to completion in simulation and print what it cost."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from service.domain.lambda_limits import MAX_MEMORY_MB, MIN_MEMORY_MB


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_command)


def simulate_command(
    spec_file: Path = typer.Argument(..., help="A job spec (JSON), as POST /v1/jobs takes."),
    policy: str | None = typer.Option(
        None,
        "--policy",
        help="Override the spec's policy: static, ce-scaling, power-tuning, or oracle "
        "(simulation only: perfect knowledge, the lower bound on cost).",
    ),
    memory_mb: int | None = typer.Option(
        None,
        "--memory-mb",
        min=MIN_MEMORY_MB,
        max=MAX_MEMORY_MB,
        help="Memory for --policy static.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the emulator's noise and the loop."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    no_learn: bool = typer.Option(
        False,
        "--no-learn",
        help="Switch the loop's learn step off (stored memory curves, duration forecasts, "
        "loss-curve fits): the policy fits from raw runs at each decision, fixed margin.",
    ),
    repeat: int = typer.Option(
        1,
        "--repeat",
        min=1,
        max=10,
        help="Run the job this many times by one tenant, an hour apart: each repeat starts from "
        "the curves the earlier jobs measured instead of a pilot. Prints every job; the stages "
        "are the last one's.",
    ),
    drift: str | None = typer.Option(
        None,
        "--drift",
        help="Slow runs down as the job goes on: jump:AT_S:FACTOR (FACTOR times slower from "
        "AT_S seconds in) or trend:PCT (PCT %% slower per minute).",
    ),
    architecture: str | None = typer.Option(
        None,
        "--architecture",
        help="Override the spec's architecture: x86_64, arm64 or auto (ce-scaling and oracle: "
        "pilots on both, then each task shape on the cheaper one that meets the deadline).",
    ),
    arm64_speed: float = typer.Option(
        1.0,
        "--arm64-speed",
        min=0.05,
        max=4.0,
        help="How fast the workload runs on arm64 relative to x86_64 (0.8: at 0.8x the speed). "
        "The built-in model is calibrated on x86_64 only: 1.0 is a prior, not a measurement.",
    ),
    timeline: bool = typer.Option(
        False,
        "--timeline",
        help="Also print the job's timeline (as GET /v1/jobs/{id}/timeline gives it), in "
        "seconds since submission on the virtual clock.",
    ),
) -> None:
    """Run SPEC_FILE on the emulator with a virtual clock and report time, cost and stages."""
    from pydantic import ValidationError

    from service.simulation.drift import Drift
    from service.simulation.run import simulate
    from service.spec import JobSpec

    try:
        drifting = Drift.parse(drift) if drift is not None else None
    except ValueError as error:
        _fail(str(error))

    try:
        document = json.loads(spec_file.read_text())
        if architecture is not None:
            if architecture not in ("x86_64", "arm64", "auto"):
                _fail(f"--architecture must be x86_64, arm64 or auto, not {architecture!r}")
            if not isinstance(document, dict) or not isinstance(document.get("workload"), dict):
                _fail(f"{spec_file}: a job spec needs a 'workload' object")
            document["workload"] = document["workload"] | {"architecture": architecture}
        if isinstance(document, dict) and (policy not in (None, "oracle") or memory_mb):
            # the spec is checked with the overrides in (an "auto" spec under --policy static
            # is refused: only ce-scaling decides an architecture)
            document = document | {"policy": _policy(policy, memory_mb, _named(document))}
        spec = JobSpec.model_validate(document)
    except OSError as error:
        _fail(f"cannot read {spec_file}: {error.strerror}")
    except json.JSONDecodeError as error:
        _fail(f"{spec_file} is not valid JSON: {error}")
    except ValidationError as error:
        problems = "; ".join(
            ": ".join(filter(None, (".".join(map(str, e["loc"])), e["msg"])))
            for e in error.errors()
        )
        _fail(f"invalid job spec: {problems}")
    if not spec.workload.function.startswith("builtin:"):
        _fail(
            f"cannot simulate {spec.workload.function!r}: the simulator models the built-in "
            "workloads only (builtin:logreg, builtin:mlp)"
        )
    from service.simulation.work import AnalyticWorkload

    result = simulate(
        spec,
        seed=seed,
        workload=AnalyticWorkload(arm64_speed=arm64_speed),
        oracle=policy == "oracle",
        learn=not no_learn,
        drift=drifting,
        timeline=timeline,
        repeat=repeat,
    )
    if policy == "oracle":
        result["policy"] = "oracle"
    if as_json:
        typer.echo(json.dumps(result))
        return
    jobs = [*result.get("previous_jobs", []), result]
    for number, job in enumerate(jobs, 1):
        typer.echo((f"job {number}: " if len(jobs) > 1 else "") + _headline(job))
    if result["status_reason"]:
        typer.echo(f"  reason: {result['status_reason']}")
    if spec.workload.architecture == "auto":
        ran = ", ".join(f"{arch} {n}" for arch, n in result["architectures"].items())
        typer.echo(f"  invocations by architecture: {ran}")
    for stage in result["stages"]:
        typer.echo(
            f"  {stage['name']:<14} {stage['tasks']:>4} tasks  {stage['memory_mb'] or '-':>5} MB"
            f"  {stage['duration_s'] or 0:>9.1f} s  ${stage['cost_usd']:.6f}"
        )
    for event in result.get("timeline", []):
        typer.echo(f"  {event['at_s']:>9.3f} s  {event['type']:<20} {event['stage'] or ''}")


def _headline(result: dict) -> str:
    met = "met" if result["deadline_met"] else "MISSED"
    return (
        f"{result['status']}: {result['jct_s']:.1f} s (deadline {result['deadline_s']:.0f} s, "
        f"{met}), ${result['cost_usd']:.6f}, {result['invocations']} invocations, "
        f"{result['cold_starts']} cold"
    )


def _named(document: object) -> str:
    """The policy name a spec document asks for (ce-scaling when it names none)."""
    policy = document.get("policy") if isinstance(document, dict) else None
    name = policy.get("name") if isinstance(policy, dict) else None
    return name if isinstance(name, str) else "ce-scaling"


def _policy(name: str | None, memory_mb: int | None, spec_policy: str) -> dict:
    """The policy document for ``--policy``/``--memory-mb``; ``--memory-mb`` alone resizes a
    spec that is already static."""
    from service.spec import CeScalingPolicy, PowerTuningPolicy, StaticPolicy

    names = {
        "static": StaticPolicy,
        "ce-scaling": CeScalingPolicy,
        "power-tuning": PowerTuningPolicy,
    }
    if name is None or name == "oracle":
        if spec_policy != "static" or name == "oracle":
            _fail("--memory-mb goes with --policy static (or a spec whose policy is static)")
        name = "static"
    if name not in names:
        _fail(f"unknown policy {name!r}; policies: {', '.join(names)}, oracle")
    if name == "static":
        if memory_mb is None:
            _fail("--policy static needs --memory-mb")
        return {"name": "static", "memory_mb": memory_mb}
    if memory_mb is not None:
        _fail("--memory-mb goes with --policy static only")
    return {"name": name}


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(2)
