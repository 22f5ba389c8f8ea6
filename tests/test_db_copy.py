"""Test ``yupnope db copy``: SQLite to PostgreSQL and back, verified, and each refusal.

The source is filled through the app's own doors (the command line, the pages, the API, the
passkey rules), and each copy is then used as an instance: the same passwords, cookies and
tokens work there, and a new user gets an id of its own.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import Engine, inspect, select

from authenticator import SoftAuthenticator
from helpers import (
    GOOD_PASSWORD,
    SAME_ORIGIN,
    add_user,
    assert_one_line_error,
    free_port,
    login,
    migrate_to,
    run_cli,
)
from yupnope import db, migrations, wiring
from yupnope.client import Client
from yupnope.second_factors.ceremonies import RelyingParty
from yupnope.store import copy as copying

#: The origin the source's passkey was made for.
PASSKEY_ORIGIN = "https://login.example.com"


@dataclass
class Filled:
    """What a user of the source holds: cookies, a token, the second factor's secret."""

    session: str
    api_session: str
    personal_token: str
    totp_secret: str


def fill(app: Flask, runner: CliRunner) -> Filled:
    """Fill the source as its users and operator would, a row in every kind of table or so."""
    added = run_cli(
        runner, "users", "add", "alice", "--password-stdin", "--email", "alice@example.com",
        input=GOOD_PASSWORD + "\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    add_user(app, "bob")
    for command in (
        ["groups", "add", "staff"],
        ["users", "groups", "alice", "--add", "staff"],
        ["oidc", "clients", "add", "Notes", "--redirect-uri", "https://notes.example.com/cb"],
        ["oidc", "rotate-keys"],
    ):
        assert run_cli(runner, *command).exit_code == 0, command
    alice = app.test_client()
    assert login(alice, "alice").status_code == 303
    made = alice.post("/api/v1/me/tokens", headers=SAME_ORIGIN, json={"name": "backup"})
    assert made.status_code == 201
    api = app.test_client().post(
        "/api/v1/sessions", json={"username": "alice", "password": GOOD_PASSWORD}
    )
    assert api.status_code == 201, api.json
    bob = app.test_client()
    assert login(bob, "bob").status_code == 303
    started = bob.post("/api/v1/me/totp", headers=SAME_ORIGIN)
    secret = started.json["secret"]
    code = pyotp.TOTP(secret).now()
    confirmed = bob.post("/api/v1/me/totp/confirm", headers=SAME_ORIGIN, json={"code": code})
    assert confirmed.status_code == 200
    assert login(app.test_client(), "bob", "a wrong guess").status_code == 303
    with app.app_context():
        now = datetime.now(UTC)
        laptop = Client.of("192.0.2.1", "Laptop/1.0")
        opened = wiring.sessions().start(wiring.operator().find("bob"), laptop, now)
        session, user = wiring.sessions().find(opened.token, now) or (None, None)
        assert session is not None and user is not None
        party = RelyingParty.of(PASSKEY_ORIGIN, PASSKEY_ORIGIN)
        options = wiring.passkeys().registration_options(party, user, session, now)
        answer = SoftAuthenticator(PASSKEY_ORIGIN).register(options)
        wiring.passkeys().register(party, user, session, "Laptop", answer, laptop, now)
    cookie = alice.get_cookie("yupnope_session")
    assert cookie is not None
    return Filled(cookie.value, api.json["token"], made.json["secret"], secret)


def rows_in(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Read every row of every table, in the order of its primary key, as the types give it."""
    with engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in connection.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in copying.tables()
        }


def counts_in(engine: Engine) -> dict[str, int]:
    """Count the rows of every table yupnope keeps."""
    return {name: len(rows) for name, rows in rows_in(engine).items()}


def copied(runner: CliRunner, target: str) -> dict[str, int]:
    """Run ``db copy --to TARGET --json`` and return its counts."""
    result = run_cli(runner, "db", "copy", "--to", target, "--json")
    assert result.exit_code == 0, result.output
    counts: dict[str, int] = json.loads(result.stdout)
    return counts


def assert_works_as_the_source(app: Flask, filled: Filled) -> None:
    """Check that the copy's users, cookies, tokens and second factor work, and ids go on."""
    browser = app.test_client()
    browser.set_cookie("yupnope_session", filled.session)
    assert "alice" in browser.get("/yup").get_data(as_text=True)
    for token in (filled.api_session, filled.personal_token):
        me = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json["username"] == "alice"
    assert login(app.test_client(), "alice").headers["Location"] == "/yup"
    bob = app.test_client()
    assert login(bob, "bob").headers["Location"] == "/login/second-factor"
    # The next step's code: the source took the current one, and the copy kept that.
    code = pyotp.TOTP(filled.totp_secret).at(datetime.now(UTC) + timedelta(seconds=30))
    answered = bob.post("/login/second-factor", headers=SAME_ORIGIN, data={"code": code})
    assert answered.headers["Location"] == "/yup"
    add_user(app, "carol")
    with app.app_context():
        ids = [wiring.operator().find(name).id for name in ("alice", "bob", "carol")]
    assert ids[2] > max(ids[:2])
    carol = app.test_client()
    assert login(carol, "carol").headers["Location"] == "/yup"
    made = carol.post("/api/v1/me/tokens", headers=SAME_ORIGIN, json={"name": "new"})
    assert made.status_code == 201


def test_a_copy_to_postgresql_and_back_holds_every_row_and_works(
    app_factory: Callable[..., Flask],
    runner: CliRunner,
    instance: Path,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = app_factory()
    filled = fill(source, runner)
    expected = counts_in(wiring.get(source).engine)
    # Times, flags and a passkey's bytes, read back through the tables' types, as they were.
    rows = rows_in(wiring.get(source).engine)
    assert all(expected[name] for name in ("users", "sessions", "passkeys", "oidc_keys"))

    into_postgresql = copied(runner, postgres_url)
    assert into_postgresql == expected
    on_postgresql = app_factory(database_url=postgres_url)
    engine = wiring.get(on_postgresql).engine
    assert set(inspect(engine).get_table_names()) - {"alembic_version"} == set(into_postgresql)
    assert counts_in(engine) == expected
    assert rows_in(engine) == rows

    # Back from PostgreSQL, as the database in force, to a new SQLite file: shown as a table.
    monkeypatch.setenv("YUPNOPE_DATABASE_URL", postgres_url)
    back = f"sqlite:///{instance / 'copy.db'}"
    printed = run_cli(runner, "db", "copy", "--to", back)
    assert printed.exit_code == 0, printed.output
    lines = printed.stdout.splitlines()
    assert lines[0].split() == ["TABLE", "ROWS"]
    assert {line.split()[0]: int(line.split()[1]) for line in lines[1:-1]} == expected
    on_sqlite = app_factory(database_url=back)
    assert rows_in(wiring.get(on_sqlite).engine) == rows

    assert_works_as_the_source(on_postgresql, filled)
    assert_works_as_the_source(on_sqlite, filled)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_rows_are_read_and_written_in_batches(app: Flask, tmp_path: Path) -> None:
    for number in range(5):
        add_user(app, f"user{number}")
    target = db.make_engine(f"sqlite:///{tmp_path / 'target.db'}")
    try:
        migrations.upgrade(target)
        counts = copying.copy_all(wiring.get(app).engine, target, batch_rows=2)
        assert counts["users"] == 5 and counts == counts_in(target)
    finally:
        target.dispose()


def test_a_failure_half_way_leaves_the_target_empty(
    app: Flask, runner: CliRunner, postgres_url: str
) -> None:
    fill(app, runner)
    target = db.make_engine(postgres_url)
    try:
        migrations.upgrade(target)
        last = copying.tables()[-1]
        with target.begin() as connection:
            connection.exec_driver_sql(
                f"ALTER TABLE {last.name} ADD CONSTRAINT refused CHECK (false)"
            )
        result = run_cli(runner, "db", "copy", "--to", postgres_url)
        assert_one_line_error(result, "refused", "nothing was copied")
        assert not any(counts_in(target).values())
    finally:
        target.dispose()


def test_a_target_with_a_row_is_refused_naming_its_table(
    app: Flask, runner: CliRunner, tmp_path: Path
) -> None:
    add_user(app, "alice")
    path = tmp_path / "busy.db"
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
        connection.execute("INSERT INTO notes VALUES ('kept')")
        connection.commit()
    result = run_cli(runner, "db", "copy", "--to", f"sqlite:///{path}")
    assert_one_line_error(result, "is not empty", "notes")
    with closing(sqlite3.connect(path)) as connection:
        names = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        assert [name for (name,) in names] == ["notes"]


def test_a_second_copy_into_the_same_target_is_refused(
    app: Flask, runner: CliRunner, tmp_path: Path
) -> None:
    add_user(app, "alice")
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    assert copied(runner, target)["users"] == 1
    again = run_cli(runner, "db", "copy", "--to", target)
    assert_one_line_error(again, "not empty: its table login_events holds rows")


@pytest.mark.parametrize(
    ("url", "fragments"),
    [
        ("mysql://root:hunter2@db.example.com/yupnope", ["--to", "mysql", "not supported"]),
        ("not a url", ["--to", "is not a database URL"]),
        ("postgresql+psycopg2://root:hunter2@localhost/y", ["--to", "psycopg 3"]),
    ],
)
def test_an_unsupported_url_is_one_line(
    app: Flask, runner: CliRunner, url: str, fragments: list[str]
) -> None:
    result = run_cli(runner, "db", "copy", "--to", url)
    assert_one_line_error(result, *fragments)
    assert "hunter2" not in result.output


def test_the_database_in_force_is_refused_as_the_target(
    app: Flask, runner: CliRunner, instance: Path
) -> None:
    add_user(app, "alice")
    for written in (instance / "yupnope.db", instance / "." / ".." / instance.name / "yupnope.db"):
        result = run_cli(runner, "db", "copy", "--to", f"sqlite:///{written}")
        assert_one_line_error(result, "database in force")
    for memory in ("sqlite://", "sqlite:///:memory:"):
        assert_one_line_error(run_cli(runner, "db", "copy", "--to", memory), "in memory")


def test_an_unreachable_target_is_one_line_without_its_password(
    app: Flask, runner: CliRunner
) -> None:
    url = f"postgres://nobody:hunter2@127.0.0.1:{free_port()}/gone"
    result = run_cli(runner, "db", "copy", "--to", url)
    assert_one_line_error(result, "cannot reach postgresql+psycopg://nobody:***@127.0.0.1")
    assert "hunter2" not in result.output


def test_a_source_behind_or_ahead_of_the_code_is_refused(
    runner: CliRunner, instance: Path, tmp_path: Path
) -> None:
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    assert_one_line_error(run_cli(runner, "db", "copy", "--to", target), "no database at")
    engine = db.make_engine(f"sqlite:///{instance / 'yupnope.db'}")
    try:
        migrate_to(engine, "0008")
    finally:
        engine.dispose()
    behind = run_cli(runner, "db", "copy", "--to", target)
    assert_one_line_error(behind, "at revision 0008", "yupnope db upgrade")
    assert run_cli(runner, "db", "upgrade").exit_code == 0
    with closing(sqlite3.connect(instance / "yupnope.db")) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0099'")
        connection.commit()
    ahead = run_cli(runner, "db", "copy", "--to", target)
    assert_one_line_error(ahead, "0099", "newer version")
