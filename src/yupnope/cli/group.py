"""Hold the ``yupnope`` command group and what every command shares: the app, errors, tables."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import ParamSpec, TypeVar

import click
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from .. import config, create_app, wiring
from ..errors import AccountError, Busy, SchemaError

P = ParamSpec("P")
R = TypeVar("R")


def one_line_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn every expected failure into click's one-line ``Error: …`` and exit status 1."""

    @functools.wraps(command)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (AccountError, Busy, config.ConfigError, SchemaError) as exc:
            raise click.ClickException(str(exc)) from None
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise click.ClickException(f"database error: {reason}") from None
        except OSError as exc:
            raise click.ClickException(
                f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
            ) from None

    return wrapped


@contextmanager
def open_app() -> Iterator[Flask]:
    """Build the app from the settings in force, bring its schema up to date, enter its context.

    What a migration wants the operator to know is printed to stderr, once: the run that
    applies it.
    """
    app = create_app()
    try:
        for note in migrate(app):
            click.echo(f"Note: {note}", err=True)
        with app.app_context():
            yield app
    finally:
        # Close the pooled connections: an open SQLite connection must not cross a fork
        # (sqlite.org/howtocorrupt.html, 2.6), and `serve --debug` forks its reloader.
        wiring.get(app).engine.dispose()


def migrate(app: Flask) -> list[str]:
    """Bring ``app``'s schema up to date; return what the migrations want the operator to know."""
    # Imported here, not with the command group: Alembic costs a process about 10 MiB, and
    # `serve` keeps it out of the process its workers are forked from (cli/serve.py).
    from .. import migrations

    return migrations.upgrade(wiring.get(app).engine)


def now() -> datetime:
    """Return the current aware UTC time."""
    return datetime.now(UTC)


def print_table(rows: list[tuple[str, ...]]) -> None:
    """Print rows as columns padded to their widest cell, every cell made printable."""
    rows = [tuple(printable(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def printable(text: str) -> str:
    """Return ``text`` with each character a terminal could act on written as its escape.

    A cell may hold what a client sent (its User-Agent): printed raw, ESC (C0) or CSI U+009B
    (C1) would start a control sequence in the operator's terminal (ECMA-48 5.3, CWE-150).
    Every character Python does not call printable (C0, DEL, C1, format characters such as
    U+202E, separators) is written as repr writes it (``\\x1b``, ``\\u202e``), and a backslash
    is doubled so an escape in the output always means an escaped character.
    """
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(
        ch if ch.isprintable() and ch != "\\" else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


# -h as well as --help, on every command: each context takes its parent's help option names.
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="yupnope")
def cli() -> None:
    """Run and manage a yupnope login server."""


@cli.command("prune")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as a JSON object.")
@one_line_errors
def prune(as_json: bool) -> None:
    """Delete what has run out: for a timer, since a server prunes only while it is asked."""
    with open_app():
        pruned = wiring.prune(now())
    counts = dataclasses.asdict(pruned)
    if as_json:
        click.echo(json.dumps(counts))
        return
    click.echo("Pruned " + ", ".join(f"{count} {kind}" for kind, count in counts.items()) + ".")
