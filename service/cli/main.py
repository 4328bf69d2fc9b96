"""`cescale`: the command line. Each command group lives in its own module of this package."""

from __future__ import annotations

from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from service import __version__, logs
from service.cli import (
    bench,
    controller,
    curve,
    db,
    deploy,
    emulate,
    jobs,
    server,
    simulate,
    tenants,
    workloads,
)

LogLevel = StrEnum("LogLevel", {name: name for name in logs.LEVELS})
LogFormatName = StrEnum("LogFormatName", {"text": "text", "json": "json"})

app = typer.Typer(
    name="cescale",
    help="CE-scaling control plane: cost-efficient, deadline-aware ML workflows on serverless.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(db.app, name="db")
app.add_typer(tenants.app, name="tenants")
app.add_typer(jobs.app, name="jobs")
server.register(app)
workloads.register(app)
emulate.register(app)
simulate.register(app)
controller.register(app)
curve.register(app)
bench.register(app)
deploy.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cescale {installed_version()}")
        raise typer.Exit()


def installed_version() -> str:
    """The installed distribution's version (the source tree's when run uninstalled)."""
    try:
        return version("cescale")
    except PackageNotFoundError:
        return __version__


@app.callback()
def _setup(
    log_level: Annotated[
        LogLevel | None,
        typer.Option(
            "--log-level",
            help="Log level of every command (default: CESCALE_LOG_LEVEL, else info).",
            case_sensitive=False,
            show_default=False,
        ),
    ] = None,
    log_format: Annotated[
        LogFormatName | None,
        typer.Option(
            "--log-format",
            help="text, or json lines (default: CESCALE_LOG_FORMAT, else text).",
            show_default=False,
        ),
    ] = None,
    _show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Fail with the setting's message, not a traceback, when the environment is wrong; then
    configure logging once for whichever command runs."""
    from pydantic import ValidationError

    from service.settings import get_settings

    try:
        settings = get_settings()
    except ValidationError as error:
        for problem in error.errors():
            message = str(problem["msg"]).removeprefix("Value error, ")
            if problem["loc"]:
                name = "CESCALE_" + "_".join(str(p) for p in problem["loc"]).upper()
                message = f"{name}: {message}"
            typer.secho(f"error: {message}", fg="red", err=True)
        raise typer.Exit(2) from None
    logs.configure((log_level or settings.log_level).lower(), log_format or settings.log_format)


if __name__ == "__main__":  # pragma: no cover
    app()
