"""Run a lookup that nearly every request makes: compiled once, then on the driver's own cursor.

SQLAlchemy runs even a statement built once through its execution machinery at every use: the
compiled cache's lookup, an execution context, a cursor result and its rows' processing. For
the signed-in lookup (store/credentials.py) on SQLite that came to about three times SQLite's
own work, a third of a forward-auth check (B9 in docs/benchmarks.md). Here SQLAlchemy compiles
the statement once, for the engine's dialect, into its SQL, the order of its parameters and
its columns' result processors (models.UTCDateTime's aware UTC times, SQLite's integers as
booleans); each use is a connection from the engine's pool, the driver's execute and one
fetch. The SQL is SQLAlchemy's, never written by hand, and the connection comes from the pool
as before, with its pre-ping, in the isolation level the engine asks (db.lone_reads). While
anything listens to the engine's cursor events (instrumentation, a test that counts
statements), the statement runs through SQLAlchemy instead, so that it is seen like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Engine, Select
from sqlalchemy.engine.interfaces import DBAPIModule, IsolationLevel
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection


class Prepared:
    """Hold one SELECT compiled for ``engine``'s dialect, and run it for its first row."""

    def __init__(self, engine: Engine, statement: Select[Any]) -> None:
        dialect = engine.dialect
        self.engine = engine
        self.statement = statement
        # Rendering what SQLAlchemy leaves to each execution ("post-compile" parameters, such
        # as aggregate_strings' separator) needs a value for every parameter: the ones given at
        # each use get a placeholder's, which is not rendered.
        given = [bind.key for bind in statement.compile().binds.values() if bind.required]
        compiled = statement.params(dict.fromkeys(given, "")).compile(
            dialect=dialect, compile_kwargs={"render_postcompile": True}
        )
        self.sql = str(compiled)
        #: The parameters' order for a positional driver (sqlite3's ``?``), else None (named).
        self.order = tuple(compiled.positiontup or ()) if compiled.positional else None
        for bind in compiled.binds.values():
            if bind.type.dialect_impl(dialect).bind_processor(dialect) is not None:
                # The values go to the driver as they are given: only types it takes as they are.
                raise TypeError(f"{bind.key} needs processing that Prepared does not do")
        self.processors: tuple[Callable[[Any], Any] | None, ...] = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        )
        self.error: type[DBAPIModule.Error] = dialect.loaded_dbapi.Error
        #: The isolation level the engine's connections take (db.lone_reads: AUTOCOMMIT on
        #: PostgreSQL, so no BEGIN and ROLLBACK around the one SELECT), set on the pool's
        #: connection for the lookup and reset before it goes back.
        self.level: IsolationLevel | None = engine.get_execution_options().get("isolation_level")

    def first(self, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Return the first row for the parameters' ``values``, its values processed, or None.

        A driver's error comes out as SQLAlchemy's (an OperationalError answers an outage, as
        for every other query), and a connection it says is lost leaves the pool.
        """
        events = self.engine.dispatch
        if events.before_cursor_execute or events.after_cursor_execute:
            # Something watches the statements SQLAlchemy runs (instrumentation, a test that
            # counts them): run this one as SQLAlchemy does, so that it is seen too.
            with self.engine.connect() as watched:
                found = watched.execute(self.statement, values).first()
            return None if found is None else tuple(found)
        parameters: Any = values if self.order is None else tuple(values[n] for n in self.order)
        try:
            # The pool's own connection, with its pre-ping, without a Connection around it: that
            # cost a quarter of the lookup.
            connection = self.engine.raw_connection()
        except self.error as exc:
            raise DBAPIError.instance(None, None, exc, self.error) from exc
        try:
            row = self._fetch(connection, parameters)
        finally:
            connection.close()
        if row is None:
            return None
        return tuple(
            value if process is None else process(value)
            for process, value in zip(self.processors, row, strict=True)
        )

    def _fetch(self, connection: PoolProxiedConnection, parameters: Any) -> Any:
        """Run the statement on ``connection`` in the engine's isolation level; return a row."""
        dialect = self.engine.dialect
        driver = connection.dbapi_connection
        if driver is None:
            raise RuntimeError("the pool handed out a connection it had closed")
        cursor = None
        try:
            if self.level is not None:
                dialect.set_isolation_level(driver, self.level)
            cursor = connection.cursor()
            cursor.execute(self.sql, parameters)
            return cursor.fetchone()
        except self.error as exc:
            lost = dialect.is_disconnect(exc, connection, cursor)
            if lost:
                connection.invalidate(exc)
            raise DBAPIError.instance(
                self.sql, parameters, exc, self.error, connection_invalidated=lost
            ) from exc
        finally:
            if cursor is not None:
                cursor.close()
            if self.level is not None and connection.is_valid:
                dialect.reset_isolation_level(driver)
