"""`cescale`: the command line. Each command group lives in its own module of this package."""

from __future__ import annotations

import typer

from service.cli import db, server, tenants

app = typer.Typer(
    name="cescale",
    help="CE-scaling control plane: cost-efficient, deadline-aware ML workflows on serverless.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(db.app, name="db")
app.add_typer(tenants.app, name="tenants")
server.register(app)


if __name__ == "__main__":  # pragma: no cover
    app()
