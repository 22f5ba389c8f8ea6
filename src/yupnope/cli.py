"""Give the operator the ``yupnope`` command: serve, manage users, upgrade the database.

Every refusal ends with one line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from . import config, create_app, schema, services, usernames
from .errors import AccountError, Busy, ImportFileError, UsernameTaken
from .security import passwords
from .usernames import Username

P = ParamSpec("P")
R = TypeVar("R")


def _one_line_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn every expected failure into click's one-line ``Error: …`` and exit status 1."""

    @functools.wraps(command)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (AccountError, Busy, config.ConfigError, schema.SchemaError) as exc:
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
def _app() -> Iterator[Flask]:
    """Build the app from the settings in force, bring its schema up to date, enter its context."""
    app = create_app()
    engine = app.extensions["yupnope.engine"]
    try:
        schema.upgrade(engine)
        with app.app_context():
            yield app
    finally:
        # Close the pooled connections: `serve` forks its workers after this, and an open SQLite
        # connection must not cross a fork (sqlite.org/howtocorrupt.html, 2.6).
        engine.dispose()


def _now() -> datetime:
    return datetime.now(UTC)


@click.group()
@click.version_option(package_name="yupnope")
def cli() -> None:
    """Run and manage a yupnope login server."""


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes [default: one per CPU].",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Request threads per worker [default: six per CPU].",
)
@click.option("--debug", is_flag=True, help="Flask's reloading development server instead.")
@_one_line_errors
def serve(host: str, port: int, workers: int | None, threads: int | None, debug: bool) -> None:
    """Apply migrations, then serve with gunicorn (N worker processes)."""
    with _app() as app:
        pass
    if debug:
        app.run(host=host, port=port, debug=True)
        return
    from .server import Server, hashing_slots

    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    cpus = os.cpu_count() or 1
    workers = workers or cpus
    # Six per CPU: more than a worker's hashing slots and their queue (services.QUEUE_PER_CPU
    # per CPU) can hold, so a flood of logins always leaves threads for the pages.
    threads = threads or 6 * cpus
    # Workers build their app after the fork from the environment: one connection per thread,
    # and the machine's cores shared out among the workers as hashing slots.
    if not app.config["DATABASE_POOL_SIZE"]:
        os.environ[f"{config.PREFIX}DATABASE_POOL_SIZE"] = str(threads)
    if not app.config["HASH_CONCURRENCY"]:
        os.environ[f"{config.PREFIX}HASH_CONCURRENCY"] = str(hashing_slots(cpus, workers))
    Server(bind=bind, workers=workers, threads=threads).run()


@cli.group()
def db() -> None:
    """Manage the database schema."""


@db.command("upgrade")
@_one_line_errors
def db_upgrade() -> None:
    """Apply every schema migration the database lacks."""
    with _app():
        click.echo("The database schema is up to date.")


@cli.group()
def users() -> None:
    """Add, import, list and manage users."""


def _read_new_password(from_stdin: bool) -> str:
    if from_stdin:
        try:
            line = sys.stdin.readline()
        except UnicodeDecodeError:
            raise click.ClickException("the password on standard input is not UTF-8 text") from None
        # One line, without its line ending (a Windows "\r\n" too); other spaces are the password's.
        return line.removesuffix("\n").removesuffix("\r")
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    return value


@users.command("add")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@_one_line_errors
def users_add(username: str, password_stdin: bool) -> None:
    """Create a user; the password is prompted twice or read from stdin."""
    with _app():
        name = usernames.parse(username)
        store = services.store()
        if store.user_by_key(name.key) is not None:
            # Say so before asking for a password that would be thrown away.
            raise UsernameTaken(name.display)
        # Hold no transaction open while the operator types.
        store.end_read()
        password = _read_new_password(password_stdin)
        user = services.accounts().add_user(name.display, password, _now())
        click.echo(f"Added user {user.username!r}.")


@users.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@_one_line_errors
def users_set_password(username: str, password_stdin: bool) -> None:
    """Set a user's password and end their sessions."""
    with _app():
        accounts = services.accounts()
        user = accounts.find(username)
        accounts.store.end_read()
        accounts.set_password(user, _read_new_password(password_stdin), _now())
        click.echo(f"Set a new password for {user.username!r}; their sessions were ended.")


@users.command("remove")
@click.argument("username")
@_one_line_errors
def users_remove(username: str) -> None:
    """Delete a user and end their sessions."""
    with _app():
        accounts = services.accounts()
        user = accounts.find(username)
        accounts.remove_user(user, _now())
        click.echo(f"Removed user {user.username!r}.")


@users.command("disable")
@click.argument("username")
@_one_line_errors
def users_disable(username: str) -> None:
    """Stop a user from logging in and end their sessions."""
    with _app():
        accounts = services.accounts()
        user = accounts.find(username)
        accounts.set_disabled(user, True, _now())
        click.echo(f"Disabled user {user.username!r}; their sessions were ended.")


@users.command("enable")
@click.argument("username")
@_one_line_errors
def users_enable(username: str) -> None:
    """Let a disabled user log in again."""
    with _app():
        accounts = services.accounts()
        user = accounts.find(username)
        accounts.set_disabled(user, False, _now())
        click.echo(f"Enabled user {user.username!r}.")


@users.command("unlock")
@click.argument("username")
@_one_line_errors
def users_unlock(username: str) -> None:
    """Clear a user's failed-login throttle so they can log in at once."""
    with _app():
        accounts = services.accounts()
        user = accounts.find(username)
        if accounts.unlock(user, _now()):
            click.echo(f"Unlocked user {user.username!r}.")
        else:
            click.echo(f"User {user.username!r} had no failed logins to clear.")


@users.command("list")
@_one_line_errors
def users_list() -> None:
    """Print a table of users: name, created, last login, state."""
    with _app():
        rows: list[tuple[str, ...]] = [("NAME", "CREATED", "LAST LOGIN", "STATE")]
        for user in services.store().users():
            state = "disabled" if user.disabled else "active"
            if user.must_change_password:
                state += ", must change password"
            rows.append(
                (
                    user.username,
                    _when(user.created_at),
                    _when(user.last_login_at) if user.last_login_at else "never",
                    state,
                )
            )
        _print_table(rows)


def _print_table(rows: list[tuple[str, ...]]) -> None:
    """Print rows as columns padded to their widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@users.command("import")
# No exists/dir_okay checks here: click reports those as a three-line usage error with exit
# status 2, and the contract promises one line; reading the file reports them in one.
@click.argument("file", type=click.Path(path_type=Path))
@_one_line_errors
def users_import(file: Path) -> None:
    """Import users from JSON shaped like {"david": {"password": "Baldy1"}, ...}.

    Passwords are hashed on as many threads as the process has hashing slots (one per core
    unless YUPNOPE_HASH_CONCURRENCY says fewer). The file is imported whole or not at all;
    names that exist already are skipped and reported.
    """
    entries = parse_import_file(file)
    with _app():
        accounts = services.accounts()
        with click.progressbar(
            length=len(entries), label="Hashing passwords", file=sys.stderr
        ) as bar:
            # No more threads than slots: an extra one would only wait for a slot, and be
            # refused as busy once the gate's short wait for logins ran out.
            report = accounts.import_users(
                entries, _now(), workers=services.hash_slots(), progress=bar.update
            )
    click.echo(f"Added {len(report.added)} user(s).")
    if report.must_change:
        click.echo(
            f"{len(report.must_change)} of them must choose a new password at their next login "
            "(their password fails today's policy)."
        )
    if report.skipped:
        click.echo(f"Skipped {len(report.skipped)} existing: {', '.join(report.skipped)}")


def parse_import_file(file: Path) -> dict[Username, str]:
    """Return the file's entries as name and normalised password, or raise ImportFileError."""

    def object_without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # json.loads keeps the last of two equal keys without a word, which would drop a user
        # (or a password) the operator wrote down.
        found: dict[str, Any] = {}
        for key, value in pairs:
            if key in found:
                raise ImportFileError(f"{file}: {key!r} appears twice in one object")
            found[key] = value
        return found

    try:
        # utf-8-sig: editors on Windows start UTF-8 files with a byte-order mark.
        text = file.read_bytes().decode("utf-8-sig")
        data: Any = json.loads(text, object_pairs_hook=object_without_repeats)
    except OSError as exc:
        raise ImportFileError(f"cannot read {file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ImportFileError(f"{file} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ImportFileError(f"{file} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except (ValueError, RecursionError) as exc:
        # Valid JSON that Python refuses to hold: an integer of thousands of digits, or arrays
        # nested past the recursion limit. Without this they end in a traceback.
        reason = str(exc).split(";")[0]
        raise ImportFileError(f"{file} cannot be read as JSON: {reason}") from None
    if not isinstance(data, dict):
        raise ImportFileError(f'{file} must hold one JSON object: {{"name": {{"password": "…"}}}}')
    entries: dict[Username, str] = {}
    seen: dict[str, str] = {}
    for raw_name, value in data.items():
        where = f"{file}: user {raw_name!r}"
        try:
            name = usernames.parse(raw_name)
        except AccountError as exc:
            raise ImportFileError(f"{where}: {exc}") from None
        if name.key in seen:
            raise ImportFileError(f"{where} is the same name as {seen[name.key]!r}")
        seen[name.key] = raw_name
        if not isinstance(value, dict) or set(value) != {"password"}:
            raise ImportFileError(f'{where} must be {{"password": "…"}} and nothing else')
        password = value["password"]
        if not isinstance(password, str) or not password:
            raise ImportFileError(f"{where}: the password must be a non-empty string")
        secret = passwords.normalize(password)
        if secret is None:
            raise ImportFileError(
                f"{where}: the password is longer than {passwords.MAX_LENGTH} characters "
                "or is not text"
            )
        entries[name] = secret
    return entries


@cli.command()
@click.option("--user", "username", help="Only this user's events.")
@click.option(
    "--since",
    help="From this time on: an ISO date or time (2026-11-01, 2026-11-01T12:00) or an age "
    "(30m, 24h, 7d).",
)
@_one_line_errors
def audit(username: str | None, since: str | None) -> None:
    """Print the log of logins, failures, throttles, logouts and account changes."""
    start = _parse_since(since, _now()) if since else None
    with _app():
        user_id = services.accounts().find(username).id if username else None
        rows: list[tuple[str, ...]] = [("TIME", "EVENT", "USER", "ADDRESS", "USER AGENT")]
        for event in services.store().events_since(start, user_id):
            rows.append(
                (
                    event.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                    event.kind,
                    event.username or (f"#{event.user_id}" if event.user_id else "-"),
                    event.client_address or "-",
                    event.user_agent or "-",
                )
            )
        _print_table(rows)


def _parse_since(text: str, now: datetime) -> datetime:
    """Return the moment ``text`` names: an ISO date or time (UTC unless it says), or an age."""
    units = {"m": 60, "h": 3600, "d": 86400}
    amount, unit = text[:-1], text[-1:].lower()
    if unit in units and amount.isdigit():
        try:
            return now - timedelta(seconds=int(amount) * units[unit])
        except OverflowError:
            # An age past year 1 is no date a datetime can hold; without this, a traceback.
            raise click.ClickException(
                f"--since {text!r} reaches back further than any date"
            ) from None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.ClickException(
            f"--since takes an ISO date or time, or an age like 24h or 7d, not {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
