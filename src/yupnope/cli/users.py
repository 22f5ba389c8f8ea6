"""Manage users from the command line: ``yupnope users add | import | list | …``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click

from .. import new_passwords, wiring
from ..models import User
from ..operator import Operator
from .group import cli, now, one_line_errors, open_app, print_table
from .import_file import parse_import_file
from .import_formats import READERS
from .private_files import write_private


@cli.group()
def users() -> None:
    """Add, import, list and manage users."""


@contextmanager
def _user(username: str) -> Iterator[tuple[Operator, User]]:
    """Open the app and yield the operator's actions with the user named ``username``."""
    with open_app():
        operator = wiring.operator()
        yield operator, operator.find(username)


def _read_new_password(from_stdin: bool, username: str) -> str:
    """Return a new password for ``username``: one line of stdin, or typed twice.

    A typed one is checked against the policy before it is asked again, so a refused password
    is not typed twice for nothing; the caller's own check then stands for one from stdin.
    """
    if from_stdin:
        try:
            line = sys.stdin.readline()
        except UnicodeDecodeError:
            raise click.ClickException("the password on standard input is not UTF-8 text") from None
        # One line, without its line ending (a Windows "\r\n" too); other spaces are the password's.
        return line.removesuffix("\n").removesuffix("\r")
    value: str = click.prompt("Password", hide_input=True, err=True)
    new_passwords.acceptable(value, username, "password")
    again: str = click.prompt("Repeat for confirmation", hide_input=True, err=True)
    if again != value:
        raise click.ClickException("the two passwords do not match; nothing was changed")
    return value


@users.command("add")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--email", metavar="ADDRESS", help="Give the user this email address, verified.")
@one_line_errors
def users_add(username: str, password_stdin: bool, email: str | None) -> None:
    """Create a user; the password is prompted twice or read from stdin."""
    with open_app():
        operator = wiring.operator()
        addresses = wiring.addresses()
        # Say a name or address is taken before asking for a password that would be thrown away.
        name = operator.free_name(username)
        address = addresses.free(email) if email is not None else None
        password = _read_new_password(password_stdin, name.display)
        user = operator.add_user(name.display, password, now())
        if address is not None:
            addresses.set_by_operator(user, address, now())
        shown = f" with the verified address {address}" if address else ""
        click.echo(f"Added user {user.username!r}{shown}.")


@users.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@one_line_errors
def users_set_password(username: str, password_stdin: bool) -> None:
    """Set a user's password and end their sessions."""
    with _user(username) as (operator, user):
        operator.set_password(user, _read_new_password(password_stdin, user.username), now())
        click.echo(f"Set a new password for {user.username!r}; their sessions were ended.")


@users.command("remove")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Remove without asking (for scripts).")
@one_line_errors
def users_remove(username: str, yes: bool) -> None:
    """Delete a user and end their sessions, after asking (unless --yes)."""
    with _user(username) as (operator, user):
        question = (
            f"Remove user {user.username!r} for good, with their sessions, tokens, second "
            "factors and their sign-ins to apps?"
        )
        if not yes and not _agreed(question):
            raise click.ClickException(f"kept user {user.username!r}: nothing was removed")
        operator.remove_user(user, now())
        click.echo(f"Removed user {user.username!r}.")


def _agreed(question: str) -> bool:
    """Ask ``question`` on stderr; return whether the answer was yes (an end of input is no)."""
    try:
        return click.confirm(question, err=True)
    except click.Abort:
        # No answer: the prompt's line is ended, so the refusal that follows has one of its own.
        click.echo(err=True)
        return False


@users.command("disable")
@click.argument("username")
@one_line_errors
def users_disable(username: str) -> None:
    """Stop a user from logging in and end their sessions."""
    with _user(username) as (operator, user):
        operator.set_disabled(user, True, now())
        click.echo(f"Disabled user {user.username!r}; their sessions were ended.")


@users.command("enable")
@click.argument("username")
@one_line_errors
def users_enable(username: str) -> None:
    """Let a disabled user log in again."""
    with _user(username) as (operator, user):
        operator.set_disabled(user, False, now())
        click.echo(f"Enabled user {user.username!r}.")


@users.command("unlock")
@click.argument("username")
@one_line_errors
def users_unlock(username: str) -> None:
    """Clear a user's failed-login throttle so they can log in at once."""
    with _user(username) as (operator, user):
        if operator.unlock(user, now()):
            click.echo(f"Unlocked user {user.username!r}.")
        else:
            click.echo(f"User {user.username!r} had no failed logins to clear.")


@users.command("reset-second-factors")
@click.argument("username")
@one_line_errors
def users_reset_second_factors(username: str) -> None:
    """Remove a user's second factors and log them out everywhere (a lost phone)."""
    with _user(username) as (operator, user):
        if operator.reset_second_factors(user, now()):
            click.echo(f"Removed the second factors of {user.username!r}; they are logged out.")
        else:
            click.echo(f"User {user.username!r} had no second factor; they are logged out.")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@one_line_errors
def users_list(as_json: bool) -> None:
    """Print a table of users: name, created, last login, state."""
    with open_app():
        found = wiring.operator().users()
        addresses = wiring.addresses()
        listed = [
            {
                "username": user.username,
                "created_at": user.created_at.isoformat(),
                "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
                "disabled": user.disabled,
                "must_change_password": user.must_change_password,
                # Kept by migration 0004 beside an older account whose name looks the same.
                "looks_like_another": user.username_skeleton is None,
                "email": address.address if (address := addresses.of(user.id)) else None,
            }
            for user in found
        ]
    if as_json:
        click.echo(json.dumps(listed))
        return
    rows: list[tuple[str, ...]] = [("NAME", "CREATED", "LAST LOGIN", "STATE")]
    for user in found:
        state = "disabled" if user.disabled else "active"
        if user.must_change_password:
            state += ", must change password"
        if user.username_skeleton is None:
            state += ", looks like another user"
        last = _when(user.last_login_at) if user.last_login_at else "never"
        rows.append((user.username, _when(user.created_at), last, state))
    print_table(rows)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@users.command("import")
# No exists/dir_okay checks here: click reports those as a three-line usage error with exit
# status 2, and the README promises one line; reading the file reports them in one.
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "file_format",
    type=click.Choice(sorted(READERS)),
    default="json",
    show_default=True,
    help="json: yupnope's own, as `users export` writes it; htpasswd: Apache's; authelia: "
    "Authelia's users file.",
)
@one_line_errors
def users_import(file: Path, file_format: str) -> None:
    """Import users from JSON shaped like {"david": {"password": "Baldy1"}, ...}.

    An entry may carry another system's hash instead ({"password_hash": "..."}), kept until
    the user's first login. Passwords are hashed on as many threads as the process has hashing
    slots (one per core unless YUPNOPE_HASH_CONCURRENCY says fewer). The file is imported
    whole or not at all; names that exist already are skipped and reported.
    """
    entries = parse_import_file(file, file_format)
    with open_app(), ExitStack() as stack:
        updates: list[Callable[[int], None]] = []

        def progress(done: int) -> None:
            # Shown from the first entry done on: a refusal of the file before that (an
            # address taken) stays the one line it is.
            if not updates:
                bar = click.progressbar(
                    length=len(entries), label="Hashing passwords", file=sys.stderr
                )
                updates.append(stack.enter_context(bar).update)
            updates[0](done)

        # No more threads than slots: an extra one would only wait for a slot, and be
        # refused as busy once the gate's short wait for logins ran out.
        report = wiring.operator().import_users(
            entries, now(), workers=wiring.get().hasher.gate.slots, progress=progress
        )
    if report.added:
        click.echo(f"Added {len(report.added)} user(s).")
    elif entries:
        click.echo("Imported nobody: every user in the file exists already.")
    else:
        click.echo("Imported nobody: the file has no users.")
    if report.must_change:
        click.echo(
            f"{len(report.must_change)} of them must choose a new password at their next login "
            "(their password fails today's policy)."
        )
    if report.kept_hashes:
        click.echo(
            f"{len(report.kept_hashes)} of them keep the hash from the file until their first "
            "login, which replaces it with argon2id."
        )
    if report.new_groups:
        click.echo(f"Added group(s): {', '.join(report.new_groups)}")
    if report.skipped:
        click.echo(f"Skipped {len(report.skipped)} existing: {', '.join(report.skipped)}")


@users.command("export")
@click.argument("file", type=click.Path(path_type=Path, allow_dash=True))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@one_line_errors
def users_export(file: Path, force: bool) -> None:
    """Write every user, with their hash, address and groups, as `users import` reads them.

    FILE is made readable by its owner alone (0600); "-" writes to standard output.
    """
    with open_app():
        exported = wiring.operator().export_users(now())
    text = json.dumps(exported, ensure_ascii=False, indent=2) + "\n"
    if str(file) == "-":
        click.echo(text, nl=False)
        return
    write_private(file, text, force)
    click.echo(f"Exported {len(exported)} user(s) to {file}.")
