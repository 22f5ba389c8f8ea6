"""Open the database engine and give each request, or each command, its own ORM session.

SQLite runs in WAL mode with foreign keys on and a busy timeout, and write transactions begin
with ``BEGIN IMMEDIATE``: a deferred transaction that reads first and writes later can fail at
once with SQLITE_BUSY_SNAPSHOT when another process wrote in between, and no timeout helps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from .store import WRITE_OPTION

log = logging.getLogger(__name__)

#: Milliseconds a SQLite writer waits for another to finish before giving up.
SQLITE_BUSY_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class Limits:
    """Carry how many connections a process keeps and how long it waits on the database."""

    #: Connections kept open; one per request thread, so no request waits for another's.
    pool_size: int = 5
    #: Seconds to wait for a connection, from the pool or from the server.
    connect_timeout: int = 5
    #: Milliseconds one statement may run on PostgreSQL before the server cancels it.
    statement_timeout_ms: int = 5000


def make_engine(url: str, limits: Limits | None = None) -> Engine:
    """Return an engine for ``url``, set up for concurrent workers and short, bounded waits."""
    limits = limits or Limits()
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return _postgresql_engine(url, limits)
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


def _postgresql_engine(url: str, limits: Limits) -> Engine:
    """Return a pooled PostgreSQL engine whose every wait is bounded.

    pre-ping finds connections that died with a restarted server and replaces them, so the
    service recovers by itself; the statement timeout stops a stuck query from holding a
    worker's thread for good.
    """
    engine = create_engine(
        url,
        pool_size=limits.pool_size,
        max_overflow=2,
        pool_timeout=limits.connect_timeout,
        pool_pre_ping=True,
        connect_args={"connect_timeout": limits.connect_timeout},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, false)",
                (str(limits.statement_timeout_ms),),
            )
        dbapi_connection.commit()

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
    config = app.config
    limits = Limits(
        pool_size=config["DATABASE_POOL_SIZE"] or Limits.pool_size,
        connect_timeout=config["DATABASE_TIMEOUT_SECONDS"],
        statement_timeout_ms=config["DATABASE_STATEMENT_TIMEOUT_MS"],
    )
    engine = make_engine(config["DATABASE_URL"], limits)
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
    if session is None:
        return
    try:
        session.close()
    except SQLAlchemyError as exc:
        # The answer is already made; only the rollback on a connection that died meanwhile
        # failed, and the pool has discarded that connection. Raising here would turn the
        # answer into a bare 500.
        log.warning("database session not closed cleanly: %s", " ".join(str(exc).split()))
