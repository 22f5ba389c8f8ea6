"""Test the counter backends: Redis and the database alike, and the fall back between them.

The Redis tests use the test Redis under a prefix of their own (conftest.redis_url); the
outage tests start and stop a private ``redis-server`` of their own.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import requests
from flask import Flask
from sqlalchemy import select

from helpers import (
    CHEAP_ARGON2,
    GOOD_PASSWORD,
    NOW,
    WRONG,
    RedisSpace,
    add_user,
    counter_row,
    free_port,
    require_service,
    run_yupnope,
)
from yupnope import wiring
from yupnope.client import Client
from yupnope.config import ConfigError, load
from yupnope.errors import InvalidCredentials, Throttled
from yupnope.models import ThrottleCounter
from yupnope.throttle.counters import Count, Counters
from yupnope.throttle.fallback import Outage
from yupnope.throttle.policy import ACCOUNT, ADDRESS, Backoff, account_key
from yupnope.throttle.redis import RedisCounters, public_url, redis_client

HOUR = timedelta(hours=1)

#: The logger of the fall back between Redis and the database.
FALLBACK_LOGGER = "yupnope.throttle.fallback"


def attempt(name: str, password: str, at: datetime = NOW, address: str = "192.0.2.7") -> Any:
    """Try one login in the current app context: "yup", "nope", or Throttled's retry_after."""
    try:
        wiring.accounts().log_in(name, password, Client(address=address), at)
    except InvalidCredentials:
        return "nope"
    except Throttled as exc:
        return exc.retry_after
    return "yup"


def database_counts(app: Flask) -> dict[tuple[str, str], int]:
    """Return every counter kept in the database: (scope, key) to its count."""
    with app.app_context():
        rows = wiring.orm_session().scalars(select(ThrottleCounter)).all()
        return {(row.scope, row.key): row.count for row in rows}


# Both backends, one behaviour


class Backend:
    """One app's counters, to run transactions on and to read without changing."""

    def __init__(self, app: Flask, space: RedisSpace | None) -> None:
        self.app = app
        self.space = space

    def run(self, work: Callable[[Counters], Any]) -> Any:
        """Return ``work(counters)`` run as one transaction of the app's counters."""
        with self.app.app_context():
            return wiring.accounts().throttle.counters.transaction(work)

    def state(self, key: str = "k") -> Count | None:
        """Return the state of the counter ("test", ``key``), read where it is kept."""
        if self.space is None:
            with self.app.app_context():
                row = counter_row("test", key)
                return (
                    None if row is None else Count(row.count, row.window_start, row.blocked_until)
                )
        found = self.space.client.hgetall(f"{self.space.prefix}:test:{key}")
        if not found:
            return None
        blocked = found.get(b"blocked_until")
        return Count(
            int(found[b"count"]),
            datetime.fromtimestamp(float(found[b"window_start"]), UTC),
            None if blocked is None else datetime.fromtimestamp(float(blocked), UTC),
        )


@pytest.fixture(params=["database", "redis"])
def backend(request: pytest.FixtureRequest, app_factory: Callable[..., Flask]) -> Backend:
    """Return an app's counters, in the database or in Redis."""
    space: RedisSpace | None = None
    if request.param == "redis":
        space = request.getfixturevalue("redis_url")
    return Backend(app_factory(**(space.settings() if space else {})), space)


def test_a_window_counts_then_starts_afresh_and_keeps_its_wait(backend: Backend) -> None:
    run, fresh = backend.run, NOW - HOUR
    assert run(lambda c: c.hit("test", "k", NOW, fresh)) == Count(1, NOW, None)
    later = NOW + timedelta(minutes=59, microseconds=123457)
    assert run(lambda c: c.hit("test", "k", later, later - HOUR)) == Count(2, NOW, None)
    backoff = Backoff(free=2, base=timedelta(seconds=10), longest=timedelta(seconds=15))
    assert run(lambda c: c.hit("test", "k", later, later - HOUR, backoff)) == Count(3, NOW, None)
    # The wait the third hit set (10 s doubled once, capped at 15 s) is exact to the microsecond.
    blocked = later + timedelta(seconds=15)
    assert backend.state() == Count(3, NOW, blocked)
    # A window that began at or before fresh_after restarts at one, and the wait stays.
    new = NOW + HOUR
    assert run(lambda c: c.hit("test", "k", new, new - HOUR)) == Count(1, new, blocked)


def test_a_failed_transaction_leaves_every_counter_as_it_was(backend: Backend) -> None:
    run = backend.run
    backoff = Backoff(free=1, base=timedelta(seconds=60), longest=timedelta(seconds=60))
    run(lambda c: c.hit("test", "old", NOW - 2 * HOUR, NOW - 3 * HOUR))
    run(lambda c: c.hit("test", "same", NOW, NOW - HOUR))
    before = {key: backend.state(key) for key in ("old", "same", "new")}
    assert before["new"] is None

    def refused(counters: Counters) -> None:
        counters.hit("test", "old", NOW, NOW - HOUR, backoff)  # restarts the window, waits
        counters.hit("test", "same", NOW, NOW - HOUR, backoff)  # counts 2, waits
        counters.hit("test", "new", NOW, NOW - HOUR, backoff)  # makes the counter, waits
        raise Throttled(1)

    with pytest.raises(Throttled):
        run(refused)
    assert {key: backend.state(key) for key in before} == before


def test_refund_unblock_and_clear(backend: Backend) -> None:
    run, state = backend.run, backend.state
    backoff = Backoff(free=1, base=timedelta(seconds=60), longest=timedelta(seconds=60))
    first, second = NOW + timedelta(seconds=60), NOW + timedelta(seconds=61)
    run(lambda c: c.hit("test", "k", NOW, NOW - HOUR, backoff))
    assert state() == Count(1, NOW, first)
    # A wait is put back only by the attempt that set it.
    run(lambda c: c.unblock("test", "k", set_at=second, back_to=None))
    assert state() == Count(1, NOW, first)
    run(lambda c: c.unblock("test", "k", set_at=first, back_to=NOW))
    assert state() == Count(1, NOW, NOW)
    for _ in range(2):
        run(lambda c: c.refund("test", "k"))
    assert state() == Count(0, NOW, NOW)
    run(lambda c: c.refund("test", "nothing"))
    assert state("nothing") is None
    assert run(lambda c: c.clear("test", "k")) == 1
    assert run(lambda c: c.clear("test", "k")) == 0
    assert state() is None


def test_of_a_burst_on_one_account_only_the_free_failures_get_through(backend: Backend) -> None:
    # The wait is set in the same atomic step as the count, so no attempt of the burst can come
    # between another one's count and its wait.
    backoff = Backoff(free=5, base=timedelta(seconds=60), longest=timedelta(seconds=60))
    barrier = threading.Barrier(30, timeout=30)

    def one(_: int) -> bool:
        barrier.wait()
        count = backend.run(lambda c: c.hit("test", "k", NOW, NOW - HOUR, backoff))
        return count.blocked_until is None

    with ThreadPoolExecutor(30) as pool:
        passed = list(pool.map(one, range(30)))
    assert sum(passed) == 5
    assert backend.state() == Count(30, NOW, NOW + timedelta(seconds=60))


# Redis alone


def test_concurrent_hits_on_one_redis_key_are_all_counted(redis_url: RedisSpace) -> None:
    remote = RedisCounters(redis_client(redis_url.url), redis_url.prefix, HOUR)
    barrier = threading.Barrier(100, timeout=30)

    def hit(_: int) -> int:
        barrier.wait()
        return remote.hit("test", "burst", NOW, NOW - HOUR).count

    with ThreadPoolExecutor(100) as pool:
        seen = list(pool.map(hit, range(100)))
    remote.client.close()
    assert sorted(seen) == list(range(1, 101))
    assert redis_url.counts() == {("test", "burst"): 100}


def test_a_redis_key_lives_as_long_as_its_window_and_the_longest_wait(
    redis_url: RedisSpace,
) -> None:
    remote = RedisCounters(redis_url.client, redis_url.prefix, timedelta(minutes=15))
    remote.hit("address", "192.0.2.7", NOW, NOW - timedelta(minutes=15))
    remote.hit("account", "a", NOW, NOW - timedelta(days=30))
    address = redis_url.client.pttl(remote.key("address", "192.0.2.7"))
    account = redis_url.client.pttl(remote.key("account", "a"))
    assert 29 * 60_000 < address <= 30 * 60_000
    assert (30 * 86400 + 14 * 60) * 1000 < account <= (30 * 86400 + 15 * 60) * 1000


def test_the_app_makes_no_redis_connection_before_its_first_count(
    app_factory: Callable[..., Flask], private_redis: PrivateRedis
) -> None:
    app = app_factory(redis_url=private_redis.url)
    add_user(app, "alice")
    assert private_redis.clients() == 1  # the test's own
    with app.app_context():
        assert attempt("alice", WRONG) == "nope"
    assert private_redis.clients() == 2


# Redis down: the database counts


class PrivateRedis:
    """A `redis-server` of the test's own on a free port, without persistence."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.client = redis.Redis(port=self.port, socket_connect_timeout=1, socket_timeout=1)

    def start(self) -> None:
        """Start the server on its port and wait until it answers."""
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not come up") from None
                time.sleep(0.02)

    def stop(self) -> None:
        """Stop the server and wait until it is gone."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
            self.client.connection_pool.disconnect()

    def clients(self) -> int:
        """Return how many connections the server has, this client's included."""
        return int(self.client.info("clients")["connected_clients"])

    def keys(self) -> list[bytes]:
        """Return every key the server holds."""
        return list(self.client.scan_iter())


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """Return a started private redis-server; it stops at the end."""
    binary = shutil.which("redis-server")
    if binary is None:
        require_service("Redis", False, "no redis-server program to start a private one")
        raise AssertionError("unreachable")
    server = PrivateRedis(binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.client.close()


def warnings_of(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == FALLBACK_LOGGER and r.levelno == level
    ]


def test_a_stopped_redis_sends_the_counters_to_the_database_and_back(
    app_factory: Callable[..., Flask],
    private_redis: PrivateRedis,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO, logger=FALLBACK_LOGGER)
    app = app_factory(
        redis_url=private_redis.url, throttle_free_failures=2, throttle_base_delay_seconds=600
    )
    wired = wiring.get(app).redis
    assert wired is not None
    monkeypatch.setattr(wired[1], "retry_seconds", 0.2)
    add_user(app, "alice")
    with app.app_context():
        assert attempt("alice", WRONG) == "nope"
    assert len(private_redis.keys()) == 2  # address, global: the short counters
    # The account's counter spans 30 days: it stays in the database (throttle/split.py).
    assert database_counts(app) == {(ACCOUNT, account_key("alice")): 1}

    private_redis.stop()
    with app.app_context():
        outcomes = []
        for _ in range(4):
            outcomes.append(attempt("alice", WRONG))
            # Past the retry interval, so the later attempts try Redis again, and fail again.
            time.sleep(0.25)
        assert attempt("alice", GOOD_PASSWORD) == 600
    # The account's count went on in the database from where it was: one more free failure,
    # then the wait; the short counters counted there from nothing. Never unlimited.
    assert outcomes == ["nope", 600, 600, 600]
    assert database_counts(app)[(ACCOUNT, account_key("alice"))] == 2
    (warning,) = warnings_of(caplog, logging.WARNING)
    assert f"Redis at {private_redis.url} is unreachable" in warning
    assert "fall back to the database until it answers again" in warning
    assert warnings_of(caplog, logging.INFO) == []

    private_redis.start()
    deadline = time.monotonic() + 10
    with app.app_context():
        for index in range(1000):
            assert attempt(f"user{index}", WRONG, address=f"203.0.113.{index % 250}") == "nope"
            if private_redis.keys() or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert private_redis.keys(), "the counters never went back to Redis"
    (info,) = warnings_of(caplog, logging.INFO)
    assert info.startswith(f"Redis at {private_redis.url} answers again")
    assert len(warnings_of(caplog, logging.WARNING)) == 1
    # Back in Redis, which lost its counts when it stopped (no persistence here): the account's
    # wait is in the database, so the restart handed the guesser no fresh budget.
    with app.app_context():
        assert attempt("alice", WRONG, address="198.51.100.1") == 600
    assert not private_redis.client.exists(f"yupnope:{ACCOUNT}:{account_key('alice')}")


def test_a_restarted_redis_hands_out_no_fresh_budget(
    app_factory: Callable[..., Flask], private_redis: PrivateRedis
) -> None:
    """Keep an account's failures across a restart of a Redis that keeps nothing on disk.

    Before, every such restart gave each account a fresh budget of failures.
    """
    app = app_factory(
        redis_url=private_redis.url, throttle_free_failures=2, throttle_base_delay_seconds=600
    )
    add_user(app, "alice")
    with app.app_context():
        assert [attempt("alice", WRONG) for _ in range(2)] == ["nope", "nope"]
        assert attempt("alice", GOOD_PASSWORD) == 600
    private_redis.stop()
    private_redis.start()
    assert private_redis.keys() == []
    with app.app_context():
        assert attempt("alice", GOOD_PASSWORD) == 600


def test_a_redis_that_never_answered_leaves_the_throttle_to_the_database(
    app_factory: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=FALLBACK_LOGGER)
    port = free_port()
    app = app_factory(
        redis_url=f"redis://yupnope:sekrit@127.0.0.1:{port}/0",
        throttle_free_failures=2,
        throttle_base_delay_seconds=600,
    )
    add_user(app, "alice")
    started = time.monotonic()
    with app.app_context():
        assert [attempt("alice", WRONG) for _ in range(3)] == ["nope", "nope", 600]
        assert attempt("alice", GOOD_PASSWORD) == 600
    assert time.monotonic() - started < 5
    assert database_counts(app)[(ACCOUNT, account_key("alice"))] == 2
    (warning,) = warnings_of(caplog, logging.WARNING)
    assert warning.startswith(f"Redis at redis://127.0.0.1:{port}/0 is unreachable")
    assert "sekrit" not in caplog.text


def test_an_outage_lets_one_request_per_interval_try_redis() -> None:
    clock = [100.0]
    redis_down = Outage("redis://here", retry_seconds=5, clock=lambda: clock[0])
    assert redis_down.worth_trying()
    redis_down.began(redis.ConnectionError("refused"))
    assert not redis_down.worth_trying()
    clock[0] += 5
    assert redis_down.worth_trying()
    assert not redis_down.worth_trying(), "a second request tried while the first one did"
    redis_down.began(redis.TimeoutError("timed out"))
    clock[0] += 4.9
    assert not redis_down.worth_trying()
    redis_down.ended()
    assert redis_down.worth_trying()


# Across processes


@pytest.mark.live
def test_two_instances_on_one_redis_check_only_the_free_failures(
    live_server_factory: Callable[..., Any], redis_url: RedisSpace, instance: Any
) -> None:
    settings = {
        **CHEAP_ARGON2,
        **redis_url.settings(),
        "throttle_base_delay_seconds": 60,
        "hash_concurrency": 4,
    }
    servers = [live_server_factory(workers=2, **settings) for _ in range(2)]
    added = run_yupnope(instance, "users", "add", "alice", "--password-stdin", input=GOOD_PASSWORD)
    assert added.returncode == 0, added.stderr
    barrier = threading.Barrier(20, timeout=30)

    def guess(index: int) -> str:
        server = servers[index % 2]
        barrier.wait()
        answer = requests.post(
            server.url + "/login",
            data={"username": "alice", "password": f"wrong guess {index}"},
            headers={"Origin": server.url},
            allow_redirects=False,
            timeout=(5, 20),
        )
        assert answer.status_code == 303, answer.status_code
        return str(answer.headers["Location"])

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(guess, range(20)))
    assert answers.count("/nope") == 5, answers
    # The address's counter is shared in Redis; the account's in the instances' database.
    assert redis_url.counts()[(ADDRESS, "127.0.0.1")] == 5
    database = sqlite3.connect(instance / "yupnope.db")
    try:
        (count,) = database.execute(
            "SELECT count FROM throttle_counters WHERE scope = ? AND key = ?",
            (ACCOUNT, account_key("alice")),
        ).fetchone()
    finally:
        database.close()
    assert count == 5


# Settings


@pytest.mark.parametrize("url", ["localhost:6379", "http://127.0.0.1:6379", "127.0.0.1"])
def test_a_redis_url_of_another_shape_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="REDIS_URL must start with redis://"):
        load(environ={"YUPNOPE_REDIS_URL": url})


def test_the_logged_url_holds_no_password() -> None:
    assert public_url("redis://user:pw@cache:6380/2?x=1") == "redis://cache:6380/2"
    assert public_url("rediss://:pw@[::1]:6379/0") == "rediss://[::1]:6379/0"
    assert public_url("unix:///run/redis.sock") == "unix:///run/redis.sock"
