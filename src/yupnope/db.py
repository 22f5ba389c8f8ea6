"""Open the database engine, and run each ORM session's transactions: reads, and writes.

SQLite runs in WAL mode with foreign keys on and a busy timeout, and write transactions begin
with ``BEGIN IMMEDIATE``: a deferred transaction that reads first and writes later can fail at
once with SQLITE_BUSY_SNAPSHOT when another process wrote in between, and no timeout helps.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .config import Settings, env_name
from .errors import ConfigError

#: Milliseconds a SQLite writer waits for another to finish before giving up.
SQLITE_BUSY_TIMEOUT_MS = 10_000

#: Execution option that makes a transaction a write one: BEGIN IMMEDIATE on SQLite.
WRITE_OPTION = "yupnope_write"

#: Execution option that runs each statement on its own, with no BEGIN before it: see lone_reads.
LONE_READ_OPTION = "yupnope_lone_read"

#: Key in the ORM session's ``info`` that marks a write transaction in progress.
_WRITING = "yupnope_writing"


class DuplicateKey(Exception):
    """Report that a write broke a unique constraint (a name taken by a concurrent sign-up)."""


@dataclass(frozen=True)
class Limits:
    """Carry how many connections a process keeps and how long it waits on the database."""

    #: Connections kept open; one per request thread, so no request waits for another's.
    pool_size: int = 5
    #: Seconds to wait for a connection, from the pool or from the server.
    connect_timeout: int = 5
    #: Milliseconds one statement may run on PostgreSQL before the server cancels it.
    statement_timeout_ms: int = 5000


#: The database URLs yupnope runs on, as a refusal names them.
SUPPORTED = "sqlite:///PATH or postgresql://USER@HOST/NAME"


def supported_url(url: str, where: str = "") -> URL:
    """Return ``url`` parsed, PostgreSQL's with psycopg (3), or raise a one-line ConfigError.

    ``postgres://`` (as some hosts write it) and ``postgresql://`` (whose driver SQLAlchemy
    takes to be psycopg2, not installed) both mean the psycopg driver yupnope installs. The
    message names ``where`` the URL came from: the setting, unless the caller says otherwise.
    """
    where = where or env_name("database_url")
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"{where} is not a database URL: use {SUPPORTED}") from None
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        if parsed.drivername not in ("postgres", "postgresql", "postgresql+psycopg"):
            raise ConfigError(f"{where}: use postgresql:// (psycopg 3), not {parsed.drivername}")
        return parsed.set(drivername="postgresql+psycopg")
    if backend != "sqlite" or parsed.drivername != "sqlite":
        raise ConfigError(f"{where}: {parsed.drivername} is not supported; use {SUPPORTED}")
    return parsed


def make_engine(url: str, limits: Limits | None = None) -> Engine:
    """Return an engine for ``url``, set up for concurrent workers and short, bounded waits."""
    limits = limits or Limits()
    parsed = supported_url(url)
    if parsed.get_backend_name() == "postgresql":
        return _postgresql_engine(parsed, limits)
    database = parsed.database or ""
    # ":memory:" is no file, and a URI filename (file:…?uri=true) is SQLite's own to open.
    if database and database != ":memory:" and not database.startswith("file:"):
        try:
            _create_private(Path(database))
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
        options = connection.get_execution_options()
        if options.get(LONE_READ_OPTION, False):
            return
        immediate = options.get(WRITE_OPTION, False)
        # Straight to the driver: SQLAlchemy's execution path around this one fixed statement
        # cost more than the query every signed-in request makes after it.
        connection.connection.dbapi_connection.execute(  # type: ignore[union-attr]
            "BEGIN IMMEDIATE" if immediate else "BEGIN"
        )

    return engine


def _create_private(path: Path) -> None:
    """Create the database file empty, its owner's alone (0600), in a folder of 0700 if new.

    SQLite would create it with the umask's mode, often 0644, and gives the -wal and -shm
    files the database file's mode (os_unix.c, findCreateFileMode); an empty file is a new
    database to it.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _postgresql_engine(url: URL, limits: Limits) -> Engine:
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


def lone_reads(engine: Engine) -> Engine:
    """Return ``engine`` set to run each statement on its own, outside any transaction.

    For a lookup that is one SELECT, a transaction around it adds only its BEGIN and its
    ROLLBACK, on PostgreSQL a round trip to the server each; one statement reads one
    consistent snapshot by itself. SQLite is not given SQLAlchemy's AUTOCOMMIT: pysqlite's
    reset of it, at every return to the pool, would turn the driver's own implicit BEGINs back
    on, which make_engine turned off; the begin hook there leaves its BEGIN out instead.
    """
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{LONE_READ_OPTION: True})
    return engine.execution_options(isolation_level="AUTOCOMMIT")


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


def engine_for(settings: Settings) -> Engine:
    """Return the engine the settings ask for."""
    return make_engine(settings.database_url, limits_for(settings))


def limits_for(settings: Settings) -> Limits:
    """Return the connections and waits the settings ask for."""
    return Limits(
        pool_size=settings.database_pool_size or Limits.pool_size,
        connect_timeout=settings.database_timeout_seconds,
        statement_timeout_ms=settings.database_statement_timeout_ms,
    )


def same_database(one: URL, other: URL) -> bool:
    """Return whether two supported URLs name one database, whoever connects to it.

    One SQLite file however its path is written; on PostgreSQL one host, port, database and
    options (a search_path is a schema of its own). Two names of one server (``localhost``
    and ``127.0.0.1``) are not seen as one: a copy refuses such a target as not empty.
    """
    if one.get_backend_name() != other.get_backend_name():
        return False
    if one.get_backend_name() == "sqlite":
        return Path(one.database or "").resolve() == Path(other.database or "").resolve()
    return (one.host, one.port or 5432, one.database, dict(one.query)) == (
        other.host,
        other.port or 5432,
        other.database,
        dict(other.query),
    )


class Transactions:
    """Begin and end the transactions of one ORM session: a write is one commit, or nothing.

    The flag that a write is open lives on the ORM session, so every Transactions over the
    same session (one per store a request builds) sees it.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    @contextmanager
    def write(self, join: bool = False) -> Iterator[None]:
        """Run the block as one write transaction, committed at its end, rolled back on any error.

        A unique-constraint failure comes out as DuplicateKey. A write asked for while another
        is open raises RuntimeError, unless ``join`` says it belongs to the open one: then the
        outer write commits or rolls back both.
        """
        session = self.session
        if session.info.get(_WRITING):
            if not join:
                raise RuntimeError("a write transaction is already open on this session")
            yield
            return
        # End any read transaction first: the write starts from a fresh snapshot and, on
        # SQLite, holds the write lock from its first statement.
        if session.in_transaction():
            session.commit()
        session.connection(execution_options={WRITE_OPTION: True})
        session.info[_WRITING] = True
        try:
            yield
            session.commit()
        except BaseException as exc:
            session.rollback()
            if isinstance(exc, IntegrityError) and _is_unique_violation(exc):
                raise DuplicateKey(str(exc.orig)) from exc
            raise
        finally:
            session.info[_WRITING] = False

    def end_read(self) -> None:
        """End the current read transaction, so no snapshot is held through slow work.

        A commit rather than a rollback: nothing is pending, and a commit leaves the loaded
        objects as they are instead of expiring them into another round of queries.
        """
        self.session.commit()


def _is_unique_violation(error: IntegrityError) -> bool:
    """Tell a unique-constraint failure from other integrity errors (a foreign key, a NULL)."""
    # SQLSTATE 23505 is unique_violation on PostgreSQL; SQLite says so in its message.
    return getattr(error.orig, "sqlstate", None) == "23505" or "UNIQUE constraint failed" in str(
        error.orig
    )
