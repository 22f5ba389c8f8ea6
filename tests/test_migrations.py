"""Test that the migrations build exactly the models' schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import argon2
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, column, func, inspect, select, table
from sqlalchemy.exc import OperationalError

from helpers import CHEAP_ARGON2, GOOD_PASSWORD, migrate_to, run_yupnope, schema_is_current
from yupnope import create_app, db, migrations, usernames, wiring
from yupnope.client import Client
from yupnope.errors import UsernameTaken
from yupnope.models import Base, User
from yupnope.security import tokens
from yupnope.sessions import LoginResult
from yupnope.sudo import Sudo


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def test_migrations_match_the_models_on_sqlite(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path}/x.db")
    assert not schema_is_current(engine)
    migrations.upgrade(engine)
    migrations.upgrade(engine)  # a second run has nothing to do
    assert schema_is_current(engine)
    assert _differences(engine) == []
    assert {"users", "sessions", "login_events"} <= set(inspect(engine).get_table_names())


def test_migrations_and_the_account_rules_work_on_postgresql(
    postgres_url: str, tmp_path: Path
) -> None:
    engine = db.make_engine(postgres_url)
    try:
        migrations.upgrade(engine)
        assert schema_is_current(engine)
        assert _differences(engine) == []
    finally:
        engine.dispose()
    app = create_app({"instance_path": str(tmp_path), "database_url": postgres_url, **CHEAP_ARGON2})
    now = datetime.now(UTC)
    try:
        with app.app_context():
            accounts = wiring.accounts()
            accounts.sign_up("Alice", "correct horse battery", Client(), now)
            logged_in = accounts.log_in("ALICE", "correct horse battery", Client(), now)
            # The session the login started, and one started on its own for the same user.
            another = wiring.sessions().start(logged_in.user, Client(), now)
            for started in (logged_in.session, another):
                found = wiring.sessions().find(started.token, now)
                assert found is not None and found[1].username == "Alice"
                assert found[0].created_at == now
    finally:
        wiring.get(app).engine.dispose()


def test_instances_migrating_one_postgresql_at_once_take_turns(
    postgres_url: str, tmp_path: Path
) -> None:
    """Without the advisory lock, racing CREATE TABLEs fail in all but one process."""
    racers = [
        subprocess.Popen(
            [sys.executable, "-m", "yupnope", "db", "upgrade"],
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("YUPNOPE_")},
                "YUPNOPE_INSTANCE_PATH": str(tmp_path / f"instance-{n}"),
                "YUPNOPE_DATABASE_URL": postgres_url,
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in range(6)
    ]
    results = [(racer.communicate(timeout=60)[1], racer.returncode) for racer in racers]
    for err, code in results:
        assert code == 0, err.decode()
    engine = db.make_engine(postgres_url)
    try:
        assert schema_is_current(engine)
        assert _differences(engine) == []
    finally:
        engine.dispose()


def test_a_stuck_statement_on_postgresql_is_cancelled(postgres_url: str) -> None:
    engine = db.make_engine(postgres_url, db.Limits(pool_size=3, statement_timeout_ms=100))
    try:
        assert engine.pool.size() == 3  # type: ignore[attr-defined]
        with engine.connect() as connection, pytest.raises(OperationalError, match="statement"):
            connection.execute(select(func.pg_sleep(2)))
    finally:
        engine.dispose()


def test_the_pool_size_setting_reaches_the_engine(app_factory: Any, postgres_url: str) -> None:
    app = app_factory(database_url=postgres_url, database_pool_size=7)
    assert wiring.get(app).engine.pool.size() == 7  # type: ignore[attr-defined]


# 0004: each user's name skeleton, filled in for the accounts already there.

#: Users as yupnope 0003 could hold them: a look-alike of an older name, a name today's rules
#: refuse (a symbol), and names the older code keyed as it still does.
OLD_USERS = ["alice", "bob♥", "\u0430lice", "inci", "İnci", "Straße"]


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """Return an engine on a database at revision 0003 holding OLD_USERS, in that order."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/old.db"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = db.make_engine(url)
    migrate_to(engine, "0003")
    hashed = argon2.PasswordHasher(memory_cost=8, time_cost=1, parallelism=1).hash(GOOD_PASSWORD)
    users = table(
        "users",
        *(column(name) for name in ("username", "username_key", "password_hash")),
        *(column(name) for name in ("disabled", "must_change_password", "created_at")),
    )
    with engine.begin() as connection:
        for name in OLD_USERS:
            # The key as the code before 0004 made it: NFKC of the case fold, which it still is.
            key = unicodedata.normalize("NFKC", name.casefold())
            connection.execute(
                users.insert().values(
                    username=name,
                    username_key=key,
                    password_hash=hashed,
                    disabled=False,
                    must_change_password=False,
                    created_at=datetime.now(UTC),
                )
            )
    yield engine
    engine.dispose()


def skeletons(engine: Engine) -> dict[str, str | None]:
    """Return each user's name with its skeleton."""
    with engine.connect() as connection:
        rows = connection.execute(select(User.username, User.username_skeleton)).all()
    return {name: skeleton for name, skeleton in rows}


def test_the_skeleton_migration_fills_every_user_and_keeps_look_alikes(
    old_database: Engine,
) -> None:
    notes = migrations.upgrade(old_database)
    assert notes == [
        "the user names 'alice' and 'аlice' look alike; both accounts are kept, and "
        "`yupnope users list` marks 'аlice'",
        "the user names 'inci' and 'İnci' look alike; both accounts are kept, and "
        "`yupnope users list` marks 'İnci'",
    ]
    assert skeletons(old_database) == {
        "alice": "alice",
        "bob♥": usernames.skeleton("bob♥"),
        "\u0430lice": None,
        "inci": "inci",
        "İnci": None,
        "Straße": "strasse",
    }
    assert schema_is_current(old_database)
    assert _differences(old_database) == []
    assert migrations.upgrade(old_database) == []  # said once, by the run that migrates


@contextmanager
def app_context_on(engine: Engine, tmp_path: Path) -> Iterator[None]:
    """Run the block in the context of an app on ``engine``'s database; close its engine after."""
    url = engine.url.render_as_string(hide_password=False)
    app = create_app({"instance_path": str(tmp_path), "database_url": url, **CHEAP_ARGON2})
    try:
        with app.app_context():
            yield
    finally:
        wiring.get(app).engine.dispose()


def test_accounts_kept_by_the_migration_log_in_and_hold_their_look_alikes(
    old_database: Engine, tmp_path: Path
) -> None:
    migrations.upgrade(old_database)
    now = datetime.now(UTC)
    with app_context_on(old_database, tmp_path):
        accounts = wiring.accounts()
        # Names today's rules refuse, or that look like an older one, still log in.
        for name in ("bob♥", "BOB♥", "\u0430lice", "İnci", "STRASSE"):
            assert accounts.log_in(name, GOOD_PASSWORD, Client(), now).user
        with pytest.raises(UsernameTaken):
            accounts.sign_up("al\u0131\u0307ce", GOOD_PASSWORD, Client(), now)
        # The holder of the skeleton goes: the look-alike kept beside it takes the skeleton.
        operator = wiring.operator()
        operator.remove_user(operator.find("alice"), now)
        with pytest.raises(UsernameTaken):
            accounts.sign_up("alice", GOOD_PASSWORD, Client(), now)
    assert skeletons(old_database)["\u0430lice"] == "alice"


@pytest.mark.parametrize("old_database", ["sqlite"], indirect=True)
def test_db_upgrade_names_the_look_alikes_and_users_list_marks_them(
    old_database: Engine, tmp_path: Path
) -> None:
    settings = {"YUPNOPE_DATABASE_URL": old_database.url.render_as_string(hide_password=False)}
    upgraded = run_yupnope(tmp_path / "instance", "db", "upgrade", settings=settings)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout == "The database schema is up to date.\n"
    assert upgraded.stderr.splitlines() == [
        "Note: the user names 'alice' and 'аlice' look alike; both accounts are kept, and "
        "`yupnope users list` marks 'аlice'",
        "Note: the user names 'inci' and 'İnci' look alike; both accounts are kept, and "
        "`yupnope users list` marks 'İnci'",
    ]
    listed = run_yupnope(tmp_path / "instance", "users", "list", settings=settings)
    assert listed.stderr == ""
    states = {
        line.split("  ")[0]: line.rsplit("  ", 1)[1] for line in listed.stdout.splitlines()[1:]
    }
    assert states["\u0430lice"] == states["İnci"] == "active, looks like another user"
    assert states["alice"] == states["inci"] == states["bob♥"] == "active"


# 0005: groups, with every user already there in none.


def test_the_groups_migration_keeps_every_user_in_no_group(
    old_database: Engine, tmp_path: Path
) -> None:
    migrate_to(old_database, "0004")
    assert migrations.upgrade(old_database) == []
    assert schema_is_current(old_database)
    assert _differences(old_database) == []
    now = datetime.now(UTC)
    with app_context_on(old_database, tmp_path):
        operator = wiring.operator()
        assert operator.groups() == []
        for name in OLD_USERS:
            assert operator.groups_of(operator.find(name)) == []
        logged_in = wiring.accounts().log_in("alice", GOOD_PASSWORD, Client(), now)
        operator.add_group("staff", now)
        operator.change_groups(operator.find("Straße"), ["staff"], [], now)
        found = wiring.sessions().find(logged_in.session.token, now)
        assert found is not None and found[1].groups == ()
        assert operator.groups() == [("staff", 1)]


# 0006: second factors, with every session there made with a password alone.


def test_the_second_factors_migration_keeps_sessions_out_of_sudo_mode(
    old_database: Engine, tmp_path: Path
) -> None:
    migrate_to(old_database, "0005")
    now = datetime.now(UTC)
    with app_context_on(old_database, tmp_path):
        # A session as 0005's code made it: no second factor, no proof time.
        sessions = table("sessions", *(column(name) for name in SESSION_COLUMNS))
        alice = wiring.store().users.by_key("alice")
        assert alice is not None
        wiring.store().tx.end_read()
    with old_database.begin() as connection:
        connection.execute(
            sessions.insert().values(
                token_digest=tokens.digest("an old session"),
                user_id=alice.id,
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(days=1),
                kind="browser",
            )
        )
    assert migrations.upgrade(old_database) == []
    assert schema_is_current(old_database)
    assert _differences(old_database) == []
    with app_context_on(old_database, tmp_path):
        found = wiring.sessions().find("an old session", now)
        assert found is not None
        assert (found[0].second_factor, found[0].authenticated_at) == (None, None)
        assert not Sudo.active(found[0], now)
        assert not wiring.authenticator_apps().enabled(found[1].id)
        logged_in = wiring.accounts().log_in("alice", GOOD_PASSWORD, Client(), now)
        assert isinstance(logged_in, LoginResult)
        assert logged_in.session.record.authenticated_at == now


#: The columns of a session at revision 0005.
SESSION_COLUMNS = ("token_digest", "user_id", "created_at", "last_seen_at", "expires_at", "kind")
