"""Test the operator's command line: in-process through CliRunner, and as a real process.

The ``client`` fixture's app and the runner share one instance, so what a command does shows
up in the app at once.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pyotp
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from authenticator import SoftAuthenticator
from helpers import (
    GOOD_PASSWORD,
    SAME_ORIGIN,
    assert_one_line_error,
    run_cli,
    run_yupnope,
    sign_in_to_app,
)
from helpers import login as post_login_form

TUTORIAL_USERS = {"david": {"password": "Baldy1"}, "kate": {"password": "k8t"}}

WHEN = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")


# Helpers


def add(runner: CliRunner, name: str, password: str = GOOD_PASSWORD) -> Any:
    """Run ``users add NAME --password-stdin`` with ``password``."""
    return run_cli(runner, "users", "add", name, "--password-stdin", input=password + "\n")


def table(runner: CliRunner) -> dict[str, list[str]]:
    """Return ``users list`` as name -> [created, last login, state]."""
    result = run_cli(runner, "users", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert re.split(r" {2,}", lines[0]) == ["NAME", "CREATED", "LAST LOGIN", "STATE"]
    rows: dict[str, list[str]] = {}
    for line in lines[1:]:
        # Columns are padded and joined by two spaces; a name never holds two spaces in a row.
        name, *rest = re.split(r" {2,}", line)
        assert len(rest) == 3, line
        rows[name] = rest
    return rows


def login(client: FlaskClient, username: str, password: str) -> str:
    """Post the login form like a same-site browser and return where it redirects."""
    response = post_login_form(client, username, password)
    assert response.status_code == 303
    location: str = response.headers["Location"]
    return location


def logged_in_as(client: FlaskClient, username: str) -> bool:
    """Return whether the client's cookie still opens /yup for ``username``."""
    response = client.get("/yup")
    if response.status_code == 200:
        assert username in response.get_data(as_text=True)
        return True
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    return False


def write_json(path: Path, data: object) -> Path:
    """Write ``data`` as JSON to ``path`` and return the path."""
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def instance_bytes(instance: Path) -> bytes:
    """Return every byte the instance holds on disk: database, its WAL, and the rest."""
    return b"".join(p.read_bytes() for p in sorted(instance.rglob("*")) if p.is_file())


# users add


def test_add_with_password_stdin(runner: CliRunner, client: FlaskClient) -> None:
    result = add(runner, "alice")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Added user 'alice'.\n"
    created, last_login, state = table(runner)["alice"]
    shown = datetime.strptime(created, "%Y-%m-%d %H:%M UTC").replace(tzinfo=UTC)
    assert abs(shown - datetime.now(UTC)) < timedelta(minutes=2)
    assert (last_login, state) == ("never", "active")
    assert login(client, "alice", GOOD_PASSWORD) == "/yup"


def test_add_reads_the_line_without_its_newline_only(
    runner: CliRunner, client: FlaskClient
) -> None:
    # Spaces are part of a password; only the line's end is not.
    assert add(runner, "alice", "  spaced out password  ").exit_code == 0
    assert login(client, "alice", "  spaced out password  ") == "/yup"
    assert login(client, "alice", "spaced out password") == "/nope"


def test_add_drops_a_windows_line_ending(runner: CliRunner, client: FlaskClient) -> None:
    result = run_cli(
        runner, "users", "add", "alice", "--password-stdin", input=GOOD_PASSWORD + "\r\n"
    )
    assert result.exit_code == 0, result.output
    assert login(client, "alice", GOOD_PASSWORD) == "/yup"


def test_add_says_a_name_is_taken_before_asking_for_a_password(runner: CliRunner) -> None:
    assert add(runner, "alice").exit_code == 0
    result = run_cli(runner, "users", "add", "ALICE", input="")
    assert_one_line_error(result, "taken")
    assert "Password" not in result.stderr


def test_add_prompts_twice(runner: CliRunner, client: FlaskClient) -> None:
    result = run_cli(runner, "users", "add", "alice", input=f"{GOOD_PASSWORD}\n{GOOD_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "Added user 'alice'." in result.stdout
    # The prompts go to stderr, so stdout stays fit for a script; the password is never echoed.
    assert "Password" in result.stderr
    assert GOOD_PASSWORD not in result.output
    assert list(table(runner)) == ["alice"]
    assert login(client, "alice", GOOD_PASSWORD) == "/yup"


def test_add_prompt_mismatch_writes_nothing(runner: CliRunner) -> None:
    result = run_cli(runner, "users", "add", "alice", input=f"{GOOD_PASSWORD}\n{GOOD_PASSWORD}!\n")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Password: ",
        "Repeat for confirmation: ",
        "Error: the two passwords do not match; nothing was changed",
    ]
    assert result.stdout == ""
    assert table(runner) == {}


def test_add_refuses_a_weak_password_before_asking_for_it_again(runner: CliRunner) -> None:
    result = run_cli(runner, "users", "add", "alice", input="password\npassword\n")
    assert result.exit_code == 1
    prompt, refusal = result.stderr.splitlines()
    assert prompt == "Password: "
    assert refusal.startswith("Error: ") and "common" in refusal
    assert table(runner) == {}


@pytest.mark.parametrize("again", ["alice", "ALICE", "Alice", "\uff21lice", " alice "])
def test_add_taken_name_case_insensitive(runner: CliRunner, again: str) -> None:
    assert add(runner, "alice").exit_code == 0
    before = table(runner)
    assert_one_line_error(add(runner, again, "another good passphrase"), "taken")
    assert table(runner) == before


@pytest.mark.parametrize("look_alike", ["i\u0307nci", "İnci", "\u0456nci"])
def test_add_a_name_that_looks_like_a_taken_one(runner: CliRunner, look_alike: str) -> None:
    assert add(runner, "inci").exit_code == 0
    before = table(runner)
    if look_alike == "\u0456nci":  # a Cyrillic і among Latin letters: refused as it is
        assert_one_line_error(add(runner, look_alike), "several scripts (Cyrillic and Latin)")
    else:
        assert_one_line_error(add(runner, look_alike), f"The name {look_alike!r} is taken.")
    assert table(runner) == before


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("k8t", "at least 8"),
        ("password", "common"),
        ("Trustno1", "common"),
        ("Administrator", "name"),
        ("x" * 257, "at most 256"),
        ("", "at least 8"),
    ],
)
def test_add_weak_password_writes_nothing(runner: CliRunner, password: str, why: str) -> None:
    assert_one_line_error(add(runner, "administrator", password), why)
    assert table(runner) == {}


@pytest.mark.parametrize(
    "name",
    ["", "   ", "tab\there", "two  spaces", "x" * 65, "zero\u200bwidth", "new\nline", "\u3164"],
)
def test_add_invalid_name_writes_nothing(runner: CliRunner, name: str) -> None:
    assert_one_line_error(add(runner, name))
    assert table(runner) == {}


# users list


def test_list_shows_created_last_login_and_state(
    runner: CliRunner, client: FlaskClient, tmp_path: Path
) -> None:
    for name in ("alice", "bob"):
        assert add(runner, name).exit_code == 0
    file = write_json(tmp_path / "u.json", TUTORIAL_USERS)
    assert run_cli(runner, "users", "import", str(file)).exit_code == 0
    assert run_cli(runner, "users", "disable", "bob").exit_code == 0

    rows = table(runner)
    assert list(rows) == ["alice", "bob", "david", "kate"]
    assert all(row[1] == "never" for row in rows.values())
    assert [row[2] for row in rows.values()] == [
        "active",
        "disabled",
        "active, must change password",
        "active, must change password",
    ]

    before = datetime.now(UTC).replace(second=0, microsecond=0)
    assert login(client, "alice", GOOD_PASSWORD) == "/yup"
    after = datetime.now(UTC)
    created, last_login, state = table(runner)["alice"]
    assert WHEN.fullmatch(created)
    shown = datetime.strptime(last_login, "%Y-%m-%d %H:%M UTC").replace(tzinfo=UTC)
    assert before <= shown <= after
    assert state == "active"
    # A failed login is not a login.
    assert login(client, "bob", GOOD_PASSWORD) == "/nope"
    assert table(runner)["bob"][1] == "never"


def test_list_on_an_empty_instance_is_just_the_header(runner: CliRunner) -> None:
    assert table(runner) == {}


# remove, set-password, disable, enable


def test_remove_deletes_the_user_and_ends_their_sessions(
    runner: CliRunner, client: FlaskClient
) -> None:
    add(runner, "alice")
    add(runner, "bob")
    assert login(client, "alice", GOOD_PASSWORD) == "/yup"
    assert logged_in_as(client, "alice")

    result = run_cli(runner, "users", "remove", "ALICE", "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Removed user 'alice'.\n"

    assert not logged_in_as(client, "alice")
    assert list(table(runner)) == ["bob"]
    assert login(client, "alice", GOOD_PASSWORD) == "/nope"
    # The name is free again.
    assert add(runner, "alice", "a brand new passphrase").exit_code == 0


@pytest.mark.parametrize("answer", ["n\n", "\n", ""], ids=["no", "default", "end-of-input"])
def test_remove_asks_first_and_keeps_the_user_unless_told_yes(
    runner: CliRunner, client: FlaskClient, answer: str
) -> None:
    add(runner, "alice")
    result = run_cli(runner, "users", "remove", "alice", input=answer)
    assert result.exit_code == 1
    assert "Remove user 'alice' for good" in result.stderr
    assert result.stderr.splitlines()[-1] == "Error: kept user 'alice': nothing was removed"
    assert "Traceback" not in result.output
    assert list(table(runner)) == ["alice"]
    assert login(client, "alice", GOOD_PASSWORD) == "/yup"

    agreed = run_cli(runner, "users", "remove", "alice", input="y\n")
    assert agreed.exit_code == 0, agreed.output
    assert agreed.stdout == "Removed user 'alice'.\n"
    assert table(runner) == {}


@pytest.mark.parametrize(
    "args", [[], ["users"], ["users", "remove"], ["audit"], ["db", "upgrade"]], ids=" ".join
)
def test_dash_h_is_help_on_every_command(runner: CliRunner, args: list[str]) -> None:
    short = run_cli(runner, *args, "-h")
    assert short.exit_code == 0, short.output
    assert short.stdout.startswith("Usage: ")
    assert short.stdout == run_cli(runner, *args, "--help").stdout


def test_set_password_replaces_it_and_ends_sessions(runner: CliRunner, client: FlaskClient) -> None:
    add(runner, "alice")
    assert login(client, "alice", GOOD_PASSWORD) == "/yup"

    new = "a brand new passphrase"
    result = run_cli(runner, "users", "set-password", "alice", "--password-stdin", input=new)
    assert result.exit_code == 0, result.output

    assert not logged_in_as(client, "alice")
    assert login(client, "alice", GOOD_PASSWORD) == "/nope"
    assert login(client, "alice", new) == "/yup"


def test_set_password_by_prompt_clears_must_change(
    runner: CliRunner, client: FlaskClient, tmp_path: Path
) -> None:
    run_cli(runner, "users", "import", str(write_json(tmp_path / "u.json", TUTORIAL_USERS)))
    assert table(runner)["david"][2] == "active, must change password"
    new = "a brand new passphrase"
    result = run_cli(runner, "users", "set-password", "david", input=f"{new}\n{new}\n")
    assert result.exit_code == 0, result.output
    assert table(runner)["david"][2] == "active"
    assert login(client, "david", new) == "/yup"


def test_set_password_refuses_a_weak_one_and_keeps_the_old(
    runner: CliRunner, client: FlaskClient
) -> None:
    add(runner, "alice")
    assert login(client, "alice", GOOD_PASSWORD) == "/yup"
    result = run_cli(runner, "users", "set-password", "alice", "--password-stdin", input="k8t\n")
    assert_one_line_error(result, "at least 8")
    assert logged_in_as(client, "alice")
    assert login(client, "alice", "k8t") == "/nope"
    assert login(client, "alice", GOOD_PASSWORD) == "/yup"


def test_disable_ends_sessions_and_refuses_login_until_enabled(
    runner: CliRunner, client: FlaskClient, app_factory: Callable[..., Flask]
) -> None:
    add(runner, "alice")
    assert login(client, "alice", GOOD_PASSWORD) == "/yup"

    result = run_cli(runner, "users", "disable", "alice")
    assert result.exit_code == 0, result.output
    assert not logged_in_as(client, "alice")
    other = app_factory().test_client()
    assert login(other, "alice", GOOD_PASSWORD) == "/nope"
    assert table(runner)["alice"][2] == "disabled"

    result = run_cli(runner, "users", "enable", "alice")
    assert result.exit_code == 0, result.output
    assert table(runner)["alice"][2] == "active"
    # The old session was deleted, not merely hidden while disabled: enabling does not revive it.
    assert not logged_in_as(client, "alice")
    assert login(other, "alice", GOOD_PASSWORD) == "/yup"
    assert logged_in_as(other, "alice")


def test_commands_on_one_user_leave_the_others_alone(
    runner: CliRunner, app_factory: Callable[..., Flask]
) -> None:
    add(runner, "alice")
    add(runner, "bob")
    bob = app_factory().test_client()
    assert login(bob, "bob", GOOD_PASSWORD) == "/yup"
    assert run_cli(runner, "users", "disable", "alice").exit_code == 0
    result = run_cli(
        runner, "users", "set-password", "alice", "--password-stdin", input="new passphrase 1"
    )
    assert result.exit_code == 0
    assert run_cli(runner, "users", "remove", "alice", "--yes").exit_code == 0
    assert logged_in_as(bob, "bob")


@pytest.mark.parametrize(
    "command", ["remove", "set-password", "disable", "enable"], ids=lambda c: c
)
def test_unknown_user_is_one_line(runner: CliRunner, command: str) -> None:
    add(runner, "alice")
    before = table(runner)
    result = run_cli(runner, "users", command, "nobody", input=GOOD_PASSWORD + "\n")
    assert_one_line_error(result, "No user is named 'nobody'")
    assert table(runner) == before


# users import


def test_import_the_tutorial_file(
    runner: CliRunner, client: FlaskClient, tmp_path: Path, instance: Path
) -> None:
    file = write_json(tmp_path / "users.json", TUTORIAL_USERS)
    result = run_cli(runner, "users", "import", str(file))
    assert result.exit_code == 0, result.output
    assert "Added 2 user(s)." in result.stdout
    assert "2 of them must choose a new password" in result.stdout

    rows = table(runner)
    assert list(rows) == ["david", "kate"]
    assert {row[2] for row in rows.values()} == {"active, must change password"}
    # They log in with the tutorial's passwords, and are sent to choose new ones.
    assert login(client, "david", "Baldy1") == "/account"
    assert login(client, "kate", "k8t") == "/account"
    assert client.get("/yup").headers["Location"] == "/account"

    with closing(sqlite3.connect(instance / "yupnope.db")) as db:
        hashes = [row[0] for row in db.execute("SELECT password_hash FROM users")]
    assert len(hashes) == 2
    assert all(h.startswith("$argon2id$v=19$") for h in hashes)
    assert b"Baldy1" not in instance_bytes(instance)


def test_import_hashes_on_no_more_threads_than_slots(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Import with fewer slots than cores and a gate that waits a millisecond: none is busy."""
    monkeypatch.setenv("YUPNOPE_HASH_CONCURRENCY", "1")
    monkeypatch.setenv("YUPNOPE_HASH_WAIT_SECONDS", "0.001")
    users = {f"user{i:03}": {"password": f"passphrase number {i}"} for i in range(200)}
    result = run_cli(runner, "users", "import", str(write_json(tmp_path / "u.json", users)))
    assert result.exit_code == 0, result.output
    assert "Added 200 user(s)." in result.stdout


def test_import_accepts_a_byte_order_mark(runner: CliRunner, tmp_path: Path) -> None:
    file = tmp_path / "users.json"
    file.write_bytes(b"\xef\xbb\xbf" + json.dumps(TUTORIAL_USERS).encode())
    result = run_cli(runner, "users", "import", str(file))
    assert result.exit_code == 0, result.output
    assert list(table(runner)) == ["david", "kate"]


def test_import_a_password_that_passes_the_policy_needs_no_change(
    runner: CliRunner, client: FlaskClient, tmp_path: Path
) -> None:
    file = write_json(tmp_path / "u.json", {"erin": {"password": "é" * 256}})
    assert run_cli(runner, "users", "import", str(file)).exit_code == 0
    assert table(runner)["erin"][2] == "active"
    assert login(client, "erin", "é" * 256) == "/yup"


def test_import_skips_and_reports_existing_names(
    runner: CliRunner, client: FlaskClient, tmp_path: Path
) -> None:
    add(runner, "DAVID")
    file = write_json(tmp_path / "users.json", TUTORIAL_USERS)
    result = run_cli(runner, "users", "import", str(file))
    assert result.exit_code == 0, result.output
    assert "Added 1 user(s)." in result.stdout
    assert "Skipped 1 existing: david" in result.stdout
    assert list(table(runner)) == ["DAVID", "kate"]
    # The existing account keeps its own password.
    assert login(client, "david", "Baldy1") == "/nope"
    assert login(client, "david", GOOD_PASSWORD) == "/yup"

    again = run_cli(runner, "users", "import", str(file))
    assert again.exit_code == 0
    assert "Imported nobody: every user in the file exists already." in again.stdout
    assert "Added" not in again.stdout
    # Only the import that added someone is in the log.
    audit = run_cli(runner, "audit").stdout
    assert len(re.findall(r" admin_users_imported ", audit)) == 1
    assert "Skipped 2 existing: david, kate" in again.stdout


def test_import_skips_names_that_look_like_existing_ones(runner: CliRunner, tmp_path: Path) -> None:
    add(runner, "inci")
    users = {"i\u0307nci": {"password": "a pass phrase"}, "kate": {"password": "k8t"}}
    result = run_cli(runner, "users", "import", str(write_json(tmp_path / "u.json", users)))
    assert result.exit_code == 0, result.output
    assert "Added 1 user(s)." in result.stdout
    assert "Skipped 1 existing: i\u0307nci" in result.stdout
    assert sorted(table(runner)) == ["inci", "kate"]


def test_import_refuses_a_file_with_two_names_alike(runner: CliRunner, tmp_path: Path) -> None:
    users = {"inci": {"password": "a pass phrase"}, "İnci": {"password": "another one"}}
    result = run_cli(runner, "users", "import", str(write_json(tmp_path / "u.json", users)))
    assert_one_line_error(result, "user 'İnci' looks like 'inci'")
    assert table(runner) == {}


BAD_FILES: dict[str, bytes] = {
    "not JSON": b'{"david": {"password": "Baldy1"}',
    "empty file": b"",
    "not UTF-8": '{"d\u00e4vid": {"password": "Baldy1"}}'.encode("latin-1"),
    "top-level array": b'[{"david": {"password": "Baldy1"}}]',
    "top-level string": b'"david"',
    "value is a string": b'{"david": "Baldy1"}',
    "value is null": b'{"david": null}',
    "password not a string": b'{"david": {"password": 123456789}}',
    "password null": b'{"david": {"password": null}}',
    "no password": b'{"david": {}}',
    "extra key": b'{"david": {"password": "Baldy1", "admin": true}}',
    "empty password": b'{"david": {"password": ""}}',
    "password over 256": json.dumps({"david": {"password": "x" * 257}}).encode(),
    "invalid name": b'{"da\\tvid": {"password": "Baldy1"}}',
    "empty name": b'{"": {"password": "Baldy1"}}',
    "name too long": json.dumps({"d" * 65: {"password": "Baldy1"}}).encode(),
    "names equal after case-folding": b'{"david": {"password": "a"}, "DAVID": {"password": "b"}}',
    "NFKC twins": '{"\uff24avid": {"password": "a"}, "david": {"password": "b"}}'.encode(),
    "same name twice": b'{"david": {"password": "a"}, "david": {"password": "b"}}',
    "look-alike twins": '{"inci": {"password": "a"}, "İnci": {"password": "b"}}'.encode(),
    "mixed scripts": '{"\u0430lice": {"password": "a"}}'.encode(),
    "a symbol in a name": '{"bob\u2665": {"password": "a"}}'.encode(),
    "password key twice": b'{"david": {"password": "a", "password": "b"}}',
    "nested too deeply": b"[" * 100_000,
    "integer too long": b'{"david": {"password": ' + b"9" * 5000 + b"}}",
}


@pytest.mark.parametrize("content", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_import_malformed_file_writes_nothing(
    runner: CliRunner, tmp_path: Path, content: bytes
) -> None:
    add(runner, "zoe")
    before = table(runner)
    file = tmp_path / "users.json"
    file.write_bytes(content)
    assert_one_line_error(run_cli(runner, "users", "import", str(file)), str(file))
    assert table(runner) == before


@pytest.mark.parametrize("which", ["missing", "directory"])
def test_import_unreadable_path_is_one_line(runner: CliRunner, tmp_path: Path, which: str) -> None:
    path = tmp_path / "nothing.json"
    if which == "directory":
        path.mkdir()
    assert_one_line_error(run_cli(runner, "users", "import", str(path)), str(path))
    assert table(runner) == {}


@pytest.mark.parametrize("bad_at", [0, 50, 99])
def test_import_partly_bad_file_writes_nothing(
    runner: CliRunner, tmp_path: Path, bad_at: int
) -> None:
    entries: dict[str, object] = {
        f"user{i:03}": {"password": f"pass phrase {i}"} for i in range(100)
    }
    entries[f"user{bad_at:03}"] = {"password": ""}
    file = write_json(tmp_path / "users.json", entries)
    assert_one_line_error(run_cli(runner, "users", "import", str(file)), f"user{bad_at:03}")
    assert table(runner) == {}
    # The same file, mended, imports whole.
    entries[f"user{bad_at:03}"] = {"password": "mended phrase"}
    write_json(file, entries)
    assert run_cli(runner, "users", "import", str(file)).exit_code == 0
    assert len(table(runner)) == 100


# db upgrade, serve, version, configuration


def test_db_upgrade_creates_the_database_and_twice_is_harmless(
    runner: CliRunner, instance: Path
) -> None:
    assert not (instance / "yupnope.db").exists()
    result = run_cli(runner, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.stdout
    with closing(sqlite3.connect(instance / "yupnope.db")) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        first = db.execute("SELECT version_num FROM alembic_version").fetchall()
    assert {"users", "sessions", "login_events", "alembic_version"} <= tables
    assert len(first) == 1

    add(runner, "alice")
    result = run_cli(runner, "db", "upgrade")
    assert result.exit_code == 0, result.output
    with closing(sqlite3.connect(instance / "yupnope.db")) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == first
    assert list(table(runner)) == ["alice"]


def test_db_upgrade_creates_a_missing_instance_folder(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = tmp_path / "not" / "yet"
    monkeypatch.setenv("YUPNOPE_INSTANCE_PATH", str(fresh))
    assert run_cli(runner, "db", "upgrade").exit_code == 0
    assert (fresh / "yupnope.db").is_file()
    assert (fresh / "secret_key").stat().st_mode & 0o777 == 0o600


def test_serve_help(runner: CliRunner) -> None:
    result = run_cli(runner, "serve", "--help")
    assert result.exit_code == 0
    for option in ("--host", "--port", "--workers"):
        assert option in result.stdout


def test_version(runner: CliRunner) -> None:
    result = run_cli(runner, "--version")
    assert result.exit_code == 0
    # In-process the program is named after the function; the real process test checks the name.
    assert result.stdout.endswith(f", version {version('yupnope')}\n")


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("YUPNOPE_COOKIE_SECURE", "maybe", "YUPNOPE_COOKIE_SECURE"),
        ("YUPNOPE_SESSION_IDLE_SECONDS", "abc", "YUPNOPE_SESSION_IDLE_SECONDS"),
        ("YUPNOPE_SESSION_IDLE_SECONDS", "0", "at least 1"),
        ("YUPNOPE_SIGNUP_OPEN", "perhaps", "true or false"),
    ],
)
@pytest.mark.parametrize(
    "command", [("serve",), ("db", "upgrade"), ("users", "list")], ids=" ".join
)
def test_bad_config_is_one_line(
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    instance: Path,
    variable: str,
    value: str,
    fragment: str,
    command: tuple[str, ...],
) -> None:
    monkeypatch.setenv(variable, value)
    assert_one_line_error(run_cli(runner, *command), fragment, value)
    assert not (instance / "yupnope.db").exists()


def test_bad_instance_file_is_one_line(runner: CliRunner, instance: Path) -> None:
    (instance / "yupnope.toml").write_text('cookie_secure = "always"\nsesion_idle_seconds = 5\n')
    assert_one_line_error(run_cli(runner, "users", "list"), "sesion_idle_seconds")


def test_unreadable_database_is_one_line(runner: CliRunner, instance: Path) -> None:
    (instance / "yupnope.db").write_bytes(b"this is not a database" * 100)
    assert_one_line_error(run_cli(runner, "users", "list"), "database")


# The real process: python -m yupnope


def test_python_m_yupnope_adds_and_lists(instance: Path) -> None:
    version_run = run_yupnope(instance, "--version")
    assert version_run.returncode == 0
    assert version_run.stdout == f"yupnope, version {version('yupnope')}\n"

    added = run_yupnope(
        instance, "users", "add", "alice", "--password-stdin", input=GOOD_PASSWORD + "\n"
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout == "Added user 'alice'.\n"
    listed = run_yupnope(instance, "users", "list")
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^alice +\d{4}-\d\d-\d\d \d\d:\d\d UTC +never +active$", listed.stdout, re.M)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(("users", "disable", "nobody"), "No user is named", id="unknown user"),
        pytest.param(("users", "add", "ALICE", "--password-stdin"), "taken", id="taken name"),
        pytest.param(("users", "import", "{tmp}"), "Is a directory", id="import a directory"),
        pytest.param(("users", "import", "{tmp}/bad.json"), "not valid JSON", id="bad JSON"),
        pytest.param(("serve", "--port", "0"), "YUPNOPE_COOKIE_SECURE", id="bad config"),
    ],
)
def test_process_errors_are_one_line_without_traceback(
    instance: Path, tmp_path: Path, args: tuple[str, ...], fragment: str
) -> None:
    ok = run_yupnope(instance, "users", "add", "alice", "--password-stdin", input=GOOD_PASSWORD)
    assert ok.returncode == 0, ok.stderr
    (tmp_path / "bad.json").write_text('{"david": {"password": "Baldy1"},}')
    settings = {"YUPNOPE_COOKIE_SECURE": "maybe"} if args[0] == "serve" else {}
    argv = [arg.format(tmp=tmp_path) for arg in args]
    result = run_yupnope(instance, *argv, input=GOOD_PASSWORD + "\n", settings=settings)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert fragment in lines[0]
    rows = run_yupnope(instance, "users", "list").stdout.splitlines()[1:]
    assert [row.split()[0] for row in rows] == ["alice"]


def test_import_a_password_that_is_not_text_is_one_line(runner: CliRunner, tmp_path: Path) -> None:
    file = tmp_path / "users.json"
    file.write_text('{"bob": {"password": "\\ud800abcdefgh"}}')
    assert_one_line_error(run_cli(runner, "users", "import", str(file)), "not text")
    assert table(runner) == {}


def test_add_with_bytes_that_are_not_utf8_on_stdin_is_one_line(instance: Path) -> None:
    result = run_yupnope(
        instance, "users", "add", "carol", "--password-stdin", input=b"abc\xffdefghij\n"
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), lines
    assert "Traceback" not in result.stderr


def test_a_schema_newer_than_the_code_is_one_line(runner: CliRunner, instance: Path) -> None:
    assert run_cli(runner, "db", "upgrade").exit_code == 0
    with closing(sqlite3.connect(instance / "yupnope.db")) as db:
        db.execute("UPDATE alembic_version SET version_num = '0099'")
        db.commit()
    for command in (["db", "upgrade"], ["users", "list"], ["serve"]):
        assert_one_line_error(run_cli(runner, *command), "0099", "newer version")


# audit

AUDIT_BROWSER = {"REMOTE_ADDR": "192.0.2.10", "HTTP_USER_AGENT": "AuditBrowser/1.0"}


#: Where the audit test's passkey is used: its relying party is that origin's host.
PASSKEY_ORIGIN = "https://login.example.com"


def browser(app: Flask) -> FlaskClient:
    """Return a client with a known address and user agent."""
    made = app.test_client()
    made.environ_base.update(AUDIT_BROWSER)
    return made


def cookie_values(response: Any) -> set[str]:
    """Return the values of every cookie a response sets."""
    return {line.split(";")[0].split("=", 1)[1] for line in response.headers.getlist("Set-Cookie")}


def test_audit_records_every_kind_of_event_and_no_secret(
    app_factory: Callable[..., Flask], runner: CliRunner, instance: Path, tmp_path: Path
) -> None:
    from yupnope import wiring
    from yupnope.client import Client
    from yupnope.kinds import EventKind

    app = app_factory(throttle_global_limit=1, throttle_signup_limit=1)
    started = datetime.now(UTC)
    secrets = {
        GOOD_PASSWORD,
        "bobs first passphrase",
        "erins first passphrase",
        "bobs second passphrase",
        "alices new passphrase",
        "tr0ub4dor3xyz",
        "a wrong guess for alice",
    }

    # The operator: added, imported, password set, disabled, enabled, removed.
    assert add(runner, "alice").exit_code == 0
    users = {
        "bob": {"password": "bobs first passphrase"},
        "erin": {"password": "erins first passphrase"},
    }
    imported = run_cli(runner, "users", "import", str(write_json(tmp_path / "u.json", users)))
    assert imported.exit_code == 0
    set_bob = run_cli(
        runner, "users", "set-password", "bob", "--password-stdin", input="bobs second passphrase\n"
    )
    assert set_bob.exit_code == 0
    for action in ("disable", "enable"):
        assert run_cli(runner, "users", action, "bob").exit_code == 0
    with app.app_context():
        ids = {name: wiring.operator().find(name).id for name in ("alice", "bob", "erin")}
    assert run_cli(runner, "users", "remove", "erin", "--yes").exit_code == 0
    # Groups: added, alice put in one, and the group removed with her in it.
    assert run_cli(runner, "groups", "add", "staff").exit_code == 0
    assert run_cli(runner, "users", "groups", "alice", "--add", "staff").exit_code == 0
    assert run_cli(runner, "groups", "remove", "staff", "--force").exit_code == 0

    # Browsers: sign-up, and one more from the same address (throttled).
    carol = browser(app)
    signed_up = carol.post(
        "/signup", data={"username": "carol", "password": GOOD_PASSWORD}, headers=SAME_ORIGIN
    )
    assert signed_up.headers["Location"] == "/yup"
    secrets |= cookie_values(signed_up)
    dave = browser(app).post(
        "/signup", data={"username": "dave", "password": GOOD_PASSWORD}, headers=SAME_ORIGIN
    )
    assert dave.status_code == 429
    with app.app_context():
        ids["carol"] = wiring.operator().find("carol").id

    # alice logs in, changes her password; a stranger fails, then is throttled (global limit 1).
    alice = browser(app)
    logged_in = login(alice, "alice", GOOD_PASSWORD)
    assert logged_in == "/yup"
    secrets |= {
        c.value
        for c in (alice.get_cookie("yupnope_session"), alice.get_cookie("yupnope_device"))
        if c
    }
    wrong = alice.post(
        "/account/password",
        headers=SAME_ORIGIN,
        data={"current_password": "not her password", "new_password": "alices new passphrase"},
    )
    assert wrong.status_code == 403
    secrets.add("not her password")
    changed = alice.post(
        "/account/password",
        headers=SAME_ORIGIN,
        data={"current_password": GOOD_PASSWORD, "new_password": "alices new passphrase"},
    )
    assert changed.headers["Location"] == "/account?done=password"
    # From her page's script (the same site, with her cookie): a token made and revoked, and
    # another session of hers ended.
    made = alice.post("/api/v1/me/tokens", headers=SAME_ORIGIN, json={"name": "backup script"})
    assert made.status_code == 201
    secrets.add(made.json["secret"])
    revoked = alice.delete(f"/api/v1/me/tokens/{made.json['id']}", headers=SAME_ORIGIN)
    assert revoked.status_code == 204
    with app.app_context():
        other = wiring.sessions().start(
            wiring.operator().find("alice"), Client.of("198.51.100.7", None), datetime.now(UTC)
        )
    secrets.add(other.token)
    ended_one = alice.delete(f"/api/v1/me/sessions/{other.record.id}", headers=SAME_ORIGIN)
    assert ended_one.status_code == 204
    # alice signs in to two apps with OpenID Connect: she signs out of one, the operator ends
    # the other.
    first_app = sign_in_to_app(app, alice, "Notes")
    signed_out = alice.post(f"/account/apps/{first_app}/sign-out", headers=SAME_ORIGIN)
    assert signed_out.status_code == 303
    second_app = sign_in_to_app(app, alice, "Photos")
    assert run_cli(runner, "oidc", "grants", "revoke", second_app).exit_code == 0
    secrets |= {first_app, second_app}

    # Second factors: alice sets up an app (ten recovery codes with it), logs in elsewhere with
    # a recovery code, then fails at the second step until she is throttled, and removes the
    # app; the operator resets bob's.
    started_app = alice.post("/api/v1/me/totp", headers=SAME_ORIGIN)
    assert started_app.status_code == 201
    app_secret = started_app.json["secret"]
    confirmed = alice.post(
        "/api/v1/me/totp/confirm", headers=SAME_ORIGIN, json={"code": pyotp.TOTP(app_secret).now()}
    )
    assert confirmed.status_code == 200
    recovery = confirmed.json["recovery_codes"]
    secrets |= {app_secret, *recovery, *(code.replace("-", "") for code in recovery)}
    elsewhere = browser(app)
    assert login(elsewhere, "alice", "alices new passphrase") == "/login/second-factor"
    completed = elsewhere.post(
        "/login/second-factor", headers=SAME_ORIGIN, data={"code": recovery[0]}
    )
    assert completed.headers["Location"] == "/yup"
    # Passkeys, through their rules with a software authenticator's real signatures: one added,
    # its clone refused, a login with it, and the passkey removed.
    from yupnope.errors import PasskeyRefused
    from yupnope.second_factors.assertions import Answer
    from yupnope.second_factors.ceremonies import RelyingParty

    party = RelyingParty.of(PASSKEY_ORIGIN, PASSKEY_ORIGIN)
    with app.app_context():
        web_client = Client.of("192.0.2.10", "AuditBrowser/1.0")
        at = datetime.now(UTC)
        added = wiring.sessions().start(wiring.operator().find("alice"), web_client, at)
        session, user = wiring.sessions().find(added.token, at) or (None, None)
        key = SoftAuthenticator(PASSKEY_ORIGIN, counter=10)
        passkeys = wiring.passkeys()
        options = passkeys.registration_options(party, user, session, at)
        made = passkeys.register(
            party, user, session, "Laptop", key.register(options), web_client, at
        )
        logins = wiring.passkey_logins()
        clone = SoftAuthenticator(
            PASSKEY_ORIGIN,
            counter=3,
            credential_id=key.credential_id,
            key=key.key,
            user_handle=key.user_handle,
        )
        asked = logins.login_options(party, "audit-browser", web_client, at)
        with pytest.raises(PasskeyRefused):
            logins.log_in(Answer(party, clone.assert_(asked)), "audit-browser", web_client, at)
        asked = logins.login_options(party, "audit-browser", web_client, at)
        logins.log_in(Answer(party, key.assert_(asked)), "audit-browser", web_client, at)
        assert passkeys.remove(user, made.id, web_client, at)
    guesser = browser(app)
    assert login(guesser, "alice", "alices new passphrase") == "/login/second-factor"
    wrong = "".join("1" if digit == "0" else "0" for digit in pyotp.TOTP(app_secret).now())
    statuses = [
        guesser.post("/login/second-factor", headers=SAME_ORIGIN, data={"code": wrong}).status_code
        for _ in range(6)
    ]
    assert statuses == [401] * 5 + [429]
    assert alice.delete("/api/v1/me/totp", headers=SAME_ORIGIN).status_code == 204
    assert run_cli(runner, "users", "reset-second-factors", "bob").exit_code == 0
    stranger = browser(app)
    # A password typed into the name field must not be kept.
    assert login(stranger, "tr0ub4dor3xyz", "a wrong guess for alice") == "/nope"
    assert login(stranger, "alice", "a wrong guess for alice").startswith("/nope?wait=")

    # Logout, logout everywhere, and bob deletes his account from a session of his own.
    assert alice.post("/logout", headers=SAME_ORIGIN).status_code == 303
    assert carol.post("/account/logout-everywhere", headers=SAME_ORIGIN).status_code == 303
    with app.app_context():
        bobs_session = wiring.sessions().start(
            wiring.operator().find("bob"),
            Client.of("192.0.2.10", "AuditBrowser/1.0"),
            datetime.now(UTC),
        )
    secrets.add(bobs_session.token)
    bob = browser(app)
    bob.set_cookie("yupnope_session", bobs_session.token)
    deleted = bob.post(
        "/account/delete", headers=SAME_ORIGIN, data={"password": "bobs second passphrase"}
    )
    assert deleted.headers["Location"] == "/?done=deleted"

    # Email, carol's: the operator sets an address, she confirms another, removes it, resets
    # her password with a mailed link, and says "this wasn't me" to a sign-in.
    with app.app_context():
        from yupnope.mail.links import NOT_ME_LIFETIME, VERIFY_LIFETIME, Links, Purpose

        at = datetime.now(UTC)
        store = wiring.store()
        links = Links(store)
        user = wiring.operator().find("carol")
        addresses = wiring.addresses()
        addresses.set_by_operator(user, "carol@example.com", at)
        made = links.mint(user.id, Purpose.VERIFY, at, VERIFY_LIFETIME, address="c@new.example")
        addresses.verify(made, web_client, at)
        assert addresses.remove(user, web_client, at)
        reset = links.mint(
            user.id, Purpose.RESET, at, VERIFY_LIFETIME, password_hash=user.password_hash
        )
        wiring.resets().complete(reset, "carols new passphrase", web_client, at)
        not_me = links.mint(user.id, Purpose.NOT_ME, at, NOT_ME_LIFETIME)
        wiring.notices().not_me(not_me, web_client, at)
        secrets |= {made, reset, not_me, "carols new passphrase"}

    assert run_cli(runner, "users", "unlock", "alice").exit_code == 0
    exported = run_cli(runner, "users", "export", "-")
    assert exported.exit_code == 0, exported.output
    ended = datetime.now(UTC)

    web = ("192.0.2.10", "AuditBrowser/1.0")
    cli = ("cli", None)
    expected: dict[EventKind, tuple[str | None, bool, tuple[str, str | None]]] = {
        # kind: (whose, whether the name is kept, (address, user agent))
        EventKind.ADMIN_USER_ADDED: ("alice", True, cli),
        EventKind.ADMIN_USERS_IMPORTED: (None, False, cli),
        EventKind.ADMIN_USERS_EXPORTED: (None, False, cli),
        EventKind.ADMIN_PASSWORD_SET: ("bob", True, cli),
        EventKind.ADMIN_USER_DISABLED: ("bob", True, cli),
        EventKind.ADMIN_USER_ENABLED: ("bob", True, cli),
        EventKind.ADMIN_USER_REMOVED: ("erin", True, cli),
        EventKind.SIGNUP: ("carol", True, web),
        EventKind.SIGNUP_THROTTLED: (None, False, web),
        EventKind.LOGIN: ("alice", True, web),
        EventKind.PASSWORD_CHANGED: ("alice", True, web),
        EventKind.PASSWORD_CHECK_FAILED: ("alice", True, web),
        EventKind.LOGIN_FAILED: (None, False, web),
        EventKind.LOGIN_THROTTLED: ("alice", True, web),
        EventKind.LOGOUT: ("alice", False, web),
        EventKind.LOGOUT_EVERYWHERE: ("carol", False, web),
        EventKind.ACCOUNT_DELETED: ("bob", True, web),
        EventKind.ADMIN_USER_UNLOCKED: ("alice", True, cli),
        EventKind.TOKEN_CREATED: ("alice", True, web),
        EventKind.TOKEN_REVOKED: ("alice", True, web),
        EventKind.SESSION_ENDED: ("alice", False, web),
        EventKind.ADMIN_GROUP_ADDED: (None, False, cli),
        EventKind.ADMIN_GROUP_MEMBER_ADDED: ("alice", True, cli),
        EventKind.ADMIN_GROUP_MEMBER_REMOVED: ("alice", True, cli),
        EventKind.ADMIN_GROUP_REMOVED: (None, False, cli),
        EventKind.TOTP_ENABLED: ("alice", True, web),
        EventKind.RECOVERY_CODES_MADE: ("alice", True, web),
        EventKind.RECOVERY_CODE_USED: ("alice", True, web),
        EventKind.SECOND_FACTOR_FAILED: ("alice", True, web),
        EventKind.SECOND_FACTOR_THROTTLED: ("alice", True, web),
        EventKind.TOTP_REMOVED: ("alice", True, web),
        EventKind.ADMIN_SECOND_FACTORS_RESET: ("bob", True, cli),
        EventKind.PASSKEY_ADDED: ("alice", True, web),
        EventKind.PASSKEY_USED: ("alice", True, web),
        EventKind.PASSKEY_FAILED: ("alice", True, web),
        EventKind.PASSKEY_CLONE_SUSPECTED: ("alice", True, web),
        EventKind.PASSKEY_REMOVED: ("alice", True, web),
        EventKind.ADMIN_EMAIL_SET: ("carol", True, cli),
        EventKind.EMAIL_VERIFIED: ("carol", True, web),
        EventKind.EMAIL_REMOVED: ("carol", True, web),
        EventKind.PASSWORD_RESET: ("carol", True, web),
        EventKind.NOT_ME: ("carol", True, web),
        EventKind.APP_SIGNED_IN: ("alice", True, web),
        EventKind.APP_SIGNED_OUT: ("alice", True, web),
        EventKind.ADMIN_APP_SIGNED_OUT: ("alice", True, cli),
    }
    #: Kinds that happen more than once above: alice's logins, and the codes she got wrong.
    repeated = {EventKind.LOGIN: 3, EventKind.SECOND_FACTOR_FAILED: 5, EventKind.APP_SIGNED_IN: 2}
    #: The app each event about apps names.
    apps = {
        EventKind.APP_SIGNED_IN: {"Notes", "Photos"},
        EventKind.APP_SIGNED_OUT: {"Notes"},
        EventKind.ADMIN_APP_SIGNED_OUT: {"Photos"},
    }
    assert set(expected) == set(EventKind)
    every = sorted(kind.value for kind in EventKind for _ in range(repeated.get(kind, 1)))
    with app.app_context():
        events = wiring.store().events.since()
        assert sorted(e.kind for e in events) == every
        for event in events:
            whose, named, (address, agent) = expected[EventKind(event.kind)]
            assert started <= event.at <= ended, event.kind
            assert event.user_id == (ids[whose] if whose else None), event.kind
            assert event.username == (whose if named else None), event.kind
            assert (event.client_address, event.user_agent) == (address, agent), event.kind
            about_group = event.kind.startswith("admin_group")
            assert event.group_name == ("staff" if about_group else None), event.kind
            assert event.app_name in apps.get(EventKind(event.kind), {None}), event.kind

    with closing(sqlite3.connect(instance / "yupnope.db")) as database:
        rows = database.execute("SELECT * FROM login_events").fetchall()
    assert len(rows) == len(events)
    stored = repr(rows)
    for secret in secrets:
        assert secret not in stored

    printed = run_cli(runner, "audit")
    assert printed.exit_code == 0, printed.output
    lines = printed.stdout.splitlines()
    assert re.split(r" {2,}", lines[0]) == [
        "TIME",
        "EVENT",
        "USER",
        "GROUP",
        "APP",
        "ADDRESS",
        "USER AGENT",
    ]
    assert sorted(re.split(r" {2,}", line)[1] for line in lines[1:]) == every
    assert re.search(
        r"^\S+ \S+ +login +alice +- +- +192\.0\.2\.10 +AuditBrowser/1\.0$", printed.stdout, re.M
    )
    assert re.search(
        r"^\S+ \S+ +logout_everywhere +carol +- +- +192\.0\.2\.10 ", printed.stdout, re.M
    )
    assert re.search(r"^\S+ \S+ +admin_users_imported +- +- +- +cli +-$", printed.stdout, re.M)
    assert re.search(
        r"^\S+ \S+ +admin_app_signed_out +alice +- +Photos +cli +-$", printed.stdout, re.M
    )
    assert re.search(
        r"^\S+ \S+ +admin_group_member_added +alice +staff +- +cli +-$", printed.stdout, re.M
    )

    only_alice = run_cli(runner, "audit", "--user", "ALICE")
    assert only_alice.exit_code == 0
    kinds = [re.split(r" {2,}", line)[1] for line in only_alice.stdout.splitlines()[1:]]
    assert sorted(kinds) == sorted(
        kind.value
        for kind, (whose, _, _) in expected.items()
        if whose == "alice"
        for _ in range(repeated.get(kind, 1))
    )

    as_json = run_cli(runner, "audit", "--json")
    assert as_json.exit_code == 0, as_json.output
    objects = json.loads(as_json.stdout)
    assert sorted(item["event"] for item in objects) == every
    logout = next(item for item in objects if item["event"] == "logout_everywhere")
    assert logout["user"] == "carol"
    assert logout["user_id"] == ids["carol"]
    assert logout["address"] == "192.0.2.10"
    assert datetime.fromisoformat(logout["at"]).tzinfo is not None
    out_of_app = next(item for item in objects if item["event"] == "app_signed_out")
    assert (out_of_app["user"], out_of_app["app"]) == ("alice", "Notes")
    failed = next(item for item in objects if item["event"] == "login_failed")
    assert (failed["user"], failed["user_id"]) == (None, None)


def test_audit_keeps_a_removed_accounts_events_apart_from_the_next_with_its_id(
    app: Flask, runner: CliRunner, client: FlaskClient
) -> None:
    from yupnope import wiring

    add(runner, "alice")
    add(runner, "bobby")
    assert login(client, "bobby", GOOD_PASSWORD) == "/yup"
    assert client.post("/logout", headers=SAME_ORIGIN).status_code == 303
    assert run_cli(runner, "users", "remove", "bobby", "--yes").exit_code == 0
    add(runner, "mallory")
    with app.app_context():
        ids = {event.username: event.user_id for event in wiring.store().events.since()}
    # SQLite gives the largest rowid plus one: the removed newest account's id again.
    assert ids["mallory"] == ids["bobby"]

    rows = [re.split(r" {2,}", line) for line in run_cli(runner, "audit").stdout.splitlines()]
    assert [(row[1], row[2]) for row in rows[1:]] == [
        ("admin_user_added", "alice"),
        ("admin_user_added", "bobby"),
        ("login", "bobby"),
        ("logout", "bobby"),
        ("admin_user_removed", "bobby"),
        ("admin_user_added", "mallory"),
    ]
    mallory = run_cli(runner, "audit", "--user", "mallory").stdout.splitlines()
    assert [re.split(r" {2,}", line)[1] for line in mallory[1:]] == ["admin_user_added"]


def test_audit_since_an_age_or_a_date(app: Flask, runner: CliRunner) -> None:
    from yupnope import wiring
    from yupnope.client import Client
    from yupnope.kinds import EventKind

    now = datetime.now(UTC)
    ages = {
        "three-hours": timedelta(hours=3),
        "one-hour": timedelta(hours=1),
        "twenty-days": timedelta(days=20),
    }
    with app.app_context():
        store = wiring.store()
        with store.tx.write():
            for name, age in ages.items():
                store.events.record(
                    EventKind.LOGIN_FAILED, now - age, Client("192.0.2.1"), None, name
                )

    def shown(*args: str) -> list[str]:
        result = run_cli(runner, "audit", *args)
        assert result.exit_code == 0, result.output
        return [re.split(r" {2,}", line)[2] for line in result.stdout.splitlines()[1:]]

    assert shown() == ["twenty-days", "three-hours", "one-hour"]
    assert shown("--since", "2h") == ["one-hour"]
    assert shown("--since", "120m") == ["one-hour"]
    assert shown("--since", "4H") == ["three-hours", "one-hour"]
    assert shown("--since", "21d") == ["twenty-days", "three-hours", "one-hour"]
    ten_days_ago = (now - timedelta(days=10)).date().isoformat()
    assert shown("--since", ten_days_ago) == ["three-hours", "one-hour"]
    two_hours_ago = (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    assert shown("--since", two_hours_ago) == ["one-hour"]


@pytest.mark.parametrize(
    "since",
    ["yesterday", "2h30m", "-2h", "h", "2026-13-01", "99999999999d", "3000000d", "\u00b2d"],
)
def test_audit_bad_since_is_one_line(runner: CliRunner, since: str) -> None:
    assert_one_line_error(run_cli(runner, "audit", "--since", since), "--since", since)


def test_audit_of_an_unknown_user_is_one_line(runner: CliRunner) -> None:
    assert_one_line_error(run_cli(runner, "audit", "--user", "nobody"), "nobody")


def test_audit_escapes_what_a_terminal_would_act_on(app: Flask, instance: Path) -> None:
    # ESC starts a C0 control sequence and U+009B is CSI alone (C1): printed raw, a client's
    # User-Agent would move the cursor, recolour or retitle the operator's terminal.
    agent = "probe\x1b]0;owned\x07\x1b[2J\x9b31m\x85\x7f\tend\\x1b"
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = agent
    client.post(
        "/login", data={"username": "nobody", "password": "a wrong guess"}, headers=SAME_ORIGIN
    )
    result = run_yupnope(instance, "audit")
    assert result.returncode == 0, result.stderr
    assert [ch for ch in result.stdout if not ch.isprintable() and ch != "\n"] == []
    escaped = r"probe\x1b]0;owned\x07\x1b[2J\x9b31m\x85\x7f\tend\\x1b"
    assert escaped in result.stdout.splitlines()[1]


def test_users_list_prints_json_for_scripts(runner: CliRunner) -> None:
    assert add(runner, "alice").exit_code == 0
    with_address = ["users", "add", "bob", "--email", "bob@example.com", "--password-stdin"]
    added = run_cli(runner, *with_address, input=GOOD_PASSWORD + "\n")
    assert added.exit_code == 0
    listed = json.loads(run_cli(runner, "users", "list", "--json").stdout)
    assert [(u["username"], u["email"], u["disabled"]) for u in listed] == [
        ("alice", None, False),
        ("bob", "bob@example.com", False),
    ]
    assert listed[0]["last_login_at"] is None and "T" in listed[0]["created_at"]


def test_prune_deletes_what_has_run_out(runner: CliRunner, app: Flask) -> None:
    from yupnope import wiring
    from yupnope.client import Client

    assert add(runner, "alice").exit_code == 0
    long_ago = datetime.now(UTC) - timedelta(days=60)
    with app.app_context():
        wiring.sessions().start(wiring.operator().find("alice"), Client(), long_ago)
    pruned = json.loads(run_cli(runner, "prune", "--json").stdout)
    assert pruned["sessions"] == 1
    again = run_cli(runner, "prune")
    assert again.exit_code == 0 and again.stdout.startswith("Pruned 0 sessions, ")
