"""Give B8 a PostgreSQL schema of its own for the servers, and drop it at the end.

A schema per run keeps the benchmark out of the tables of anyone else using the same database
(the test suite makes its own schemas there too). The servers' connections carry the schema's
name as their ``application_name``, so their backends' CPU time can be counted as theirs.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.schema import CreateSchema, DropSchema

#: The database the test suite uses too (tests/conftest.py); YUPNOPE_BENCH_POSTGRES_URL overrides.
URL = os.environ.get(
    "YUPNOPE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def shown() -> str:
    """Return the database's URL to print: its password, if any, masked."""
    return make_url(URL).render_as_string()


class Unreachable(Exception):
    """Report that the PostgreSQL server could not be used, and why, in one line."""


@dataclass(frozen=True)
class Schema:
    """Hold the bench's schema: its name, the URL that uses only it, and a connection to look."""

    name: str
    url: str
    admin: Engine

    def backends(self) -> list[int]:
        """Return the pids of the PostgreSQL backends serving connections to this schema."""
        with self.admin.connect() as connection:
            rows = connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
                {"name": self.name},
            )
            return [int(pid) for pid in rows.scalars()]


def _create(name: str) -> Engine:
    """Create the schema ``name``; return the engine that did, or raise Unreachable."""
    admin = create_engine(URL)
    try:
        with admin.connect() as connection:
            connection.execute(CreateSchema(name))
            connection.commit()
    except SQLAlchemyError as exc:
        admin.dispose()
        raise Unreachable(f"{shown()}: {_first_line(exc)}") from None
    return admin


def _first_line(error: SQLAlchemyError) -> str:
    """Return the first line of what the driver said, without SQLAlchemy's wrapping."""
    return str(getattr(error, "orig", None) or error).strip().splitlines()[0]


@contextmanager
def schema() -> Iterator[Schema]:
    """Create an empty schema of the bench's own; yield it; drop it with all it holds.

    Raises Unreachable, before yielding, when the server cannot be reached or refuses.
    """
    name = f"yupnope_bench_{os.getpid()}_{secrets.token_hex(4)}"
    admin = _create(name)
    url = make_url(URL).update_query_dict(
        {"options": f"-csearch_path={name}", "application_name": name}
    )
    try:
        yield Schema(name, url.render_as_string(hide_password=False), admin)
    finally:
        with admin.begin() as connection:
            connection.execute(DropSchema(name, cascade=True))
        admin.dispose()
