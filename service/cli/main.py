"""`cescale`: the command line. Each command group lives in its own module of this package."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from service.cli import (
    bench,
    controller,
    curve,
    db,
    emulate,
    jobs,
    server,
    simulate,
    tenants,
    workloads,
)
from service.settings import get_settings

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


@app.callback()
def _check_settings() -> None:
    """Fail with the setting's message, not a traceback, when the environment is wrong."""
    try:
        get_settings()
    except ValidationError as error:
        for problem in error.errors():
            name = "CESCALE_" + "_".join(str(p) for p in problem["loc"]).upper()
            typer.secho(f"error: {name}: {problem['msg']}", fg="red", err=True)
        raise typer.Exit(2) from None


if __name__ == "__main__":  # pragma: no cover
    app()
