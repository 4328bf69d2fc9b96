"""Engine and session factory, and the guard that keeps commits in their one planned place.

A request commits once, in its endpoint, through :func:`commit`; a control-loop tick commits once,
at its end. Any other ``session.commit()`` raises :class:`StrayCommitError`, so a helper cannot
commit half of a unit of work behind the caller's back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from service.settings import Settings

_COMMIT_ALLOWED = "commit_allowed"


class StrayCommitError(RuntimeError):
    """A commit happened outside the unit of work's planned commit point."""


def make_engine(url: str, *, statement_timeout_s: float | None = None, **kwargs: object) -> Engine:
    """An engine for ``url``. ``statement_timeout_s``: on Postgres, no statement (nor wait for a
    lock) of this engine's sessions runs longer — so no database call blocks a loop tick or a
    request without bound (SQLite has its busy timeout of 30 s)."""
    if url in ("sqlite://", "sqlite:///:memory:"):
        # One in-memory database shared by every session (the simulation driver's).
        engine = create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if statement_timeout_s is not None:
        ms = max(1, round(statement_timeout_s * 1000))
        options = f"-c statement_timeout={ms} -c lock_timeout={ms}"
        kwargs = {"connect_args": {"options": options}, **kwargs}
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # SQLite enforces foreign keys only when asked to, per connection. WAL lets readers run
    # while the control loop writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    factory = sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)
    return factory


@event.listens_for(Session, "before_commit")
def _guard_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # releasing a SAVEPOINT is not a commit
    if not session.info.get(_COMMIT_ALLOWED):
        raise StrayCommitError(
            "session.commit() outside the planned commit point; use service.database.commit()"
        )


def commit(session: Session) -> None:
    """The planned commit point of a request or loop tick."""
    session.info[_COMMIT_ALLOWED] = True
    try:
        session.commit()
    finally:
        session.info[_COMMIT_ALLOWED] = False


class Database:
    """Owns the engine and hands out sessions; one per process."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = (
            engine
            if engine is not None
            else make_engine(
                settings.database_url, statement_timeout_s=settings.db_statement_timeout_s
            )
        )
        self.sessionmaker = make_sessionmaker(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        session = self.sessionmaker()
        try:
            yield session
        finally:
            session.rollback()
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
