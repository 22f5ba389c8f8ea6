"""Test end to end against real `yupnope serve` processes with the real argon2 parameters."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest
import requests

from helpers import GOOD_PASSWORD, TIMEOUT, LiveServer, path_of, run_yupnope

pytestmark = pytest.mark.live


#: The tutorial's login.html: a bare form, no hidden fields, no template syntax.
TUTORIAL_LOGIN_HTML = """<!DOCTYPE html>
<html>
<head>
  <title>Login</title>
</head>
<body>
  <h1>Login</h1>
  <form action="/login" method="post">
    <input type="text" name="username" placeholder="Username">
    <input type="password" name="password" placeholder="Password">
    <input type="submit" value="Login">
  </form>
</body>
</html>
"""


def add_user(instance: Path, name: str, password: str = GOOD_PASSWORD) -> None:
    """Create a user with the operator's command."""
    result = run_yupnope(
        instance, "users", "add", name, "--password-stdin", input=password + "\n", cheap=False
    )
    assert result.returncode == 0, result.stderr


def user_names(instance: Path) -> list[str]:
    """Return the names ``users list`` shows."""
    result = run_yupnope(instance, "users", "list", cheap=False)
    assert result.returncode == 0, result.stderr
    return [re.split(r" {2,}", line)[0] for line in result.stdout.splitlines()[1:]]


def post_login(
    http: requests.Session, server: LiveServer, username: str, password: str
) -> requests.Response:
    """Post the login form and return the response without following it."""
    return http.post(
        server.url + "/login",
        data={"username": username, "password": password},
        allow_redirects=False,
        timeout=TIMEOUT,
    )


def test_the_tutorial_flow(live_server: LiveServer) -> None:
    add_user(live_server.instance, "alice")
    http = live_server.session()

    form = http.get(live_server.url + "/", timeout=TIMEOUT)
    assert form.status_code == 200
    assert re.search(r'<form method="post" action="/login">', form.text)
    assert re.search(r'<input[^>]*name="username"', form.text)
    assert re.search(r'<input[^>]*name="password"[^>]*type="password"', form.text)

    wrong = post_login(http, live_server, "alice", "not the password at all")
    unknown = post_login(http, live_server, "nobody", "not the password at all")
    assert wrong.status_code == 303
    assert path_of(wrong) == "/nope"
    # Unknown name and wrong password are the same answer, byte for byte.
    assert (unknown.status_code, unknown.content) == (wrong.status_code, wrong.content)
    assert unknown.headers["Location"] == wrong.headers["Location"]
    assert "Set-Cookie" not in wrong.headers
    nope = http.get(live_server.url + "/nope", timeout=TIMEOUT)
    assert nope.status_code == 200
    assert "nope.svg" in nope.text
    assert re.search(r'<a href="/(login)?">', nope.text)

    good = post_login(http, live_server, "alice", GOOD_PASSWORD)
    assert good.status_code == 303
    assert path_of(good) == "/yup"
    cookie = good.cookies["yupnope_session"]
    set_cookie = good.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie
    assert "SameSite=Lax" in set_cookie
    yup = http.get(live_server.url + "/yup", allow_redirects=False, timeout=TIMEOUT)
    assert yup.status_code == 200
    assert "alice" in yup.text
    assert "yup.svg" in yup.text

    out = http.post(live_server.url + "/logout", allow_redirects=False, timeout=TIMEOUT)
    assert out.status_code in (302, 303)
    assert path_of(out) == "/"

    # The old cookie, sent again by someone who kept it, is worthless on the server.
    replay = requests.Session()
    replay.cookies.set("yupnope_session", cookie)
    after = replay.get(live_server.url + "/yup", allow_redirects=False, timeout=TIMEOUT)
    assert after.status_code in (302, 303)
    assert path_of(after) == "/"


def test_concurrent_signups_of_one_name_make_one_account(live_server: LiveServer) -> None:
    # Eight spellings of one name: the key they share is what must be unique.
    spellings = ["racer", "Racer", "RACER", "rAcer", "raCer", "racEr", "raceR", "RaCeR"]
    start = threading.Barrier(len(spellings), timeout=10)

    def sign_up(name: str) -> tuple[str, int, requests.Session]:
        http = live_server.session()
        start.wait()
        response = http.post(
            live_server.url + "/signup",
            data={"username": name, "password": GOOD_PASSWORD},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        return name, response.status_code, http

    with ThreadPoolExecutor(len(spellings)) as pool:
        results = list(pool.map(sign_up, spellings))

    statuses = sorted(status for _, status, _ in results)
    assert statuses == [303] + [409] * (len(spellings) - 1)
    winner, _, http = next(result for result in results if result[1] == 303)
    assert user_names(live_server.instance) == [winner]
    page = http.get(live_server.url + "/yup", allow_redirects=False, timeout=TIMEOUT)
    assert page.status_code == 200
    assert winner in page.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ],
    ids=["fetch-cross-site", "fetch-same-site", "foreign-origin", "null-origin"],
)
def test_cross_site_posts_are_refused(live_server: LiveServer, headers: dict[str, str]) -> None:
    add_user(live_server.instance, "alice")
    url = live_server.url

    login = requests.post(
        url + "/login",
        data={"username": "alice", "password": GOOD_PASSWORD},
        headers=headers,
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert login.status_code == 403
    assert "yupnope_session" not in login.cookies

    signup = requests.post(
        url + "/signup",
        data={"username": "mallory", "password": GOOD_PASSWORD},
        headers=headers,
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert signup.status_code == 403
    assert user_names(live_server.instance) == ["alice"]

    # The same form from the site itself goes through.
    same = requests.post(
        url + "/login",
        data={"username": "alice", "password": GOOD_PASSWORD},
        headers={"Sec-Fetch-Site": "same-origin", "Origin": url},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert same.status_code == 303
    assert path_of(same) == "/yup"


def test_kill_9_during_signups_loses_no_acknowledged_account(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    started = time.monotonic()
    # Forty sign-ups from one address would meet the per-address sign-up limit (20): this test
    # is about crash safety, not throttling.
    server = live_server_factory(workers=2, throttle_signup_limit=1000)
    url = server.url
    names = [f"burst{i:02}" for i in range(40)]
    lock = threading.Lock()
    answered: dict[str, int] = {}
    acknowledged: dict[str, requests.Session] = {}
    enough = threading.Event()

    def sign_up(name: str) -> None:
        http = requests.Session()
        http.headers["Origin"] = url
        try:
            response = http.post(
                url + "/signup",
                data={"username": name, "password": GOOD_PASSWORD},
                allow_redirects=False,
                timeout=(2, 10),
            )
        except requests.RequestException:
            return
        with lock:
            answered[name] = response.status_code
            if response.status_code == 303:
                acknowledged[name] = http
            if len(answered) >= 15:
                enough.set()

    with ThreadPoolExecutor(6) as pool:
        for name in names:
            pool.submit(sign_up, name)
        reached = enough.wait(timeout=30)
        # Kill before any assertion, so a failure does not leave the pool waiting on a live server.
        server.kill()
    assert reached, f"only {len(answered)} answers before the kill"

    assert set(answered.values()) == {303}, answered
    assert 15 <= len(acknowledged) < len(names), "the kill did not land inside the burst"

    database = server.instance / "yupnope.db"
    with closing(sqlite3.connect(database)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []

    again = live_server_factory(workers=2, throttle_signup_limit=1000)
    listed = set(user_names(server.instance))
    assert set(acknowledged) <= listed
    assert listed <= set(names)
    for name, http in acknowledged.items():
        # Their account survived, and so did the session their sign-up started.
        page = http.get(again.url + "/yup", allow_redirects=False, timeout=TIMEOUT)
        assert page.status_code == 200, name
        assert name in page.text
        login = post_login(again.session(), again, name, GOOD_PASSWORD)
        assert path_of(login) == "/yup", name
    assert time.monotonic() - started < 60


def test_instance_template_overrides_the_login_form(
    live_server_factory: Callable[..., LiveServer], instance: Path
) -> None:
    (instance / "templates").mkdir()
    (instance / "templates" / "login.html").write_text(TUTORIAL_LOGIN_HTML, encoding="utf-8")
    add_user(instance, "alice")
    server = live_server_factory()

    for path in ("/", "/login"):
        page = requests.get(server.url + path, timeout=TIMEOUT)
        assert page.status_code == 200
        # Jinja drops one trailing newline of a template file, as it does for the built-in ones.
        assert page.text == TUTORIAL_LOGIN_HTML.removesuffix("\n")

    # The bare form, with no hidden field, logs in as a same-site browser would send it.
    http = server.session()
    good = post_login(http, server, "alice", GOOD_PASSWORD)
    assert path_of(good) == "/yup"
    assert "alice" in http.get(server.url + "/yup", timeout=TIMEOUT).text
    # Templates not overridden are still the built-in ones.
    assert "nope.svg" in requests.get(server.url + "/nope", timeout=TIMEOUT).text


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc")
def test_no_database_connection_crosses_the_fork(live_server: LiveServer) -> None:
    # The master migrates, then forks every worker (and every replacement of a dead one): a
    # SQLite connection it kept open would be inherited by all of them.
    assert live_server.process is not None
    fds = Path(f"/proc/{live_server.process.pid}/fd")
    held = [os.readlink(fd) for fd in fds.iterdir() if fd.is_symlink()]
    assert not [target for target in held if "yupnope.db" in target], held


def test_serve_opens_no_shared_control_socket(
    live_server_factory: Callable[..., LiveServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Nothing may live at a path per OS user (gunicorn 25's control socket did): two servers
    # would share it.
    runtime = tmp_path / "run"
    runtime.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    first = live_server_factory()
    second = live_server_factory()
    assert requests.get(first.url + "/healthz", timeout=TIMEOUT).status_code == 200
    assert requests.get(second.url + "/healthz", timeout=TIMEOUT).status_code == 200
    assert list(runtime.iterdir()) == []
    assert not (tmp_path / "home").exists()
