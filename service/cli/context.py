"""What CLI commands share: a database session with one commit, and error reporting."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """A session committed once at the end; business errors exit with their message."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from service.database import Database, commit
    from service.errors import ProblemError
    from service.settings import get_settings

    database = Database(get_settings())
    try:
        with database.session() as session:
            yield session
            commit(session)
    except ProblemError as error:
        typer.secho(f"error: {error.detail}", fg="red", err=True)
        raise typer.Exit(2) from None
    except (OperationalError, ProgrammingError) as error:
        typer.secho(
            f"error: database not usable ({error.orig!s}). "
            "Is it reachable, and migrated with 'cescale db upgrade'?",
            fg="red",
            err=True,
        )
        raise typer.Exit(1) from None
    finally:
        database.dispose()
        sys.stdout.flush()
