"""Share fixtures: an app on its own SQLite file, its client and CLI runner, and live servers."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from helpers import (
    CHEAP_ARGON2,
    REDIS_URL,
    REQUIRE_PREFIX,
    LiveServer,
    RedisSpace,
    environment,
    postgres_schema,
    require_service,
)
from yupnope import create_app, db, migrations, wiring
from yupnope.models import Base


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own YUPNOPE_* settings out of every test.

    The YUPNOPE_REQUIRE_* switches stay: they are no setting of the app, and a test reads its
    switch only when it finds something missing, long after this ran.
    """
    for name in list(os.environ):
        if name.startswith("YUPNOPE_") and not name.startswith(REQUIRE_PREFIX):
            monkeypatch.delenv(name)


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    """Return a fresh instance folder, private as yupnope makes one."""
    path = tmp_path / "instance"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def app_factory(instance: Path, database_url: str) -> Iterator[Callable[..., Flask]]:
    """Return a function that builds a migrated app on the test's instance with extra settings.

    Every engine the apps opened is closed at the end, so no connection outlives its test.
    """
    apps: list[Flask] = []

    def build(**settings: Any) -> Flask:
        chosen = {"database_url": database_url} if database_url else {}
        app = create_app({"instance_path": str(instance), **CHEAP_ARGON2, **chosen, **settings})
        app.testing = True
        migrations.upgrade(wiring.get(app).engine)
        apps.append(app)
        return app

    yield build
    for app in apps:
        postman = wiring.get(app).postman
        if postman is not None:
            postman.stop()
        wiring.get(app).engine.dispose()


@pytest.fixture
def app(app_factory: Callable[..., Flask]) -> Flask:
    """Return an app on its own SQLite file with cheap argon2."""
    return app_factory()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Return a test client of ``app``."""
    return app.test_client()


@pytest.fixture
def runner(instance: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """Return a CLI runner whose commands use the test's instance, database and cheap argon2."""
    monkeypatch.setenv("YUPNOPE_INSTANCE_PATH", str(instance))
    if database_url:
        monkeypatch.setenv("YUPNOPE_DATABASE_URL", database_url)
    for name, value in environment(CHEAP_ARGON2).items():
        monkeypatch.setenv(name, value)
    return CliRunner()


@pytest.fixture
def live_server_factory(instance: Path) -> Iterator[Callable[..., LiveServer]]:
    """Return a function that starts live servers on the test's instance; all stop at the end.

    The servers use the real argon2 parameters unless the caller passes cheaper ones.
    """
    servers: list[LiveServer] = []

    def start(workers: int = 2, **settings: Any) -> LiveServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith("YUPNOPE_")}
        env["YUPNOPE_INSTANCE_PATH"] = str(instance)
        env.update(environment(settings))
        server = LiveServer(instance=instance, env=env, workers=workers)
        # Listed before it starts, so a start that fails half-way is still stopped at the end.
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def live_server(live_server_factory: Callable[..., LiveServer]) -> LiveServer:
    """Return one live server with two workers and real argon2 parameters."""
    return live_server_factory()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """Return the URL of an empty PostgreSQL schema of this test's own."""
    with postgres_schema() as url:
        yield url


@pytest.fixture(scope="session")
def _migrated_postgres() -> Iterator[str]:
    """Return the URL of one migrated PostgreSQL schema for the whole run."""
    with postgres_schema() as url:
        engine = db.make_engine(url)
        try:
            migrations.upgrade(engine)
        finally:
            engine.dispose()
        yield url


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> str:
    """Return the database a test's app uses: SQLite by default, PostgreSQL where asked.

    A module that sets ``BOTH_DATABASES = True`` runs each of its app tests on both. On
    PostgreSQL the run's migrated schema is emptied before each test, far faster than migrating.
    """
    if getattr(request, "param", "sqlite") == "sqlite":
        return ""
    url: str = request.getfixturevalue("_migrated_postgres")
    engine = db.make_engine(url)
    try:
        with engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())
    finally:
        engine.dispose()
    return url


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the container test's slowest step, making its base, as the run starts."""
    for item in session.items:
        module = getattr(item, "module", None)
        if module is not None and module.__name__ == "test_container":
            module.start_base_early()
            return


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the app tests of modules that ask for it on SQLite and on PostgreSQL."""
    if "database_url" in metafunc.fixturenames and getattr(
        metafunc.module, "BOTH_DATABASES", False
    ):
        metafunc.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def redis_url() -> Iterator[RedisSpace]:
    """Return the test Redis's URL with a key prefix of this test's own; its keys go after."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        require_service("Redis", False, f"{REDIS_URL}: {exc}")
    # A prefix per test keeps concurrent runs on one machine out of each other's keys.
    space = RedisSpace(REDIS_URL, f"yupnope-test-{os.getpid()}-{secrets.token_hex(4)}", client)
    try:
        yield space
    finally:
        for name in client.scan_iter(match=f"{space.prefix}:*"):
            client.delete(name)
        client.close()
