"""Portable SQL: fixed-width time buckets.

Postgres has ``date_part('epoch', …)``; SQLite stores timestamps as ISO text, which
``strftime('%s')`` reads. A bucket is ``floor(epoch / step)``, so buckets of a day start at UTC
midnight and any step (not only date_trunc's units) works the same on both databases.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.functions import FunctionElement


class bucket_of(FunctionElement[int]):
    """``floor(epoch_seconds(column) / step)`` as an integer; step is a whole number of seconds."""

    type = Integer()
    inherit_cache = True
    name = "bucket_of"


@compiles(bucket_of)
def _bucket_default(element: bucket_of, compiler: Any, **kw: Any) -> str:
    column, step = list(element.clauses)
    return (
        # date_part is a double (EXTRACT is numeric since Postgres 14, several times slower)
        f"CAST(FLOOR(date_part('epoch', {compiler.process(column, **kw)}) / "
        f"{compiler.process(step, **kw)}) AS BIGINT)"
    )


@compiles(bucket_of, "sqlite")
def _bucket_sqlite(element: bucket_of, compiler: Any, **kw: Any) -> str:
    column, step = list(element.clauses)
    # whole seconds (strftime truncates), then integer division: exact at bucket edges
    seconds = f"CAST(strftime('%s', {compiler.process(column, **kw)}) AS INTEGER)"
    return f"({seconds} / {compiler.process(step, **kw)})"


def bucket(column: ColumnElement[Any], step_s: int) -> bucket_of:
    # The step is rendered inline (an int, never user text): a bound parameter would make the
    # SELECT and GROUP BY expressions differ on Postgres ($1 vs $2).
    return bucket_of(column, literal_column(str(int(step_s)), Integer))
