"""Time and profile the signed-in path in one process: GET /yup and GET /api/v1/me.

Not part of ``make bench``: no server and no load, only Flask's test client calling the app in
this process, so it runs on a shared machine without taking its cores. The numbers are
microseconds per request on this machine, for comparing one change with the one before it;
the bare Flask app's answer through the same test client is printed beside them, as the part
of each figure that is the test client's and Flask's own.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from postgres import schema
from werkzeug.test import TestResponse

from yupnope import create_app, migrations, wiring

#: argon2 at its cheapest: the login that opens the session is not what is measured.
CHEAP_ARGON2 = {"argon2_memory_kib": 8, "argon2_time_cost": 1, "argon2_parallelism": 1}

PASSWORD = "correct horse battery staple"  # noqa: S105 (a throwaway account's)

#: What a browser sends with a request from a page of this same site.
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def build(instance: Path, database_url: str | None) -> Flask:
    """Return a migrated app on ``instance`` with one user, alice."""
    chosen = {"database_url": database_url} if database_url else {}
    app = create_app({"instance_path": str(instance), **CHEAP_ARGON2, **chosen})
    migrations.upgrade(wiring.get(app).engine)
    with app.app_context():
        wiring.operator().add_user("alice", PASSWORD, datetime.now(UTC))
    return app


def bare_app() -> Flask:
    """Return a Flask app that answers a constant: the floor under every figure."""
    app = Flask("bare")
    app.add_url_rule("/", "constant", lambda: "yup\n")
    return app


def callers(app: Flask) -> dict[str, Callable[[], object]]:
    """Log alice in every way there is; return one signed-in request of each kind, by name."""
    browser = app.test_client()
    form = {"username": "alice", "password": PASSWORD}
    expect(browser.post("/login", data=form, headers=SAME_ORIGIN), 303)
    api = app.test_client()
    answer = expect(api.post("/api/v1/sessions", json=form), 201)
    session = {"Authorization": f"Bearer {answer.get_json()['token']}"}
    answer = expect(api.post("/api/v1/me/tokens", json={"name": "bench"}, headers=session), 201)
    personal = {"Authorization": f"Bearer {answer.get_json()['secret']}"}
    floor = bare_app().test_client()
    return {
        "GET /yup (cookie)": checked(browser, "/yup", {}),
        "GET /api/v1/me (API session)": checked(api, "/api/v1/me", session),
        "GET /api/v1/me (personal token)": checked(api, "/api/v1/me", personal),
        "bare Flask app, GET /": checked(floor, "/", {}),
    }


def checked(client: FlaskClient, path: str, headers: dict[str, str]) -> Callable[[], object]:
    """Return a function that asks ``path`` once and fails unless the answer is 200."""

    def ask() -> object:
        return expect(client.get(path, headers=headers), 200)

    return ask


def expect(answer: TestResponse, status: int) -> TestResponse:
    """Return ``answer``, or stop the bench when its status is not ``status``."""
    if answer.status_code != status:
        raise SystemExit(f"{answer.request.path}: {answer.status_code} {answer.text[:300]}")
    return answer


def per_request(ask: Callable[[], object], requests: int, rounds: int) -> float:
    """Return the median over ``rounds`` of microseconds per request, ``requests`` in each."""
    for _ in range(200):
        ask()
    figures = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(requests // rounds):
            ask()
        figures.append((time.perf_counter() - started) / (requests // rounds) * 1e6)
    return statistics.median(figures)


def profile(name: str, ask: Callable[[], object], requests: int, top: int) -> None:
    """Print the functions ``requests`` calls of ``ask`` spent the most time in, two ways."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        ask()
    profiler.disable()
    for order in ("tottime", "cumulative"):
        print(f"\n## {name}: {requests} requests, by {order}\n")
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.strip_dirs().sort_stats(order).print_stats(top)


@contextmanager
def database(postgres: bool) -> Iterator[str | None]:
    """Yield the URL of a PostgreSQL schema of the bench's own, dropped after; or None: SQLite."""
    if not postgres:
        yield None
        return
    with schema() as made:
        yield made.url


def main() -> None:
    """Build the app, log in, then time (or profile) each kind of signed-in request."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000, help="requests of each kind")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds; the median counts")
    parser.add_argument(
        "--postgres", action="store_true", help="on a PostgreSQL schema of its own, not SQLite"
    )
    parser.add_argument("--profile", action="store_true", help="profile instead of timing")
    parser.add_argument("--top", type=int, default=30, help="functions listed per profile")
    parser.add_argument("--only", help="only the kinds whose name contains this")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, database(options.postgres) as url:
        instance = Path(folder) / "instance"
        instance.mkdir(mode=0o700)
        app = build(instance, url)
        try:
            for name, ask in callers(app).items():
                if options.only and options.only not in name:
                    continue
                if options.profile:
                    profile(name, ask, options.requests, options.top)
                else:
                    figure = per_request(ask, options.requests, options.rounds)
                    print(f"{name:34} {figure:8.1f} µs")
        finally:
            wiring.get(app).engine.dispose()


if __name__ == "__main__":
    main()
