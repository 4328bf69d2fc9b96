"""`cescale package` and `cescale profile`: ship the handler code, and measure a workload."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from service.workloads.packaging import build_package
from service.workloads.profiling import ProfileError, ProfileRequest, profile

USAGE_ERROR = 2  # like click's own usage errors


def register(app: typer.Typer) -> None:
    app.command("package")(package)
    app.command("profile")(profile_workload)


def package(
    out: Path = typer.Option(
        Path("dist/cescale-handlers.zip"), "--out", help="Where to write the zip."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Build the Lambda deployment zip of the workload handlers (NumPy etc. come from a layer)."""
    built = build_package(out)
    if as_json:
        typer.echo(json.dumps(built))
        return
    typer.echo(f"wrote {built['zip']} ({built['bytes']} bytes, {len(built['files'])} files)")
    for workload, kinds in built["handlers"].items():
        for kind, entry in kinds.items():
            typer.echo(f"  {workload:<15} {kind:<9} Handler: {entry['lambda_handler']}")
    typer.echo("runtime needs: " + "; ".join(built["runtime_requirements"]))


def profile_workload(
    workload: str = typer.Argument(
        ..., help="builtin:logreg, builtin:mlp, or your handler as module:function."
    ),
    dataset: str = typer.Option("builtin:digits", "--dataset", help="Dataset URI."),
    params: str = typer.Option("{}", "--params", help='Hyperparameters as JSON, e.g. {"lr": 0.1}.'),
    epochs: int = typer.Option(1, "--epochs", min=1, help="Epochs per profiled invocation."),
    kind: str = typer.Option("hpo", "--kind", help="Job kind: hpo (trial) or training (worker)."),
    repeats: int = typer.Option(3, "--repeats", min=1, help="Invocations per thread count."),
    out: Path | None = typer.Option(None, "--out", help="Also write the profile JSON here."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Run WORKLOAD locally at 1 and 2 threads and print its emulator code profile."""
    try:
        parsed = json.loads(params)
    except json.JSONDecodeError as exc:
        _usage(f"--params is not valid JSON: {exc}")
    if not isinstance(parsed, dict):
        _usage("--params must be a JSON object, e.g. '{\"lr\": 0.1}'")
    if kind not in ("hpo", "training"):
        _usage(f"--kind must be hpo or training, got {kind!r}")
    request = ProfileRequest(workload, dataset, parsed, epochs, kind, repeats)
    try:
        # progress on stderr, one line per run batch: stdout stays the result (or JSON)
        result = profile(request, on_step=lambda line: typer.echo(f"profiling: {line}", err=True))
    except ProfileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(USAGE_ERROR if exc.usage else 1) from None
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    if as_json:
        typer.echo(json.dumps(result))
        return
    for key, value in result.items():
        typer.echo(f"{key:<18} {value}")


def _usage(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(USAGE_ERROR)
