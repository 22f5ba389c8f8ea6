"""Test the SQLite set-up and that concurrent writers from many processes all succeed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import delete, text

from helpers import count_sessions_of, count_users, run_yupnope
from yupnope import db, wiring
from yupnope.errors import ConfigError
from yupnope.models import User


def test_sqlite_runs_in_wal_with_foreign_keys_and_a_busy_timeout(app: Flask) -> None:
    with app.app_context():
        session = wiring.orm_session()
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert session.execute(text("PRAGMA busy_timeout")).scalar() == db.SQLITE_BUSY_TIMEOUT_MS


def test_foreign_keys_cascade_sessions_with_their_user(app: Flask) -> None:
    from datetime import UTC, datetime

    from yupnope.client import Client

    now = datetime.now(UTC)
    with app.app_context():
        user = wiring.operator().add_user("alice", "correct horse battery", now)
        wiring.sessions().start(user, Client(), now)
        store = wiring.store()
        with store.tx.write():
            # Delete the user row alone: the database itself must remove the session.
            store.session.execute(delete(User).where(User.id == user.id))
    assert count_sessions_of(app, user.id) == 0


def test_ping_reports_an_unreachable_database() -> None:
    engine = db.make_engine("postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2")
    assert not db.ping(db.make_sessionmaker(engine)())


def test_concurrent_processes_that_read_then_write_never_fail(app: Flask, instance: Path) -> None:
    """Each sign-up reads (is the name free?) then writes; deferred transactions would fail."""
    script = textwrap.dedent(
        """
        import sys
        from datetime import UTC, datetime
        from yupnope import create_app, wiring
        app = create_app({"instance_path": sys.argv[1], "argon2_memory_kib": 8,
                          "argon2_time_cost": 1})
        with app.app_context():
            for n in range(25):
                wiring.operator().add_user(f"{sys.argv[2]}-{n}", "correct horse battery",
                                           datetime.now(UTC))
        """
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(instance), f"w{i}"], stderr=subprocess.PIPE
        )
        for i in range(4)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err.decode()
    assert count_users(app) == 100


def test_a_database_url_yupnope_cannot_use_is_one_line_naming_the_setting(
    tmp_path: Path,
) -> None:
    for url, says in [
        ("mysql://user@localhost/yupnope", "mysql is not supported; use sqlite:///PATH or"),
        ("not a url", "is not a database URL: use sqlite:///PATH or postgresql://"),
        ("postgresql+psycopg2://user@localhost/db", "use postgresql:// (psycopg 3)"),
        ("sqlite+pysqlcipher:///x.db", "sqlite+pysqlcipher is not supported"),
    ]:
        with pytest.raises(ConfigError, match=r"^YUPNOPE_DATABASE_URL"):
            db.make_engine(url)
        done = run_yupnope(tmp_path, "users", "list", settings={"YUPNOPE_DATABASE_URL": url})
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1, done.stderr
        assert lines[0].startswith("Error: YUPNOPE_DATABASE_URL") and says in lines[0]


def test_postgres_and_postgresql_urls_mean_psycopg(postgres_url: str) -> None:
    for scheme in ("postgres://", "postgresql://"):
        url = postgres_url.replace("postgresql+psycopg://", scheme)
        assert db.supported_url(url).drivername == "postgresql+psycopg"
    engine = db.make_engine(postgres_url.replace("postgresql+psycopg://", "postgres://"))
    try:
        with engine.connect() as connection:
            assert connection.execute(text("select 1")).scalar() == 1
    finally:
        engine.dispose()
