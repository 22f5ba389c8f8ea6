"""Test that the migrations build exactly the models' schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.exc import OperationalError

from helpers import CHEAP_ARGON2, schema_is_current
from yupnope import create_app, db, migrations, wiring
from yupnope.client import Client
from yupnope.models import Base


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
