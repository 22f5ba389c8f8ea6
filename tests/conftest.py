"""Share fixtures: an app on its own SQLite file, its client and CLI runner, and live servers."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import argon2
import pytest
import requests
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from yupnope import create_app, db, schema
from yupnope.cli import cli
from yupnope.models import Base

#: argon2 at its cheapest (argon2.profiles.CHEAPEST's costs) so unit tests stay fast.
CHEAP_ARGON2 = {"ARGON2_MEMORY_KIB": 8, "ARGON2_TIME_COST": 1, "ARGON2_PARALLELISM": 1}

#: A password that passes the policy, for tests that are not about the policy.
GOOD_PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own YUPNOPE_* settings out of every test."""
    for name in list(os.environ):
        if name.startswith("YUPNOPE_") and name not in ("YUPNOPE_REQUIRE_SERVICES",):
            monkeypatch.delenv(name)


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    """Return a fresh instance folder."""
    path = tmp_path / "instance"
    path.mkdir()
    return path


@pytest.fixture
def app_factory(instance: Path, database_url: str) -> Iterator[Callable[..., Flask]]:
    """Return a function that builds a migrated app on the test's instance with extra settings.

    Every engine the apps opened is closed at the end, so no connection outlives its test.
    """
    apps: list[Flask] = []

    def build(**settings: Any) -> Flask:
        chosen = {"DATABASE_URL": database_url} if database_url else {}
        app = create_app(
            {"INSTANCE_PATH": str(instance), "TESTING": True, **CHEAP_ARGON2, **chosen, **settings}
        )
        schema.upgrade(app.extensions["yupnope.engine"])
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["yupnope.engine"].dispose()


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
    for name, value in CHEAP_ARGON2.items():
        monkeypatch.setenv(f"YUPNOPE_{name}", str(value))
    return CliRunner()


class HashCounter:
    """Count argon2 computations by wrapping the library's own methods (the work still runs)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        for name in ("hash", "verify"):
            original = getattr(argon2.PasswordHasher, name)
            monkeypatch.setattr(argon2.PasswordHasher, name, self._counting(original))

    def _counting(self, original: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return original(*args, **kwargs)

        return wrapper


def run_cli(runner: CliRunner, *args: str, input: str | None = None) -> Any:
    """Invoke ``yupnope ARGS`` in-process and return click's result."""
    return runner.invoke(cli, list(args), input=input, catch_exceptions=False)


def run_yupnope(
    instance: Path,
    *args: str,
    input: str | bytes | None = None,
    cheap: bool = True,
    settings: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m yupnope ARGS`` as a real process on ``instance``.

    ``input`` may be bytes, to send what is not UTF-8. ``cheap`` gives it the unit tests' argon2
    costs; without it, the real ones a live server has. ``settings`` adds environment variables.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUPNOPE_")}
    env["YUPNOPE_INSTANCE_PATH"] = str(instance)
    if cheap:
        env.update({f"YUPNOPE_{k}": str(v) for k, v in CHEAP_ARGON2.items()})
    env.update(settings or {})
    done = subprocess.run(
        [sys.executable, "-m", "yupnope", *args],
        env=env,
        input=input.encode() if isinstance(input, str) else input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def add_user(app: Flask, username: str, password: str = GOOD_PASSWORD) -> None:
    """Create a user directly through the account rules."""
    from datetime import UTC, datetime

    from yupnope import services

    with app.app_context():
        services.accounts().add_user(username, password, datetime.now(UTC))


#: What an operator can do to an account that must end its credentials at once.
OPERATOR_CHANGES = ["set-password", "disable", "remove"]


def change_as_operator(username: str, change: str) -> None:
    """Set a new password on, disable or remove ``username``, in the current app context."""
    from datetime import UTC, datetime

    from yupnope import services

    accounts = services.accounts()
    user = accounts.find(username)
    now = datetime.now(UTC)
    if change == "set-password":
        accounts.set_password(user, "an operator's new passphrase", now)
    elif change == "disable":
        accounts.set_disabled(user, True, now)
    else:
        accounts.remove_user(user, now)


def login(client: FlaskClient, username: str, password: str = GOOD_PASSWORD) -> Any:
    """Post the login form like a same-site browser would."""
    return client.post(
        "/login",
        data={"username": username, "password": password},
        headers={"Sec-Fetch-Site": "same-origin"},
    )


# Live servers: real `yupnope serve` processes.


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    """A running `yupnope serve` process, its address and its instance folder."""

    instance: Path
    env: dict[str, str]
    workers: int
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        """Start the server on a new free port and wait until /healthz answers."""
        self.port = free_port()
        self.log = self.instance.parent / f"serve-{self.port}.log"
        command = [sys.executable, "-m", "yupnope", "serve", "--port", str(self.port)]
        command += ["--workers", str(self.workers)]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                # Not listening yet, or too busy to answer within the second: ask again.
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not come up: {self.log.read_text()}")

    def kill(self) -> None:
        """Kill the server and its workers at once (SIGKILL), as a crash would."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        """Stop the server gracefully."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process = None

    def session(self) -> requests.Session:
        """Return an HTTP session that behaves like a same-site browser form."""
        http = requests.Session()
        http.headers["Origin"] = self.url
        return http


@pytest.fixture
def live_server_factory(instance: Path) -> Iterator[Callable[..., LiveServer]]:
    """Return a function that starts live servers on the test's instance; all stop at the end.

    The servers use the real argon2 parameters unless the caller passes cheaper ones.
    """
    servers: list[LiveServer] = []

    def start(workers: int = 2, **settings: Any) -> LiveServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith("YUPNOPE_")}
        env["YUPNOPE_INSTANCE_PATH"] = str(instance)
        env.update({f"YUPNOPE_{k}": str(v) for k, v in settings.items()})
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


# Outside services: PostgreSQL and Redis.

POSTGRES_URL = os.environ.get(
    "YUPNOPE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def require_service(name: str, reachable: bool, reason: str) -> None:
    """Skip when a service is missing, or fail when YUPNOPE_REQUIRE_SERVICES=1."""
    if reachable:
        return
    message = f"{name} is not reachable: {reason}"
    if os.environ.get("YUPNOPE_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (YUPNOPE_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@contextmanager
def postgres_schema() -> Iterator[str]:
    """Create an empty schema of its own in the test database; yield a URL that uses only it.

    A schema per use keeps concurrent test runs (two developers, or a developer and CI on one
    machine) out of each other's tables.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.schema import CreateSchema, DropSchema

    name = f"yupnope_test_{os.getpid()}_{secrets.token_hex(4)}"
    # pre-ping: a test that restarts PostgreSQL kills the pooled connection the drop needs.
    admin = create_engine(POSTGRES_URL, pool_pre_ping=True)
    try:
        with admin.begin() as connection:
            connection.execute(CreateSchema(name))
    except OperationalError as exc:
        admin.dispose()
        require_service("PostgreSQL", False, str(exc.orig).splitlines()[0])
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{name}"
    finally:
        with admin.begin() as connection:
            connection.execute(DropSchema(name, cascade=True))
        admin.dispose()


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
            schema.upgrade(engine)
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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the app tests of modules that ask for it on SQLite and on PostgreSQL."""
    if "database_url" in metafunc.fixturenames and getattr(
        metafunc.module, "BOTH_DATABASES", False
    ):
        metafunc.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


# Redis: a key prefix of each test's own on the test server.

REDIS_URL = os.environ.get("YUPNOPE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@dataclass
class RedisSpace:
    """A URL of the test Redis and a key prefix no other test uses, with a client to look."""

    url: str
    prefix: str
    client: Any

    def settings(self) -> dict[str, str]:
        """Return the app settings that keep an app's throttle counters here."""
        return {"REDIS_URL": self.url, "REDIS_KEY_PREFIX": self.prefix}

    def counts(self) -> dict[tuple[str, str], int]:
        """Return every counter under the prefix: (scope, key) to its count."""
        found = {}
        for name in self.client.scan_iter(match=f"{self.prefix}:*"):
            scope, _, key = name.decode().removeprefix(self.prefix + ":").partition(":")
            found[(scope, key)] = int(self.client.hget(name, "count") or 0)
        return found


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
