"""Test groups: their names, the operator's commands, GET /api/v1/me, and how soon a change counts.

A change to a user's groups must count from the user's next request, through any worker or
instance: two apps built apart on one database stand for two of them, as in test_revocation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import event

from helpers import (
    GOOD_PASSWORD,
    add_user,
    assert_one_line_error,
    count_rows,
    run_cli,
)
from yupnope import groupnames, wiring
from yupnope.errors import InvalidGroupName, UnknownUser
from yupnope.kinds import EventKind
from yupnope.models import Group, GroupMember

#: Run every app test here on SQLite and on PostgreSQL (see conftest.database_url).
BOTH_DATABASES = True

API = "/api/v1"


# Helpers


def cli_ok(runner: CliRunner, *args: str) -> list[str]:
    """Run ``yupnope ARGS``, assert it succeeded quietly on stderr; return its lines of output."""
    result = run_cli(runner, *args)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    lines: list[str] = result.stdout.splitlines()
    return lines


def group_table(runner: CliRunner) -> dict[str, int]:
    """Return ``groups list`` as name -> number of members, checked against ``--json``."""
    header, *rows = cli_ok(runner, "groups", "list")
    assert re.split(r" {2,}", header) == ["GROUP", "MEMBERS"]
    table = {name: int(count) for name, count in (re.split(r" {2,}", row) for row in rows)}
    (printed,) = cli_ok(runner, "groups", "list", "--json")
    assert json.loads(printed) == [{"name": name, "members": n} for name, n in table.items()]
    return table


def groups_of(runner: CliRunner, username: str) -> str:
    """Return the line ``users groups USERNAME`` prints."""
    (line,) = cli_ok(runner, "users", "groups", username)
    return line


def bearer(app: Flask, username: str = "alice") -> dict[str, str]:
    """Log ``username`` in through the API on ``app``; return the header that sends the token."""
    body = {"username": username, "password": GOOD_PASSWORD}
    response = app.test_client().post(f"{API}/sessions", json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    return {"Authorization": f"Bearer {response.get_json()['token']}"}


def groups_seen(app: Flask, header: dict[str, str]) -> list[str]:
    """Return the groups GET /me answers on ``app`` for the token in ``header``."""
    response = app.test_client().get(f"{API}/me", headers=header)
    assert response.status_code == 200, response.get_data(as_text=True)
    found: list[str] = response.get_json()["groups"]
    return found


def operator_changes(app: Flask, add: list[str], remove: list[str]) -> None:
    """Change alice's groups through ``app``'s operator actions."""
    with app.app_context():
        operator = wiring.operator()
        operator.change_groups(operator.find("alice"), add, remove, datetime.now(UTC))


def events_of(app: Flask) -> list[tuple[str, str | None, str | None]]:
    """Return every event in the log as (kind, user name, group name), oldest first."""
    with app.app_context():
        return [(e.kind, e.username, e.group_name) for e in wiring.store().events.since()]


@pytest.fixture
def accounts(app: Flask) -> Flask:
    """Return the app, where alice and bob have accounts."""
    add_user(app, "alice")
    add_user(app, "bob")
    return app


# Names


@pytest.mark.parametrize(
    ("typed", "kept"),
    [("staff", "staff"), ("Staff", "staff"), ("web-ops.eu_1", "web-ops.eu_1"), ("0", "0")],
)
def test_a_group_name_is_kept_in_lower_case(typed: str, kept: str) -> None:
    assert groupnames.parse(typed) == kept


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "-staff",  # an option, to a command line
        ".hidden",
        "a,b",  # two groups, in a comma-separated header
        "a b",
        "group:x",
        "staff\n",
        "\u212aelvin",  # the Kelvin sign, which str.lower() makes an ASCII "k"
        "caf\u00e9",
        "x" * 65,
    ],
)
def test_a_group_name_of_another_shape_is_refused_with_the_rule(typed: str) -> None:
    with pytest.raises(InvalidGroupName, match="lower-case letters a-z") as refused:
        groupnames.parse(typed)
    assert repr(typed) in str(refused.value)


def test_a_group_name_may_be_64_characters() -> None:
    assert groupnames.parse("x" * 64) == "x" * 64


# groups add | list | remove


def test_groups_are_added_listed_with_their_members_and_removed(
    accounts: Flask, runner: CliRunner
) -> None:
    assert group_table(runner) == {}
    assert cli_ok(runner, "groups", "add", "Staff") == ["Added group 'staff'."]
    assert cli_ok(runner, "groups", "add", "ops") == ["Added group 'ops'."]
    cli_ok(runner, "users", "groups", "alice", "--add", "staff", "--add", "ops")
    cli_ok(runner, "users", "groups", "bob", "--add", "staff")
    assert group_table(runner) == {"ops": 1, "staff": 2}
    cli_ok(runner, "users", "groups", "alice", "--remove", "ops")
    assert cli_ok(runner, "groups", "remove", "OPS") == ["Removed group 'ops'."]
    assert group_table(runner) == {"staff": 2}


def test_adding_a_group_that_exists_in_any_case_is_one_line(
    accounts: Flask, runner: CliRunner
) -> None:
    cli_ok(runner, "groups", "add", "staff")
    assert_one_line_error(
        run_cli(runner, "groups", "add", "STAFF"), "The group 'staff' exists already."
    )
    assert group_table(runner) == {"staff": 0}


@pytest.mark.parametrize("command", [["groups", "add"], ["groups", "remove"]])
def test_a_malformed_group_name_is_one_line(
    accounts: Flask, runner: CliRunner, command: list[str]
) -> None:
    assert_one_line_error(run_cli(runner, *command, "a,b"), "'a,b'", "lower-case letters a-z")
    assert group_table(runner) == {}


def test_removing_an_unknown_group_is_one_line(accounts: Flask, runner: CliRunner) -> None:
    assert_one_line_error(run_cli(runner, "groups", "remove", "ghosts"), "No group is named")


def test_a_group_with_members_is_removed_only_with_force(
    accounts: Flask, runner: CliRunner
) -> None:
    cli_ok(runner, "groups", "add", "staff")
    cli_ok(runner, "users", "groups", "alice", "--add", "staff")
    cli_ok(runner, "users", "groups", "bob", "--add", "staff")
    refused = run_cli(runner, "groups", "remove", "staff")
    assert_one_line_error(refused, "The group 'staff' has 2 members", "--force")
    assert group_table(runner) == {"staff": 2}

    removed = cli_ok(runner, "groups", "remove", "staff", "--force")
    assert removed == ["Removed group 'staff'; 2 members left it."]
    assert group_table(runner) == {}
    assert groups_of(runner, "alice") == "Groups of 'alice': (none)"
    assert count_rows(accounts, GroupMember) == 0
    assert events_of(accounts)[-3:] == [
        (EventKind.ADMIN_GROUP_MEMBER_REMOVED.value, "alice", "staff"),
        (EventKind.ADMIN_GROUP_MEMBER_REMOVED.value, "bob", "staff"),
        (EventKind.ADMIN_GROUP_REMOVED.value, None, "staff"),
    ]


def test_one_member_is_said_in_the_singular(accounts: Flask, runner: CliRunner) -> None:
    cli_ok(runner, "groups", "add", "staff")
    cli_ok(runner, "users", "groups", "alice", "--add", "staff")
    assert_one_line_error(run_cli(runner, "groups", "remove", "staff"), "has 1 member;")


# users groups NAME [--add G] [--remove G]


def test_users_groups_prints_changes_and_the_result(accounts: Flask, runner: CliRunner) -> None:
    for name in ("staff", "ops", "admins"):
        cli_ok(runner, "groups", "add", name)
    assert groups_of(runner, "ALICE") == "Groups of 'alice': (none)"
    assert cli_ok(runner, "users", "groups", "alice", "--add", "staff", "--add", "Admins") == [
        "Added 'alice' to admins, staff.",
        "Groups of 'alice': admins, staff",
    ]
    changed = cli_ok(
        runner, "users", "groups", "alice", "--add", "ops", "--add", "staff", "--remove", "admins"
    )
    assert changed == [
        "Added 'alice' to ops.",
        "Took 'alice' out of admins.",
        "Groups of 'alice': ops, staff",
    ]
    assert cli_ok(runner, "users", "groups", "alice", "--add", "ops", "--remove", "admins") == [
        "'alice' was in those groups and out of those already: nothing changed.",
        "Groups of 'alice': ops, staff",
    ]
    assert groups_of(runner, "alice") == "Groups of 'alice': ops, staff"
    assert groups_of(runner, "bob") == "Groups of 'bob': (none)"
    member_events = [e for e in events_of(accounts) if e[0].startswith("admin_group_member")]
    assert member_events == [
        (EventKind.ADMIN_GROUP_MEMBER_ADDED.value, "alice", "admins"),
        (EventKind.ADMIN_GROUP_MEMBER_ADDED.value, "alice", "staff"),
        (EventKind.ADMIN_GROUP_MEMBER_ADDED.value, "alice", "ops"),
        (EventKind.ADMIN_GROUP_MEMBER_REMOVED.value, "alice", "admins"),
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--add", "staff", "--add", "ghosts"], "No group is named 'ghosts'."),
        (["--remove", "ghosts", "--add", "staff"], "No group is named 'ghosts'."),
        (["--add", "staff", "--add", "bad,name"], "'bad,name'"),
        (["--add", "staff", "--remove", "STAFF"], "'staff' is named both to add and to remove"),
    ],
)
def test_a_refused_change_of_groups_is_one_line_and_changes_nothing(
    accounts: Flask, runner: CliRunner, options: list[str], message: str
) -> None:
    cli_ok(runner, "groups", "add", "staff")
    events = events_of(accounts)
    assert_one_line_error(run_cli(runner, "users", "groups", "alice", *options), message)
    assert groups_of(runner, "alice") == "Groups of 'alice': (none)"
    assert events_of(accounts) == events


@pytest.mark.parametrize("options", [[], ["--add", "staff"]])
def test_the_groups_of_an_unknown_user_are_one_line(
    accounts: Flask, runner: CliRunner, options: list[str]
) -> None:
    cli_ok(runner, "groups", "add", "staff")
    result = run_cli(runner, "users", "groups", "nobody", *options)
    assert_one_line_error(result, "No user is named 'nobody'")
    assert group_table(runner) == {"staff": 0}


def test_a_user_removed_meanwhile_is_refused_not_half_changed(accounts: Flask) -> None:
    now = datetime.now(UTC)
    with accounts.app_context():
        operator = wiring.operator()
        operator.add_group("staff", now)
        gone = operator.find("alice")
        operator.remove_user(gone, now)
        with pytest.raises(UnknownUser, match="alice"):
            operator.change_groups(gone, ["staff"], [], now)
    assert count_rows(accounts, GroupMember) == 0


def test_removing_a_user_or_a_group_takes_its_memberships_with_it(
    accounts: Flask, runner: CliRunner
) -> None:
    for name in ("staff", "ops"):
        cli_ok(runner, "groups", "add", name)
        cli_ok(runner, "users", "groups", "alice", "--add", name)
        cli_ok(runner, "users", "groups", "bob", "--add", name)
    assert count_rows(accounts, GroupMember) == 4
    cli_ok(runner, "users", "remove", "bob", "--yes")
    assert group_table(runner) == {"ops": 1, "staff": 1}
    cli_ok(runner, "groups", "remove", "ops", "--force")
    assert count_rows(accounts, GroupMember) == 1
    assert count_rows(accounts, Group) == 1
    assert groups_of(runner, "alice") == "Groups of 'alice': staff"


# GET /api/v1/me, and two apps on one database


def test_me_lists_the_groups_sorted(accounts: Flask) -> None:
    header = bearer(accounts)
    assert groups_seen(accounts, header) == []
    with accounts.app_context():
        for name in ("staff", "a-team", "ops", "a.team", "a_team"):
            wiring.operator().add_group(name, datetime.now(UTC))
    operator_changes(accounts, ["staff", "a-team", "ops", "a.team", "a_team"], [])
    assert groups_seen(accounts, header) == sorted(["staff", "a-team", "ops", "a.team", "a_team"])
    # Another user's groups are not hers, nor hers another's.
    assert groups_seen(accounts, bearer(accounts, "bob")) == []


@pytest.fixture
def pair(app_factory: Callable[..., Flask]) -> tuple[Flask, Flask]:
    """Return two apps on one database, where alice has an account and a group exists."""
    first = app_factory()
    add_user(first, "alice")
    with first.app_context():
        for name in ("staff", "ops"):
            wiring.operator().add_group(name, datetime.now(UTC))
    return first, app_factory()


def test_a_change_of_groups_on_one_instance_counts_at_the_others_next_request(
    pair: tuple[Flask, Flask],
) -> None:
    a, b = pair
    header = bearer(b)
    assert groups_seen(b, header) == []
    operator_changes(a, ["staff", "ops"], [])
    assert groups_seen(b, header) == ["ops", "staff"]
    operator_changes(a, [], ["staff"])
    assert groups_seen(b, header) == ["ops"]
    with a.app_context():
        wiring.operator().remove_group("ops", datetime.now(UTC), force=True)
    assert groups_seen(b, header) == []


@pytest.fixture
def statements(app: Flask) -> Iterator[list[str]]:
    """Yield the list every SQL statement the app's engine sends is appended to."""
    sent: list[str] = []
    engine = wiring.get(app).engine

    def record(*args: Any) -> None:
        sent.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    yield sent
    event.remove(engine, "before_cursor_execute", record)


def test_me_reads_the_session_the_user_and_the_groups_in_one_statement(
    accounts: Flask, statements: list[str]
) -> None:
    with accounts.app_context():
        wiring.operator().add_group("staff", datetime.now(UTC))
    operator_changes(accounts, ["staff"], [])
    header = bearer(accounts)
    statements.clear()
    assert groups_seen(accounts, header) == ["staff"]
    assert len(statements) == 1, statements
