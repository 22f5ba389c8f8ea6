"""Test the log's lines, text and JSON, each request's id, and that no secret reaches the log."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask

from helpers import CHEAP_ARGON2, COOKIE, GOOD_PASSWORD, TIMEOUT, LiveServer, run_yupnope
from yupnope import config, logs

#: A line of the text form: time, level, logger, the request's id if any, message.
TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 (?P<level>[A-Z]+) (?P<logger>\S+)"
    r"(?: \[(?P<request>[^\]]+)\])? (?P<message>.*)$"
)

#: A request id yupnope makes: 64 random bits in hex.
MADE_ID = re.compile(r"^[0-9a-f]{16}$")


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """Put the root logger's handlers and yupnope's level back as they were after the test."""
    root, ours = logging.getLogger(), logging.getLogger("yupnope")
    handlers, level = list(root.handlers), ours.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    ours.setLevel(level)


def logged(log_format: str) -> io.StringIO:
    """Send the log's lines in ``log_format`` to a new buffer, and return it."""
    written = io.StringIO()
    logs.configure(log_format, stream=written)
    return written


@pytest.mark.usefixtures("restored_logging")
def test_a_text_line_says_when_how_bad_and_who() -> None:
    written = logged("text")
    logging.getLogger("yupnope.example").info("Redis answers again")
    found = TEXT_LINE.match(written.getvalue().rstrip("\n"))
    assert found, written.getvalue()
    assert found["level"] == "INFO" and found["logger"] == "yupnope.example"
    assert found["request"] is None and found["message"] == "Redis answers again"


@pytest.mark.usefixtures("restored_logging")
def test_configure_replaces_its_own_handler_and_leaves_others() -> None:
    first = logged("text")
    second = logged("json")
    logging.getLogger("yupnope.example").warning("once")
    assert first.getvalue() == ""
    assert json.loads(second.getvalue())["message"] == "once"
    logs.configure("text", stream=io.StringIO(), replace=False)
    logging.getLogger("yupnope.example").warning("twice")
    assert len(second.getvalue().splitlines()) == 2


@pytest.mark.usefixtures("restored_logging")
def test_a_json_line_in_a_request_carries_its_id(app_factory: Callable[..., Flask]) -> None:
    app = app_factory()

    @app.get("/says-something")
    def says_something() -> str:
        logging.getLogger("yupnope.example").warning("a %s warning", "formatted")
        return "said"

    written = logged("json")
    answer = app.test_client().get("/says-something")
    (line,) = [json.loads(text) for text in written.getvalue().splitlines()]
    assert set(line) == {"time", "level", "logger", "message", "request_id"}
    assert line["level"] == "WARNING" and line["message"] == "a formatted warning"
    assert line["request_id"] == answer.headers["X-Request-Id"]
    assert MADE_ID.match(line["request_id"])


def request_id_of(app: Flask, given: str | None, address: str = "127.0.0.1") -> str:
    """Return the id of the answer to a request that carries ``given`` from ``address``."""
    headers = {"X-Request-Id": given} if given is not None else {}
    answer = app.test_client().get(
        "/healthz/live", headers=headers, environ_base={"REMOTE_ADDR": address}
    )
    found: str = answer.headers["X-Request-Id"]
    return found


def test_every_answer_has_an_id_of_its_own(app: Flask) -> None:
    made = {request_id_of(app, None) for _ in range(5)}
    assert len(made) == 5 and all(MADE_ID.match(made_id) for made_id in made)
    # From a client, a given id is never believed: it could pass for another's requests.
    assert MADE_ID.match(request_id_of(app, "chosen-by-the-client"))


@pytest.mark.parametrize("proxies", ["1", "10.0.0.0/8"])
def test_a_trusted_proxys_id_is_kept_when_short_and_printable(
    app_factory: Callable[..., Flask], proxies: str
) -> None:
    app = app_factory(trusted_proxies=proxies)
    assert request_id_of(app, "nginx-4bf92f35", "10.1.2.3") == "nginx-4bf92f35"
    for unfit in ("x" * 65, "has space", "tab\there", "é", ""):
        assert MADE_ID.match(request_id_of(app, unfit, "10.1.2.3")), unfit
    if proxies != "1":
        assert MADE_ID.match(request_id_of(app, "nginx-4bf92f35", "192.0.2.7"))


def test_a_bad_log_format_is_one_line_naming_it(tmp_path: Path) -> None:
    said = r"^YUPNOPE_LOG_FORMAT must be one of text, json, not 'xml'$"
    with pytest.raises(config.ConfigError, match=said):
        config.load(environ={"YUPNOPE_INSTANCE_PATH": str(tmp_path), "YUPNOPE_LOG_FORMAT": "xml"})


@pytest.mark.live
def test_no_secret_reaches_the_json_log(live_server_factory: Callable[..., LiveServer]) -> None:
    server = live_server_factory(
        workers=1, log_format="json", access_log=True, metrics="on", **CHEAP_ARGON2
    )
    added = run_yupnope(
        server.instance, "users", "add", "alice", "--password-stdin", input=GOOD_PASSWORD
    )
    assert added.returncode == 0, added.stderr
    wrong = "not-alices-password-0451"
    browser = server.session()
    form = browser.post(
        server.url + "/login",
        data={"username": "alice", "password": GOOD_PASSWORD},
        allow_redirects=False,
    )
    assert form.status_code == 303
    assert browser.get(server.url + "/yup", timeout=TIMEOUT).status_code == 200
    created = requests.post(
        server.url + "/api/v1/sessions",
        json={"username": "alice", "password": GOOD_PASSWORD},
        timeout=TIMEOUT,
    ).json()
    bearer = {"Authorization": f"Bearer {created['token']}"}
    assert requests.get(server.url + "/api/v1/me", headers=bearer, timeout=TIMEOUT).ok
    failed = server.session().post(
        server.url + "/login",
        # A forwarded header from an untrusted peer: the app warns of it, in the request.
        headers={"X-Forwarded-For": "192.0.2.1"},
        data={"username": "alice", "password": wrong},
        allow_redirects=False,
    )
    assert failed.headers["Location"] == "/nope"
    server.stop()
    text = server.log.read_text()
    secrets = [GOOD_PASSWORD, wrong, created["token"], created["device"]]
    secrets += [form.cookies[COOKIE], *form.cookies.values(), "Authorization", "Bearer"]
    assert [secret for secret in secrets if secret in text] == []
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "granian.access"]
    assert {(line["method"], line["path"]) for line in access} >= {
        ("POST", "/login"),
        ("GET", "/api/v1/me"),
    }
    (warning,) = [line for line in lines if line["logger"] == "yupnope.web.proxies"]
    assert warning["level"] == "WARNING" and MADE_ID.match(warning["request_id"])
    assert warning["request_id"] == failed.headers["X-Request-Id"]


@pytest.mark.usefixtures("restored_logging")
def test_the_access_log_shows_no_mailed_links_token() -> None:
    written = logged("json")
    access = logging.getLogger("granian.access")
    for path in ("/reset/abc123", "/not-me/abc123", "/api/v1/password-resets/abc123", "/yup"):
        asked = {"addr": "192.0.2.1", "method": "GET", "path": path, "status": 200, "dt_ms": 1.5}
        access.warning('%(addr)s - "%(method)s %(path)s" %(status)d %(dt_ms).3f', asked)
    lines = [json.loads(line) for line in written.getvalue().splitlines()]
    assert "abc123" not in written.getvalue()
    assert [line["path"] for line in lines] == [
        "/reset/<token>",
        "/not-me/<token>",
        "/api/v1/password-resets/<token>",
        "/yup",
    ]
    assert lines[0]["message"] == '192.0.2.1 - "GET /reset/<token>" 200 1.500'


@pytest.mark.usefixtures("restored_logging")
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_line_shows_a_mailed_links_token(log_format: str) -> None:
    written = logged(log_format)
    logger = logging.getLogger("yupnope.example")
    logger.error("database unavailable (%s %r): %s", "POST", "/reset/t0ken-1_x", "gone")
    logger.error("Exception on /verify-email/t0ken-2 [GET]")
    logger.error("Exception on /api/v1/password-resets/t0ken-3 [POST]")
    logger.error("a page /not-me/t0ken-4")
    assert "t0ken" not in written.getvalue(), written.getvalue()
    assert written.getvalue().count("<token>") == 4
