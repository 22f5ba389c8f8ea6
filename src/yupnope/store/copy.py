"""Copy every table of one database into another, empty one, and count the rows on both sides.

The rows go through the tables' own types, read from one dialect and written to the other:
an aware time stays aware (``UTCDateTime``), a flag stays a boolean, a passkey's key stays
bytes. Nothing is held whole: each table is read in batches and written in batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, Table, func, inspect, literal, select, table

from .. import mail_tables, provider_tables  # noqa: F401 (they declare tables on Base)
from ..db import WRITE_OPTION
from ..errors import CopyError
from ..models import Base

#: Rows read, and written in one INSERT, at a time.
BATCH_ROWS = 1000

#: Alembic's record of the schema's revision: the target's migrations write it, nothing copies it.
SCHEMA_VERSION_TABLE = "alembic_version"


def tables() -> list[Table]:
    """Return every table yupnope keeps, each after the tables it refers to."""
    return list(Base.metadata.sorted_tables)


def first_filled_table(connection: Connection) -> str | None:
    """Return the name of a table of the database that holds a row, or None when none does.

    Every table counts, yupnope's or another program's, except Alembic's revision: a database
    a copy failed on, or that ``yupnope db upgrade`` made, holds that row alone.
    """
    for name in sorted(inspect(connection).get_table_names()):
        if name == SCHEMA_VERSION_TABLE:
            continue
        if connection.execute(select(literal(1)).select_from(table(name)).limit(1)).first():
            return name
    return None


def copy_all(source: Engine, target: Engine, batch_rows: int = BATCH_ROWS) -> dict[str, int]:
    """Copy every row of every table from ``source`` into ``target``; return each table's rows.

    ``target`` already has the schema (its migrations made it). The source is read in one
    snapshot and the target written in one transaction, which commits only when it holds no
    row it did not copy and each table counts there as many rows as in the source: any failure
    raises and leaves the target as it was. A target that holds a row raises CopyError.
    """
    with _snapshot(source) as reading, _writing(target) as writing:
        filled = first_filled_table(writing)
        if filled is not None:
            raise CopyError(f"the target's table {filled} holds rows; copy into an empty database")
        for each in tables():
            _copy_table(reading, writing, each, batch_rows)
        if writing.dialect.name == "postgresql":
            _move_sequences(writing)
        return _counted(reading, writing)


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """Yield a connection in a read transaction that sees every table at one moment.

    SQLite in WAL mode keeps one snapshot for a read transaction by itself; PostgreSQL's
    default, READ COMMITTED, takes a new one per statement, so REPEATABLE READ is asked for.
    """
    options = {}
    if engine.dialect.name == "postgresql":
        options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    with engine.connect().execution_options(**options) as connection, connection.begin():
        yield connection


@contextmanager
def _writing(engine: Engine) -> Iterator[Connection]:
    """Yield a connection in one write transaction, committed at the end, rolled back on error.

    On SQLite the write lock is taken at its start (BEGIN IMMEDIATE, db.py), so no other
    writer comes in between the check that the target is empty and the copy.
    """
    with (
        engine.connect().execution_options(**{WRITE_OPTION: True}) as connection,
        connection.begin(),
    ):
        yield connection


def _copy_table(reading: Connection, writing: Connection, copied: Table, batch_rows: int) -> None:
    """Copy one table's rows in batches of ``batch_rows``, in the order of its primary key.

    ``yield_per`` streams the rows (a server-side cursor on PostgreSQL) instead of fetching
    them all, as SQLAlchemy's "Fetching Large Result Sets with Yield Per" describes.
    """
    rows = reading.execution_options(yield_per=batch_rows).execute(
        select(copied).order_by(*copied.primary_key.columns)
    )
    for batch in rows.mappings().partitions():
        writing.execute(copied.insert(), [dict(row) for row in batch])


def _move_sequences(writing: Connection) -> None:
    """Set each table's id sequence on PostgreSQL to give the largest copied id plus one next.

    The rows came with their ids, which leaves the sequences at their start: the next insert
    would take id 1 and collide. ``setval`` with ``is_called`` false makes the value given the
    next one (PostgreSQL's "Sequence Manipulation Functions").
    """
    for each in tables():
        column = each.autoincrement_column
        if column is None:
            continue
        sequence = func.pg_get_serial_sequence(func.quote_ident(each.name), column.name)
        following = select(func.coalesce(func.max(column), 0) + 1).scalar_subquery()
        writing.execute(select(func.setval(sequence, following, False)))


def _counted(reading: Connection, writing: Connection) -> dict[str, int]:
    """Return each table's rows, or raise CopyError where the target's differ from the source's."""
    counts: dict[str, int] = {}
    for each in tables():
        count = select(func.count()).select_from(each)
        expected = reading.execute(count).scalar_one()
        found = writing.execute(count).scalar_one()
        if found != expected:
            raise CopyError(
                f"the copy of {each.name} counted {found} rows, the source {expected}; "
                "nothing was copied"
            )
        counts[each.name] = found
    return counts
