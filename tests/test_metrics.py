"""Test the Prometheus metrics: what they count, where they are served, and across workers."""

from __future__ import annotations

import glob
import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from helpers import (
    CHEAP_ARGON2,
    COOKIE,
    GOOD_PASSWORD,
    SAME_ORIGIN,
    TIMEOUT,
    LiveServer,
    add_user,
    free_port,
    login,
    run_yupnope,
)
from test_admission import gate_full
from test_second_factor_web import (
    API,
    api_login,
    bearer,
    enrol_through_api,
    now_code,
    wrong_code,
)
from test_serve import wait_for, workers
from yupnope import config, wiring
from yupnope.metrics import Metrics
from yupnope.web.metrics import Measured

#: The metrics every scrape shows, whatever has happened yet.
NAMES = {
    "yupnope_logins",
    "yupnope_throttled",
    "yupnope_hashing_refused",
    "yupnope_hash_seconds",
    "yupnope_sessions_started",
    "yupnope_request_seconds",
}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Return each sample of an exposition by its name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    """Return one sample's value, 0 when it was never counted."""
    return found.get((name, frozenset(labels.items())), 0.0)


def scrape(client: FlaskClient) -> Samples:
    """Return the samples /metrics shows now."""
    answer = client.get("/metrics")
    assert answer.status_code == 200
    return samples(answer.get_data(as_text=True))


@pytest.fixture
def metered(app_factory: Callable[..., Flask]) -> Flask:
    """Return an app with metrics on, alice its one user."""
    app = app_factory(metrics="on")
    add_user(app, "alice")
    return app


def test_metrics_are_served_in_prometheus_text(metered: Flask) -> None:
    answer = metered.test_client().get("/metrics")
    assert answer.status_code == 200
    assert answer.mimetype == "text/plain"
    assert "version=" in answer.headers["Content-Type"]
    names = {family.name for family in text_string_to_metric_families(answer.get_data(True))}
    assert names >= NAMES


def test_logins_are_counted_by_outcome(metered: Flask) -> None:
    client = metered.test_client()
    assert login(client, "alice").headers["Location"] == "/yup"
    assert login(client, "alice", "not the password").headers["Location"] == "/nope"
    found = scrape(client)
    password = {"step": "password"}
    assert value(found, "yupnope_logins_total", outcome="success", **password) == 1
    assert value(found, "yupnope_logins_total", outcome="wrong_credentials", **password) == 1
    assert value(found, "yupnope_sessions_started_total", kind="browser") == 1
    # alice's hash at add_user, then one verify per login.
    assert value(found, "yupnope_hash_seconds_count") == 3
    assert value(found, "yupnope_request_seconds_count", route="/login") == 2


def test_a_throttled_login_is_counted_with_its_counters_scope(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(metrics="on", throttle_free_failures=1)
    add_user(app, "alice")
    client = app.test_client()
    answers = [login(client, "alice", "wrong").headers["Location"] for _ in range(3)]
    waits = sum(answer.startswith("/nope?wait=") for answer in answers)
    assert answers[0] == "/nope" and waits >= 1
    found = scrape(client)
    assert value(found, "yupnope_logins_total", step="password", outcome="throttled") == waits
    assert value(found, "yupnope_throttled_total", scope="account") == waits


def test_the_apis_logins_are_counted_as_the_forms(metered: Flask) -> None:
    client = metered.test_client()
    answer = client.post("/api/v1/sessions", json={"username": "alice", "password": "x" * 9})
    assert answer.status_code == 401
    answer = client.post("/api/v1/sessions", json={"username": "alice", "password": GOOD_PASSWORD})
    assert answer.status_code == 201
    found = scrape(client)
    assert value(found, "yupnope_logins_total", step="password", outcome="success") == 1
    assert value(found, "yupnope_sessions_started_total", kind="api") == 1


def test_the_second_step_is_counted_as_a_step_of_its_own(metered: Flask) -> None:
    client = metered.test_client()
    secret, _ = enrol_through_api(client, bearer(api_login(client).json["token"]))
    challenge = api_login(client).json["challenge"]
    step = f"{API}/sessions/second-factor"
    for code in (wrong_code(secret), now_code(secret, 1), now_code(secret, 1)):
        client.post(step, json={"challenge": challenge, "code": code})
    found = scrape(client)
    counted = {
        dict(labels)["step"] + " " + dict(labels)["outcome"]: count
        for (name, labels), count in found.items()
        if name == "yupnope_logins_total"
    }
    assert counted == {
        "password success": 1,
        "password second_step_needed": 1,
        "second_factor wrong_credentials": 1,
        "second_factor success": 1,
        "second_factor challenge_gone": 1,
    }
    assert value(found, "yupnope_sessions_started_total", kind="api") == 2


def test_refusals_by_the_hashing_gate_are_counted_where_they_happen(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(metrics="on", hash_concurrency=1)
    add_user(app, "alice")
    client = app.test_client()
    with gate_full(app):
        assert login(client, "alice").status_code == 503
        signup = {"username": "bob", "password": "a long enough passphrase"}
        assert client.post("/signup", data=signup, headers=SAME_ORIGIN).status_code == 503
    found = scrape(client)
    # The login at the door, before Flask; the sign-up's hash in the gate's line.
    assert value(found, "yupnope_hashing_refused_total", at="door") == 1
    assert value(found, "yupnope_hashing_refused_total", at="gate") == 1
    assert value(found, "yupnope_request_seconds_count", route="/login") == 1


def test_requests_are_timed_by_their_url_rule_never_their_path(metered: Flask) -> None:
    client = metered.test_client()
    login(client, "alice")
    for made_up in ("/a", "/b/c", "/healthz/nothing"):
        assert client.get(made_up).status_code == 404
    checks = {"X-Forwarded-Method": "GET", "X-Forwarded-Proto": "https"}
    checks |= {"X-Forwarded-Host": "app.example.com", "X-Forwarded-Uri": "/"}
    client.get("/auth/forward", headers=checks)
    found = scrape(client)
    routes = {
        dict(labels)["route"] for name, labels in found if name == "yupnope_request_seconds_count"
    }
    assert {"/login", "unmatched", "/auth/forward"} <= routes
    assert value(found, "yupnope_request_seconds_count", route="unmatched") == 3
    assert not routes & {"/a", "/b/c", "/healthz/nothing"}


def test_metrics_off_serve_nothing_and_measure_nothing(app: Flask) -> None:
    assert app.test_client().get("/metrics").status_code == 404
    assert type(wiring.get(app).metrics) is Metrics
    layer = app.wsgi_app
    while hasattr(layer, "app"):
        assert not isinstance(layer, Measured)
        layer = layer.app


def test_metrics_at_an_address_of_their_own_leave_the_apps_port_404(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(metrics="127.0.0.1:9100")
    assert wiring.get(app).settings.metrics_address == ("127.0.0.1", 9100)
    assert app.test_client().get("/metrics").status_code == 404


@pytest.mark.parametrize(
    ("given", "parsed"),
    [
        ("off", None),
        ("on", None),
        ("192.0.2.1:9100", ("192.0.2.1", 9100)),
        ("[::1]:91", ("::1", 91)),
    ],
)
def test_the_metrics_setting_is_parsed(tmp_path: Path, given: str, parsed: object) -> None:
    settings = config.load(environ={}, overrides={"instance_path": str(tmp_path), "metrics": given})
    assert settings.metrics_address == parsed


@pytest.mark.parametrize(
    "given",
    ["yes", "9100", ":9100", "host:", "::1:9100", "[::1:9100", "[]:91", "h:0", "h:70000"]
    + ["h:\u00b2"],
)
def test_a_bad_metrics_setting_is_one_line_naming_it(tmp_path: Path, given: str) -> None:
    with pytest.raises(config.ConfigError, match="^YUPNOPE_METRICS") as refused:
        config.load(environ={"YUPNOPE_INSTANCE_PATH": str(tmp_path), "YUPNOPE_METRICS": given})
    assert "\n" not in str(refused.value)


def metrics_folders_of(server: LiveServer) -> set[str]:
    """Return the metrics folders that hold files of ``server``'s workers."""
    found = set()
    for pid in workers(server):
        pattern = os.path.join(tempfile.gettempdir(), "yupnope-metrics-*", f"*_{pid}.db")
        found |= {os.path.dirname(path) for path in glob.glob(pattern)}
    return found


def metered_server(factory: Callable[..., LiveServer], **settings: str) -> LiveServer:
    """Start a live server of two workers with metrics as ``settings`` say, alice its user."""
    server = factory(workers=2, **CHEAP_ARGON2, **settings)
    added = run_yupnope(
        server.instance, "users", "add", "alice", "--password-stdin", input=GOOD_PASSWORD
    )
    assert added.returncode == 0, added.stderr
    return server


def log_in_on_new_connections(server: LiveServer, times: int) -> None:
    """Log alice in ``times`` times, each on a connection of its own."""
    for _ in range(times):
        with server.session() as http:
            form = {"username": "alice", "password": GOOD_PASSWORD}
            answer = http.post(server.url + "/login", data=form, allow_redirects=False)
            assert answer.status_code == 303 and COOKIE in answer.cookies


@pytest.mark.live
def test_counts_from_every_worker_add_up(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = metered_server(live_server_factory, metrics="on")
    logins = 24
    # A connection of its own each: the kernel spreads them over the workers' sockets.
    log_in_on_new_connections(server, logins)
    (folder,) = metrics_folders_of(server)
    counted_by = {Path(path).stem.split("_")[-1] for path in glob.glob(f"{folder}/counter_*")}
    assert len(counted_by) == 2, "every login landed on one worker"
    found = samples(requests.get(server.url + "/metrics", timeout=TIMEOUT).text)
    assert value(found, "yupnope_logins_total", step="password", outcome="success") == logins
    assert value(found, "yupnope_request_seconds_count", route="/login") == logins
    assert Path(folder).stat().st_mode & 0o777 == 0o700
    server.stop()
    assert not Path(folder).exists()


@pytest.mark.live
def test_the_counts_of_workers_replaced_by_a_hup_still_count(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = metered_server(live_server_factory, metrics="on")
    log_in_on_new_connections(server, 4)
    assert server.process is not None
    before = workers(server)
    os.kill(server.process.pid, signal.SIGHUP)
    assert wait_for(lambda: not workers(server) & before and len(workers(server)) == 2)
    log_in_on_new_connections(server, 3)
    found = samples(requests.get(server.url + "/metrics", timeout=TIMEOUT).text)
    assert value(found, "yupnope_logins_total", step="password", outcome="success") == 7


@pytest.mark.live
def test_metrics_at_their_own_address_are_served_there_alone(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    port = free_port()
    server = live_server_factory(workers=2, metrics=f"127.0.0.1:{port}", **CHEAP_ARGON2)
    assert requests.get(server.url + "/healthz", timeout=TIMEOUT).status_code == 200
    assert requests.get(server.url + "/metrics", timeout=TIMEOUT).status_code == 404
    answer = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=TIMEOUT)
    assert answer.status_code == 200
    found = samples(answer.text)
    # The start's own checks of /healthz, and this one; the 404 above matched no rule.
    assert value(found, "yupnope_request_seconds_count", route="/healthz") >= 2
    assert value(found, "yupnope_request_seconds_count", route="unmatched") == 1
    # An INFO line of yupnope's own, in the log's text form: time, level, logger, message.
    said = f" INFO yupnope.cli.serve metrics served at http://127.0.0.1:{port}/metrics"
    assert said in server.log.read_text()
