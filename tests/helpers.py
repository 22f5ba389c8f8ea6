"""Plain helpers and constants the tests share: settings, users, logins, processes, services.

Fixtures live in conftest.py; everything here is an ordinary function or class to import.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from base64 import urlsafe_b64encode
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import parse_qs, urlsplit

import argon2
import pytest
import requests
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import Engine, func, select

from yupnope import migrations, wiring
from yupnope.cli import cli
from yupnope.models import Base, Session, ThrottleCounter, User
from yupnope.security import tokens

#: argon2 at its cheapest (argon2.profiles.CHEAPEST's costs) so unit tests stay fast.
CHEAP_ARGON2 = {"argon2_memory_kib": 8, "argon2_time_cost": 1, "argon2_parallelism": 1}


def environment(settings: dict[str, Any]) -> dict[str, str]:
    """Return settings named as fields as the environment variables that set them."""
    return {f"YUPNOPE_{name.upper()}": str(value) for name, value in settings.items()}


#: A password that passes the policy, for tests that are not about the policy.
GOOD_PASSWORD = "correct horse battery staple"

#: Another good password, for tests that change one.
NEW_PASSWORD = "a brand new pass phrase"

#: A password that is no user's, for failed logins.
WRONG = "not the password at all"

#: A fixed moment for tests that pass ``now`` to the rules.
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

#: What a browser sends with a form posted from a page of this same site.
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}

#: Name of the session cookie (config.Settings.session_cookie_name's default).
COOKIE = "yupnope_session"

#: Seconds a request to a live server may take: (connect, read). Real argon2 costs tens of ms.
TIMEOUT = (2, 15)


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


def assert_one_line_error(result: Any, *fragments: str) -> None:
    """Assert a refusal: exit status 1, one ``Error:`` line on stderr, nothing on stdout."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0]


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
        env.update(environment(CHEAP_ARGON2))
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
    """Create a user directly through the operator's actions."""
    with app.app_context():
        wiring.operator().add_user(username, password, datetime.now(UTC))


def device_cookie_from(app: Flask, username_key: str, days_ago: int) -> str:
    """Return a device value signed with the app's key ``days_ago`` days ago.

    itsdangerous dates a signature by its signer's clock, so a signer whose clock is behind
    makes exactly the value a browser (or an API client) would still hold from back then.
    """

    class SignedBefore(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - days_ago * 86400

    serializer = URLSafeTimedSerializer(
        wiring.get(app).settings.secret_key, salt="yupnope.device-cookie", signer=SignedBefore
    )
    return serializer.dumps([tokens.digest(username_key)[:32], "a-device-from-back-then"])


#: What an operator can do to an account that must end its credentials at once.
OPERATOR_CHANGES = ["set-password", "disable", "remove"]


def change_as_operator(username: str, change: str) -> None:
    """Set a new password on, disable or remove ``username``, in the current app context."""
    operator = wiring.operator()
    user = operator.find(username)
    now = datetime.now(UTC)
    if change == "set-password":
        operator.set_password(user, "an operator's new passphrase", now)
    elif change == "disable":
        operator.set_disabled(user, True, now)
    else:
        operator.remove_user(user, now)


def operator_acts_during_hash_check(
    monkeypatch: pytest.MonkeyPatch, app: Flask, username: str, change: str
) -> None:
    """Make the operator's ``change`` to ``username`` commit right after the next verify.

    That is the instant between a rule's check of a password and its write: the race an
    operator's remedy (a new password, disabling, removal) must win.
    """
    verify = argon2.PasswordHasher.verify
    done: list[bool] = []

    def verify_then_change(*args: Any, **kwargs: Any) -> Any:
        matches = verify(*args, **kwargs)
        if not done:
            done.append(True)
            with app.app_context():
                change_as_operator(username, change)
        return matches

    monkeypatch.setattr(argon2.PasswordHasher, "verify", verify_then_change)


def login(client: FlaskClient, username: str, password: str = GOOD_PASSWORD) -> Any:
    """Post the login form like a same-site browser would."""
    return client.post(
        "/login",
        data={"username": username, "password": password},
        headers=SAME_ORIGIN,
    )


def headers_alike(response: Any) -> list[tuple[str, str]]:
    """Return an answer's headers but its X-Request-Id, which is each request's own."""
    return [(name, value) for name, value in response.headers if name != "X-Request-Id"]


#: Seconds a test may hold a hashing slot from another thread, at the most.
HOLD_SECONDS = 10


@contextmanager
def slot_held_elsewhere(app: Flask) -> Iterator[None]:
    """Hold the app's only hashing slot from another thread for the block."""
    gate = wiring.get(app).hasher.gate
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with gate.slot():
            held.set()
            done.wait(HOLD_SECONDS)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert held.wait(HOLD_SECONDS)
    try:
        yield
    finally:
        done.set()
        thread.join(HOLD_SECONDS)


#: Where the portal of the forward-auth tests is: its hosts are under example.com.
PORTAL_URL = "https://login.example.com"


class PortalBrowser(FlaskClient):
    """Ask for https://login.example.com, as a browser on the portal does."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("base_url", PORTAL_URL)
        return super().open(*args, **kwargs)


def browser_of(app: Flask) -> FlaskClient:
    """Return a test client of ``app`` on the portal's host."""
    app.test_client_class = PortalBrowser
    return app.test_client()


# Live servers: real `yupnope serve` processes.


def path_of(response: requests.Response) -> str:
    """Return the path a redirect points to, whether the Location is absolute or not."""
    assert response.is_redirect, (response.status_code, response.text[:300])
    return urlsplit(response.headers["Location"]).path


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

    @classmethod
    def started_in(
        cls,
        folder: Path,
        settings: dict[str, Any],
        workers: int = 2,
        port: int = 0,
        extra_env: dict[str, str] | None = None,
    ) -> LiveServer:
        """Start a server on a new instance in ``folder`` with ``settings`` and nothing else.

        The test run's own ``YUPNOPE_*`` variables are left out, so only ``settings`` count;
        ``extra_env`` adds others (``SSL_CERT_FILE``). ``port``: a free port chosen before,
        for settings that name the server's own address.
        """
        instance = folder / "instance"
        instance.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("YUPNOPE_")}
        env["YUPNOPE_INSTANCE_PATH"] = str(instance)
        env.update(environment(settings))
        env.update(extra_env or {})
        return cls(instance=instance, env=env, workers=workers, port=port).start()

    def start(self) -> LiveServer:
        """Start the server on its port (a new free one if none) and wait until /healthz answers."""
        self.port = self.port or free_port()
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
        """Stop the server gracefully, unless it has stopped already."""
        if self.process is not None and self.process.poll() is not None:
            self.process = None
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


def end(process: subprocess.Popen[bytes]) -> None:
    """Stop ``process`` (SIGTERM), and kill it if it has not ended within 10 seconds."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def send_raw(
    server: LiveServer, data: bytes, cut_short: bool = False
) -> tuple[http.client.HTTPResponse, bytes]:
    """Send ``data`` as it is on a connection of its own; return the answer and its body.

    For what no HTTP client sends: a chunked body, a forged Host. ``cut_short`` closes the
    sending half of the connection after ``data``, as a client that stops half-way does.
    """
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        sock.sendall(data)
        if cut_short:
            sock.shutdown(socket.SHUT_WR)
        with http.client.HTTPResponse(sock) as response:
            response.begin()
            return response, response.read()


# Outside services: PostgreSQL and Redis.

POSTGRES_URL = os.environ.get(
    "YUPNOPE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


# Debian's Chromium, which Playwright drives (it cannot download a browser of its own here).

CHROMIUM = Path("/usr/bin/chromium")
#: Headless in a container: no sandbox (CI runs as root), no GPU, no calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
]


#: How the switches that turn a skip into a failure begin (.ci/run sets them all):
#: YUPNOPE_REQUIRE_SERVICES, _BROWSER, _NGINX, _SYSTEMD and _PROXIES.
REQUIRE_PREFIX = "YUPNOPE_REQUIRE_"


def skip_unless_required(message: str, switch: str) -> NoReturn:
    """Skip the test saying ``message``, or fail it when the variable ``switch`` is 1."""
    if os.environ.get(switch) == "1":
        pytest.fail(f"{message} ({switch}=1)")
    pytest.skip(message)


def require_service(name: str, reachable: bool, reason: str) -> None:
    """Skip when a service is missing, or fail when YUPNOPE_REQUIRE_SERVICES=1."""
    if not reachable:
        skip_unless_required(f"{name} is not reachable: {reason}", "YUPNOPE_REQUIRE_SERVICES")


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
        return {"redis_url": self.url, "redis_key_prefix": self.prefix}

    def counts(self) -> dict[tuple[str, str], int]:
        """Return every counter under the prefix: (scope, key) to its count."""
        found = {}
        for name in self.client.scan_iter(match=f"{self.prefix}:*"):
            scope, _, key = name.decode().removeprefix(self.prefix + ":").partition(":")
            found[(scope, key)] = int(self.client.hget(name, "count") or 0)
        return found


# Rows the tests look at that the server itself never needs to read.


def count_rows(app: Flask, model: type[Base], **where: object) -> int:
    """Return how many rows of ``model`` match ``where`` (column equal to value)."""
    with app.app_context():
        query = select(func.count()).select_from(model)
        for column, value in where.items():
            query = query.where(getattr(model, column) == value)
        return wiring.orm_session().scalar(query) or 0


def count_users(app: Flask) -> int:
    """Return how many users exist."""
    return count_rows(app, User)


def count_sessions_of(app: Flask, user_id: int) -> int:
    """Return how many sessions a user has."""
    return count_rows(app, Session, user_id=user_id)


def counter_row(scope: str, key: str) -> ThrottleCounter | None:
    """Return a throttle counter's row, in the current app context."""
    return wiring.orm_session().get(ThrottleCounter, (scope, key))


def user_by_id(user_id: int) -> User | None:
    """Return the user with this id, in the current app context."""
    return wiring.orm_session().get(User, user_id)


def alembic_config(engine: Engine | None = None) -> Config:
    """Return an Alembic configuration of the project's migrations, on ``engine`` if given."""
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def migrate_to(engine: Engine, revision: str) -> None:
    """Bring the database to an older revision, to fill it as that version of yupnope would."""
    command.upgrade(alembic_config(engine), revision)


def schema_is_current(engine: Engine) -> bool:
    """Return whether the database is at the newest migration."""
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    with engine.connect() as connection:
        applied = set(MigrationContext.configure(connection).get_current_heads())
    return applied == heads


#: The redirect URI of the apps tests register.
APP_CALLBACK = "https://app.example/callback"


def pkce() -> tuple[str, str]:
    """Return a new PKCE verifier and its S256 challenge (RFC 7636 4.1, 4.2)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_in_to_app(app: Flask, browser: FlaskClient, name: str = "Notes") -> str:
    """Sign ``browser``'s user in to a new app ``name`` (no consent page); return the grant.

    The whole code flow with PKCE, as an app runs it: the authorization request in the
    browser, the code redeemed at the token endpoint with the client's secret.
    """
    with app.app_context():
        client = wiring.oidc_clients().add(name, [APP_CALLBACK], datetime.now(UTC), consent=False)
    verifier, challenge = pkce()
    asked = browser.get(
        "/oidc/authorize",
        query_string={
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": APP_CALLBACK,
            "scope": "openid profile",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert asked.status_code == 302, asked.data
    (code,) = parse_qs(urlsplit(asked.headers["Location"]).query)["code"]
    assert client.client_secret is not None
    redeemed = app.test_client().post(
        "/oidc/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": APP_CALLBACK,
            "code_verifier": verifier,
        },
        auth=(client.client_id, client.client_secret),
    )
    assert redeemed.status_code == 200, redeemed.json
    with app.app_context():
        (grant,) = [
            c.grant for c in wiring.connections().alive() if c.client_id == client.client_id
        ]
    return grant
