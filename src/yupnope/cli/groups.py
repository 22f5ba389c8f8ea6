"""Manage groups from the command line: ``yupnope groups add | remove | list``, ``users groups``."""

from __future__ import annotations

import json

import click

from .. import wiring
from .group import cli, now, one_line_errors, open_app, print_table
from .users import users


@cli.group()
def groups() -> None:
    """Add, remove and list groups; `users groups` puts users in them."""


@groups.command("add")
@click.argument("name")
@one_line_errors
def groups_add(name: str) -> None:
    """Create a group: lower-case letters a-z, digits, '.', '_' and '-', at most 64."""
    with open_app():
        added = wiring.operator().add_group(name, now())
    click.echo(f"Added group {added!r}.")


@groups.command("remove")
@click.argument("name")
@click.option(
    "--force", is_flag=True, help="Remove it even with members: they leave the group with it."
)
@one_line_errors
def groups_remove(name: str, force: bool) -> None:
    """Delete a group; one with members only with --force."""
    with open_app():
        removed, members = wiring.operator().remove_group(name, now(), force=force)
    if members:
        # Counted, not named: a large group's names would flood the terminal; the event log
        # has each of them (`yupnope audit`).
        count = f"{len(members)} member{'s' if len(members) != 1 else ''}"
        click.echo(f"Removed group {removed!r}; {count} left it.")
    else:
        click.echo(f"Removed group {removed!r}.")


@groups.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@one_line_errors
def groups_list(as_json: bool) -> None:
    """Print a table of groups: name and number of members."""
    with open_app():
        found = wiring.operator().groups()
    if as_json:
        click.echo(json.dumps([{"name": name, "members": count} for name, count in found]))
        return
    rows: list[tuple[str, ...]] = [("GROUP", "MEMBERS")]
    rows += [(name, str(count)) for name, count in found]
    print_table(rows)


@users.command("groups")
@click.argument("username")
@click.option("--add", "add", multiple=True, metavar="GROUP", help="Put the user in GROUP.")
@click.option("--remove", "remove", multiple=True, metavar="GROUP", help="Take them out of GROUP.")
@one_line_errors
def users_groups(username: str, add: tuple[str, ...], remove: tuple[str, ...]) -> None:
    """Print a user's groups, or change them (--add, --remove, each repeatable) in one go.

    The change is seen at the user's next request, on every worker and instance.
    """
    with open_app():
        operator = wiring.operator()
        user = operator.find(username)
        if not add and not remove:
            click.echo(_groups_line(user.username, operator.groups_of(user)))
            return
        change = operator.change_groups(user, add, remove, now())
    name = user.username
    if change.added:
        click.echo(f"Added {name!r} to {', '.join(change.added)}.")
    if change.removed:
        click.echo(f"Took {name!r} out of {', '.join(change.removed)}.")
    if not change.added and not change.removed:
        click.echo(f"{name!r} was in those groups and out of those already: nothing changed.")
    click.echo(_groups_line(name, change.groups))


def _groups_line(username: str, names: list[str]) -> str:
    """Return the line that says which groups a user is in."""
    return f"Groups of {username!r}: {', '.join(names) if names else '(none)'}"
