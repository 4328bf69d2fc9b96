"""`cescale db …`: schema migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

# Alembic, SQLAlchemy and the migrations are imported by the commands that run them: importing
# Alembic alone took 0.25-0.5 s of every `cescale` command.

app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


@contextmanager
def _database_errors(url: str) -> Iterator[None]:
    """An unreachable database or an unknown revision is one line, not a traceback."""
    from alembic.util import CommandError
    from sqlalchemy.exc import OperationalError

    try:
        yield
    except OperationalError as error:
        reason = " ".join(str(error.orig).split())
        typer.secho(
            f"error: database {_redact(url)} not usable: {reason}",
            fg="red",
            err=True,
        )
        raise typer.Exit(1) from None
    except CommandError as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(2) from None


@app.command("upgrade")
def upgrade_command(revision: str = typer.Argument("head")) -> None:
    """Migrate the database to REVISION (default: head)."""
    from service.migrate import current_revision, upgrade
    from service.settings import get_settings

    url = get_settings().database_url
    with _database_errors(url):
        upgrade(url, revision)
        typer.echo(f"database at {current_revision(url)} ({_redact(url)})")


@app.command("downgrade")
def downgrade_command(revision: str = typer.Argument(..., help="Target, e.g. base or -1")) -> None:
    """Migrate the database down to REVISION."""
    from service.migrate import current_revision, downgrade
    from service.settings import get_settings

    url = get_settings().database_url
    with _database_errors(url):
        downgrade(url, revision)
        typer.echo(f"database at {current_revision(url) or 'base'} ({_redact(url)})")


@app.command("status")
def status_command() -> None:
    """Show the current and the head revision."""
    from service.migrate import current_revision, head_revision
    from service.settings import get_settings

    url = get_settings().database_url
    with _database_errors(url):
        typer.echo(f"current: {current_revision(url) or 'base'}  head: {head_revision()}")


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
