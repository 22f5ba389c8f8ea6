"""Manage the database from the command line: ``yupnope db upgrade | copy``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from .. import config
from ..db import limits_for, make_engine, same_database, supported_url
from ..errors import CopyError, SchemaError
from ..store import copy as copying
from .group import cli, one_line_errors, open_app, print_table


@cli.group("db")
def db_group() -> None:
    """Manage the database: bring its schema up to date, or copy it into another."""


@db_group.command("upgrade")
@one_line_errors
def db_upgrade() -> None:
    """Apply every schema migration the database lacks."""
    with open_app():
        click.echo("The database schema is up to date.")


@db_group.command("copy")
@click.option(
    "--to",
    "to_url",
    required=True,
    metavar="URL",
    help="The empty database to copy into: sqlite:///PATH or postgresql://USER@HOST/NAME.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as a JSON object.")
@one_line_errors
def db_copy(to_url: str, as_json: bool) -> None:
    """Copy every table into another, empty database, and compare the counts.

    The target's schema is made by the migrations; the database in force is only read, and
    must be at this version's schema. Stop the servers first: rows written during the copy
    would stay behind.
    """
    settings = config.load()
    source_url = supported_url(settings.database_url)
    target_url = supported_url(to_url, "--to")
    try:
        counts = _copy(settings, source_url, target_url)
    except (CopyError, SchemaError) as exc:
        raise click.ClickException(_hidden(str(exc), source_url, target_url)) from None
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise click.ClickException(
            _hidden(f"database error: {reason}; nothing was copied", source_url, target_url)
        ) from None
    if as_json:
        click.echo(json.dumps(counts, sort_keys=True))
        return
    print_table(
        [("TABLE", "ROWS"), *((name, str(count)) for name, count in sorted(counts.items()))]
    )
    click.echo(f"Copied into {_shown(target_url)}; each table counts as many rows as the source.")


def _copy(settings: config.Settings, source_url: URL, target_url: URL) -> dict[str, int]:
    """Check the two databases, make the target's schema, copy; return each table's rows."""
    # Imported here, not with the command group: Alembic costs a process about 10 MiB, which
    # `serve` keeps out of the process its workers are forked from (cli/group.py's migrate).
    from .. import migrations

    if same_database(source_url, target_url):
        raise CopyError(
            f"--to names the database in force, {_shown(source_url)}; copy into another one"
        )
    if target_url.get_backend_name() == "sqlite" and target_url.database in (None, "", ":memory:"):
        raise CopyError("--to names a database in memory, gone when the copy ends; name a file")
    source_file = _sqlite_file(source_url)
    # Checked before an engine opens it: SQLite would make an empty database there.
    if source_file is not None and not source_file.exists():
        raise CopyError(f"there is no database at {source_file} to copy from")
    limits = limits_for(settings)
    source = make_engine(settings.database_url, limits)
    target = make_engine(target_url.render_as_string(hide_password=False), limits)
    try:
        migrations.require_head(source, "the database to copy from")
        try:
            with target.connect() as connection:
                filled = copying.first_filled_table(connection)
        except OperationalError as exc:
            reason = str(exc.orig).splitlines()[0]
            raise CopyError(f"cannot reach {_shown(target_url)}: {reason}") from None
        if filled is not None:
            raise CopyError(
                f"{_shown(target_url)} is not empty: its table {filled} holds rows; "
                "copy into an empty database"
            )
        migrations.upgrade(target)
        return copying.copy_all(source, target)
    finally:
        source.dispose()
        target.dispose()


def _sqlite_file(url: URL) -> Path | None:
    """Return the file of a SQLite URL, or None for PostgreSQL, memory and SQLite's own URIs."""
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    return None if database.startswith("file:") else Path(database)


def _shown(url: URL) -> str:
    """Return ``url`` as it may be printed: without its password."""
    return url.render_as_string(hide_password=True)


def _hidden(message: str, *urls: URL) -> str:
    """Return ``message`` with the password of each of ``urls`` masked, wherever it appears."""
    for url in urls:
        if url.password:
            message = message.replace(str(url.password), "***")
    return message
