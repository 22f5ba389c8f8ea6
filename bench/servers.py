"""Start, check and stop the servers under test, each in its own process group; sign in to them.

Every server started here goes on the caller's list, which the caller stops on the way out
however the benchmark ends: finished, failed, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import http.client
import http.cookies
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from yupnope import config

BIN = Path(sys.executable).parent

#: Where Debian puts nginx, which a user's PATH may not reach.
SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")

#: How to get each program that is not a Python package of the bench extra.
INSTALL = {
    "wrk": "apt-get install wrk",
    "nginx": "apt-get install nginx (B9 puts it in front of a page; or leave B9 out with --only)",
}

#: Every throttle limit raised far past the attempts of any run, so each attempt is hashed.
UNTHROTTLED = {
    f"YUPNOPE_THROTTLE_{name}": str(10**9)
    for name in ("FREE_FAILURES", "ACCOUNT_LIMIT", "ADDRESS_LIMIT", "GLOBAL_LIMIT")
}

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}


def run(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a program of ours (absolute path, fixed arguments) and return what it printed."""
    return subprocess.run(argv, text=True, check=False, **kwargs)  # noqa: S603


def spawn(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start a program of ours (absolute path, fixed arguments) without waiting for it."""
    return subprocess.Popen(argv, **kwargs)  # noqa: S603


def program(name: str) -> str:
    """Return the path of ``name`` in the venv, on PATH or in sbin, or exit saying how to get it."""
    search = os.pathsep.join([str(BIN), os.environ.get("PATH", ""), *SBIN])
    found = shutil.which(name, path=search)
    if found is None:
        hint = INSTALL.get(name, "pip install -e '.[bench]'")
        sys.exit(f"bench: {name} is missing; install it with: {hint}")
    return found


@dataclass
class Server:
    """Hold one running server: its process group, port and log."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    #: Other processes whose CPU time is the server's: PostgreSQL's backends serving it.
    helpers: Callable[[], Sequence[int]] = tuple

    def url(self, path: str) -> str:
        """Return the URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def log_tail(self, lines: int = 20) -> str:
        """Return the last lines of the server's log, to say why it failed."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def interrupt(self) -> None:
        """Tell the server to stop: granian's main process stops its workers gracefully on INT.

        Only the main process, not the whole group: it signals its workers itself and waits for
        their requests in flight, so each worker is told once. What is still running when
        ``wait``'s deadline passes is killed there.
        """
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGINT)

    def wait(self, deadline: float) -> None:
        """Wait for the server to end until ``deadline`` (monotonic), then kill its group."""
        try:
            self.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def stop(started: Sequence[Server]) -> None:
    """Stop every server in ``started`` together: INT to each, then KILL what is left after 15 s."""
    for server in started:
        server.interrupt()
    deadline = time.monotonic() + 15
    for server in started:
        server.wait(deadline)


def free_port() -> int:
    """Return a TCP port on the loopback that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start(
    started: list[Server],
    name: str,
    argv: list[str],
    env: dict[str, str],
    folder: Path,
    helpers: Callable[[], Sequence[int]] = tuple,
    port: int | None = None,
) -> Server:
    """Start a server and add it to ``started``.

    ``{port}`` in ``argv`` becomes ``port``, or a free port; a server whose port is in a file
    of its own (nginx) is given it.
    """
    port = free_port() if port is None else port
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        # A session of its own: Ctrl-C reaches us, not it, and killpg ends its workers with it.
        process = spawn(
            [arg.replace("{port}", str(port)) for arg in argv],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(name, process, port, log, helpers)
    started.append(server)
    return server


def wait_ready(server: Server, path: str, timeout: float = 60) -> None:
    """Wait until ``path`` answers 200, or exit with the end of the server's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.process.poll() is None:
        with contextlib.suppress(OSError):
            if request(server.port, "GET", path)[0] == 200:
                return
        time.sleep(0.2)
    sys.exit(f"bench: {server.name} did not start:\n{server.log_tail()}")


def request(
    port: int, method: str, path: str, body: str = "", headers: dict[str, str] | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """Send one request (for setup and checks, never load); return status, headers and body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body or None, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def environment(instance: Path) -> dict[str, str]:
    """Return this environment without any YUPNOPE_ setting, plus a fresh unthrottled instance."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("YUPNOPE_")}
    env.update(UNTHROTTLED)
    env["YUPNOPE_INSTANCE_PATH"] = str(instance)
    return env


#: The access rules of B9's instance: every signed-in user may reach every app.
ACCESS = '[access]\ndefault_policy = "signed_in"\n'


def let_signed_in_users_in(instance: Path) -> None:
    """Write ACCESS into the instance's yupnope.toml, where the access rules live."""
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    (instance / "yupnope.toml").write_text(ACCESS)


def add_user(env: dict[str, str], name: str, password: str) -> None:
    """Create a user with ``yupnope users add``, as an operator would."""
    done = run(
        [program("yupnope"), "users", "add", name, "--password-stdin"],
        input=password + "\n",
        env=env,
        capture_output=True,
    )
    if done.returncode != 0:
        sys.exit(f"bench: could not add user {name}: {done.stderr.strip()}")


def login_form(username: str, password: str) -> str:
    """Return the login form's urlencoded body."""
    return urlencode({"username": username, "password": password})


def session_cookie(server: Server, username: str, password: str) -> str:
    """Log in once and return the new session's Cookie header, checked against /yup."""
    status, headers, _ = request(
        server.port, "POST", "/login", login_form(username, password), FORM
    )
    if status != 303 or headers.get("Location") != "/yup":
        sys.exit(f"bench: logging in answered {status} to {headers.get('Location')}, not /yup")
    jar: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
    for header in headers.get_all("Set-Cookie") or []:
        jar.load(header)
    morsel = jar.get(config.Settings.session_cookie_name)
    if morsel is None:
        sys.exit("bench: logging in set no session cookie")
    cookie = f"{morsel.key}={morsel.value}"
    _check_signed_in(server, "/yup", {"Cookie": cookie}, "the session cookie")
    return cookie


def api_token(server: Server, username: str, password: str) -> str:
    """Log in once through the API and return the session's bearer token, checked against /me."""
    credentials = json.dumps({"username": username, "password": password})
    status, _, body = request(server.port, "POST", "/api/v1/sessions", credentials, JSON)
    token = json.loads(body).get("token") if status == 201 else None
    if not isinstance(token, str):
        sys.exit(f"bench: POST /api/v1/sessions answered {status}, with no token: {body[:200]!r}")
    _check_signed_in(server, "/api/v1/me", {"Authorization": f"Bearer {token}"}, "the token")
    return token


def _check_signed_in(server: Server, path: str, headers: dict[str, str], what: str) -> None:
    """Exit unless ``path`` answers 200 to a request carrying ``headers``."""
    status, _, _ = request(server.port, "GET", path, headers=headers)
    if status != 200:
        sys.exit(f"bench: GET {path} with {what} answered {status}")
