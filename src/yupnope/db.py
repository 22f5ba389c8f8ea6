"""Open the database engine and give each request, or each command, its own ORM session.

SQLite runs in WAL mode with foreign keys on and a busy timeout, and write transactions begin
with ``BEGIN IMMEDIATE``: a deferred transaction that reads first and writes later can fail at
once with SQLITE_BUSY_SNAPSHOT when another process wrote in between, and no timeout helps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session, sessionmaker

from .store import WRITE_OPTION

#: Milliseconds a SQLite writer waits for another to finish before giving up.
SQLITE_BUSY_TIMEOUT_MS = 10_000


def make_engine(url: str) -> Engine:
    """Return an engine for ``url``, set up for concurrent workers when it is SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        try:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            # Start anyway: every query then fails as an outage (503), which /healthz reports.
            pass
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN, so a write can ask for BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a crash of the process (kill -9); only a crash of the
        # operating system may lose the last commits, never corrupt the file.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Return the factory of ORM sessions bound to ``engine``."""
    return sessionmaker(engine, expire_on_commit=False)


def ping(session: Session) -> bool:
    """Return whether the database answers a trivial query."""
    try:
        session.execute(text("SELECT 1"))
    except Exception:
        session.rollback()
        return False
    session.rollback()
    return True


def init_app(app: Flask) -> None:
    """Create the engine from the app's config and close each request's session at its end."""
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["yupnope.engine"] = engine
    app.extensions["yupnope.sessionmaker"] = make_sessionmaker(engine)
    app.teardown_appcontext(_close_session)


def get_session() -> Session:
    """Return this request's (or app context's) ORM session, opening it on first use."""
    if "db_session" not in g:
        factory: sessionmaker[Session] = current_app.extensions["yupnope.sessionmaker"]
        g.db_session = factory()
    session: Session = g.db_session
    return session


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()
