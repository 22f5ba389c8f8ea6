"""Test that the migrations build exactly the models' schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from yupnope import create_app, db, schema, services
from yupnope.client import Client
from yupnope.models import Base


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def test_migrations_match_the_models_on_sqlite(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path}/x.db")
    assert not schema.is_current(engine)
    schema.upgrade(engine)
    schema.upgrade(engine)  # a second run has nothing to do
    assert schema.is_current(engine)
    assert _differences(engine) == []
    assert {"users", "sessions", "login_events"} <= set(inspect(engine).get_table_names())


def test_migrations_and_the_account_rules_work_on_postgresql(
    postgres_url: str, tmp_path: Path
) -> None:
    engine = db.make_engine(postgres_url)
    try:
        schema.upgrade(engine)
        assert schema.is_current(engine)
        assert _differences(engine) == []
    finally:
        engine.dispose()
    app = create_app(
        {"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": postgres_url, "ARGON2_MEMORY_KIB": 8}
    )
    now = datetime.now(UTC)
    with app.app_context():
        accounts = services.accounts()
        accounts.sign_up("Alice", "correct horse battery", Client(), now)
        user = accounts.authenticate("ALICE", "correct horse battery", Client(), now)
        started = services.sessions().start(user, Client(), now)
        found = services.sessions().find(started.token, now)
        assert found is not None and found[1].username == "Alice"
        assert found[0].created_at == now
    app.extensions["yupnope.engine"].dispose()
