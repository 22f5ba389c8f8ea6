"""Test the throttle through the account rules: delays, limits, device cookies, refunds, pruning.

Time is driven by passing ``now``; nothing here sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from helpers import (
    GOOD_PASSWORD,
    NOW,
    SAME_ORIGIN,
    WRONG,
    HashCounter,
    RedisSpace,
    add_user,
    counter_row,
    device_cookie_from,
    environment,
    login,
    run_cli,
)
from yupnope import wiring
from yupnope.client import Client
from yupnope.errors import (
    Busy,
    InvalidCredentials,
    Throttled,
    UnknownUser,
    UsernameTaken,
    WeakPassword,
)
from yupnope.housekeeping import Pruned
from yupnope.kinds import EventKind
from yupnope.models import LoginEvent, Session, ThrottleCounter
from yupnope.security import tokens
from yupnope.security.tokens import DeviceCookies
from yupnope.throttle.policy import (
    ACCOUNT,
    ADDRESS,
    DEVICE,
    GLOBAL,
    REFUSAL,
    SIGNUP,
    account_key,
    address_key,
)
from yupnope.throttle.split import DURABLE

#: Where every app test here runs: (database, where the throttle counters live).
STORES = {
    "sqlite": ("sqlite", "database"),
    "postgresql": ("postgresql", "database"),
    "redis": ("sqlite", "redis"),
}

#: Tests of the database's own counters, which Redis would not change.
DATABASE_ONLY = {
    "test_concurrent_hits_are_all_counted_on_sqlite",
    "test_concurrent_hits_are_all_counted_on_postgresql",
    "test_prune_deletes_what_ran_out_and_keeps_the_rest",
}

HOME = "192.0.2.7"
ELSEWHERE = "198.51.100.1"

Outcome = str | int


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> HashCounter:
    return HashCounter(monkeypatch)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each app test on SQLite, on PostgreSQL, and on SQLite with the counters in Redis."""
    if "database_url" not in metafunc.fixturenames:
        return
    names = [
        n for n in STORES if not (n == "redis" and metafunc.function.__name__ in DATABASE_ONLY)
    ]
    metafunc.parametrize(
        ("database_url", "counters_in"), [STORES[n] for n in names], indirect=True, ids=names
    )


@pytest.fixture(autouse=True)
def counters_in(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, _clean_environment: None
) -> str:
    """Keep the throttle counters of every app the test makes, and its CLI's, where asked."""
    where: str = getattr(request, "param", "database")
    if where == "redis":
        space: RedisSpace = request.getfixturevalue("redis_url")
        for name, value in environment(space.settings()).items():
            monkeypatch.setenv(name, value)
    return where


def attempt(
    name: str,
    password: str,
    *,
    at: datetime = NOW,
    address: str = HOME,
    device: str | None = None,
) -> Outcome:
    """Try one login in the current app context: "yup", "nope", or Throttled's retry_after."""
    try:
        wiring.accounts().log_in(
            name, password, Client(address=address, user_agent="pytest"), at, device_cookie=device
        )
    except InvalidCredentials:
        return "nope"
    except Throttled as exc:
        return exc.retry_after
    return "yup"


def counters(app: Flask) -> dict[tuple[str, str], int]:
    """Return every attempt counter's count, read afresh from the database and Redis.

    The counters of refusals already logged (scope REFUSAL) are left out: they count log
    rows, not attempts.
    """
    with app.app_context():
        rows = wiring.orm_session().scalars(select(ThrottleCounter)).all()
        found = {(row.scope, row.key): row.count for row in rows}
    wired = wiring.get(app)
    if wired.redis is not None:
        # The long counters stay in the database; the short ones must all be in Redis.
        brief = {counter for counter in found if counter[0] not in DURABLE}
        assert not brief, f"short counters went to the database while Redis answered: {brief}"
        remote, _outage = wired.redis
        found |= RedisSpace(wired.settings.redis_url, remote.prefix, remote.client).counts()
    return {counter: count for counter, count in found.items() if counter[0] != REFUSAL}


class Browser:
    """Log in through the login form from one address, keeping cookies as a browser does."""

    def __init__(self, app: Flask, address: str) -> None:
        self.http: FlaskClient = app.test_client()
        self.address = address

    def log_in(self, name: str, password: str = GOOD_PASSWORD) -> Outcome:
        """Post the form: "yup", "nope", or the wait it was told."""
        response = self.http.post(
            "/login",
            data={"username": name, "password": password},
            headers=SAME_ORIGIN,
            environ_base={"REMOTE_ADDR": self.address},
        )
        return outcome(response, {"/yup": "yup", "/nope": "nope"}.get(response.location))


class Program:
    """Log in through the API from one address, keeping each answer's device as the README asks."""

    def __init__(self, app: Flask, address: str) -> None:
        self.http: FlaskClient = app.test_client()
        self.address = address
        self.device: str | None = None

    def log_in(self, name: str, password: str = GOOD_PASSWORD) -> Outcome:
        """Post the credentials, with the device once there is one: "yup", "nope", or the wait."""
        body = {"username": name, "password": password}
        if self.device is not None:
            body["device"] = self.device
        response = self.http.post(
            "/api/v1/sessions", json=body, environ_base={"REMOTE_ADDR": self.address}
        )
        if response.status_code == 201:
            self.device = response.get_json()["device"]
        return outcome(response, {201: "yup", 401: "nope"}.get(response.status_code))


def outcome(response: TestResponse, answered: str | None) -> Outcome:
    """Return ``answered``, or else the wait a throttled answer names in its Retry-After."""
    if answered is not None:
        return answered
    assert response.status_code in (303, 429), response.get_data(as_text=True)
    return int(response.headers["Retry-After"])


def waited(answer: Outcome) -> int:
    """Return the wait a refused attempt was told, failing if it was not refused."""
    assert isinstance(answer, int), answer
    return answer


def account(name: str) -> tuple[str, str]:
    return (ACCOUNT, account_key(name))


def device_cookie(app: Flask, name: str) -> str:
    """Return a fresh device cookie for the user ``name``, as a login hands one out."""
    with app.app_context():
        user = wiring.operator().find(name)
        return wiring.get(app).devices.sign(user.username_key)


# Progressive delay


def test_failures_past_the_free_ones_wait_twice_as_long_each_time(
    app_factory: Callable[..., Flask], hashes: HashCounter
) -> None:
    app = app_factory(throttle_max_delay_seconds=8)
    assert wiring.get(app).settings.throttle_free_failures == 5
    add_user(app, "alice")
    with app.app_context():
        for _ in range(5):
            assert attempt("alice", WRONG) == "nope"
        at = NOW
        for wait in (1, 2, 4, 8, 8, 8):
            count, hashed = counters(app)[account("alice")], hashes.calls
            assert attempt("alice", WRONG, at=at) == wait
            almost = at + timedelta(seconds=wait) - timedelta(milliseconds=1)
            assert attempt("alice", WRONG, at=almost) == 1
            # Refused attempts are neither counted nor hashed.
            assert counters(app)[account("alice")] == count
            assert hashes.calls == hashed
            at += timedelta(seconds=wait)
            assert attempt("alice", WRONG, at=at) == "nope"
            assert counters(app)[account("alice")] == count + 1
            assert hashes.calls == hashed + 1


@pytest.mark.parametrize("free", [0, 1])
def test_the_first_wait_is_the_base_delay_however_few_failures_are_free(
    app_factory: Callable[..., Flask], free: int
) -> None:
    """Wait the base delay after the first failure with 0 or 1 free, wherever the counters are."""
    app = app_factory(throttle_free_failures=free, throttle_base_delay_seconds=60)
    add_user(app, "alice")
    with app.app_context():
        assert attempt("alice", WRONG) == "nope"
        assert attempt("alice", WRONG, at=NOW + timedelta(seconds=1)) == 59


def test_the_right_password_waits_too_and_then_clears_the_account(
    app_factory: Callable[..., Flask], hashes: HashCounter
) -> None:
    app = app_factory(throttle_free_failures=2, throttle_base_delay_seconds=60)
    add_user(app, "alice")
    with app.app_context():
        assert [attempt("alice", WRONG), attempt("alice", WRONG)] == ["nope", "nope"]
        hashed = hashes.calls
        assert attempt("alice", GOOD_PASSWORD, at=NOW + timedelta(seconds=30)) == 30
        assert attempt("alice", GOOD_PASSWORD, at=NOW + timedelta(seconds=59.5)) == 1
        assert hashes.calls == hashed
        assert wiring.operator().find("alice").last_login_at is None

        assert attempt("alice", GOOD_PASSWORD, at=NOW + timedelta(seconds=60)) == "yup"
        assert account("alice") not in counters(app)
        # The free failures are free again.
        later = NOW + timedelta(seconds=61)
        assert [attempt("alice", WRONG, at=later) for _ in range(3)] == ["nope", "nope", 60]


def test_an_account_is_refused_past_its_limit_until_the_window_ends(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(
        throttle_free_failures=1000,
        throttle_account_limit=3,
        throttle_account_window_seconds=3600,
    )
    add_user(app, "alice")
    minutes = [NOW + timedelta(minutes=m) for m in range(60)]
    with app.app_context():
        assert [attempt("alice", WRONG, at=minutes[m]) for m in (0, 1, 2)] == ["nope"] * 3
        assert attempt("alice", WRONG, at=minutes[10]) == 50 * 60
        assert attempt("alice", GOOD_PASSWORD, at=minutes[59] + timedelta(seconds=59)) == 1
        assert counters(app)[account("alice")] == 3

        # A new window starts from nothing.
        new_window = NOW + timedelta(hours=1)
        assert attempt("alice", WRONG, at=new_window) == "nope"
        assert counters(app)[account("alice")] == 1
        assert attempt("alice", GOOD_PASSWORD, at=new_window) == "yup"


def test_unknown_names_are_counted_exactly_like_existing_ones(
    app_factory: Callable[..., Flask], hashes: HashCounter
) -> None:
    app = app_factory(throttle_free_failures=2, throttle_max_delay_seconds=4)
    add_user(app, "alice")
    schedule = [0, 0, 0, 0.5, 1, 1, 2, 3, 3, 7]
    expected: list[Outcome] = ["nope", "nope", 1, 1, "nope", 2, 1, "nope", 4, "nope"]

    def run(name: str, address: str) -> tuple[list[Outcome], int]:
        before = hashes.calls
        outcomes = [
            attempt(name, WRONG, at=NOW + timedelta(seconds=s), address=address) for s in schedule
        ]
        return outcomes, hashes.calls - before

    with app.app_context():
        assert run("alice", HOME) == (expected, 5)
        assert run("ghost", ELSEWHERE) == (expected, 5)
    found = counters(app)
    assert found[account("alice")] == found[account("ghost")] == 5


# Per address


def test_one_address_is_refused_past_its_limit_across_names(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(throttle_address_limit=3)
    add_user(app, "alice")
    with app.app_context():
        assert [attempt(f"user{i}", WRONG) for i in range(3)] == ["nope"] * 3
        assert attempt("user3", WRONG) == 15 * 60
        assert attempt("alice", GOOD_PASSWORD, at=NOW + timedelta(minutes=5)) == 10 * 60
        # The same address written as IPv4-mapped IPv6 is the same client.
        assert attempt("user4", WRONG, address=f"::ffff:{HOME}") == 15 * 60
        assert attempt("user3", WRONG, address=ELSEWHERE) == "nope"
        assert attempt("alice", GOOD_PASSWORD, address=ELSEWHERE) == "yup"
        # A new window starts from nothing.
        assert attempt("user5", WRONG, at=NOW + timedelta(minutes=15)) == "nope"
    assert counters(app)[(ADDRESS, HOME)] == 1


def test_an_ipv6_slash_64_is_one_address(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(throttle_address_limit=3)
    with app.app_context():
        hosts = ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:abcd::3"]
        assert [attempt(f"user{i}", WRONG, address=a) for i, a in enumerate(hosts)] == ["nope"] * 3
        assert attempt("user3", WRONG, address="2001:db8:1:2:ffff:ffff:ffff:ffff") == 15 * 60
        assert attempt("user3", WRONG, address="2001:db8:1:3::1") == "nope"
    assert counters(app)[(ADDRESS, "2001:db8:1:2::/64")] == 3


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("::FFFF:c000:0207", "192.0.2.7"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        (None, "unknown"),
        ("", "unknown"),
        ("not an address", "not an address"),
        ("x" * 100, "x" * 64),
    ],
)
def test_address_key(address: str | None, key: str) -> None:
    assert address_key(address) == key


# Global


def test_the_global_limit_spares_browsers_with_a_device_cookie(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(throttle_global_limit=3)
    add_user(app, "alice")
    cookie = device_cookie(app, "alice")
    with app.app_context():
        addresses = [f"203.0.113.{i}" for i in range(1, 6)]
        assert [attempt(f"user{i}", WRONG, address=addresses[i]) for i in range(3)] == ["nope"] * 3
        assert attempt("user3", WRONG, address=addresses[3]) == 5 * 60
        assert attempt("alice", GOOD_PASSWORD, address=addresses[4]) == 5 * 60
        assert attempt("alice", WRONG, address=addresses[4], device=cookie) == "nope"
        assert attempt("alice", GOOD_PASSWORD, address=addresses[4], device=cookie) == "yup"
    assert counters(app)[(GLOBAL, "*")] == 3


# Device cookies


def test_the_owners_device_logs_in_while_the_account_is_throttled(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(throttle_free_failures=2, throttle_base_delay_seconds=600)
    add_user(app, "alice")
    add_user(app, "bob")
    owner = device_cookie(app, "alice")
    bobs = device_cookie(app, "bob")
    other_key = DeviceCookies("another secret", max_age=86400).sign("alice")
    payload_swapped = bobs.split(".", 1)[0] + "." + owner.split(".", 1)[1]
    expired = device_cookie_from(app, "alice", days_ago=181)
    still_valid = device_cookie_from(app, "alice", days_ago=179)
    assert wiring.get(app).settings.device_cookie_days == 180
    later = NOW + timedelta(seconds=1)
    with app.app_context():
        assert [attempt("alice", WRONG, address=ELSEWHERE) for _ in range(2)] == ["nope"] * 2
        assert attempt("alice", GOOD_PASSWORD, at=later) == 599
        for ignored in (bobs, payload_swapped, other_key, expired, "garbage", owner + "x"):
            assert attempt("alice", GOOD_PASSWORD, at=later, device=ignored) == 599, ignored
        assert attempt("alice", GOOD_PASSWORD, at=later, device=owner) == "yup"
        assert attempt("alice", GOOD_PASSWORD, at=later, device=still_valid) == "yup"
    # The attacker's failures stay on the account; the owner's login did not wipe them.
    assert counters(app)[account("alice")] == 2


def test_a_device_has_its_own_budget(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(throttle_free_failures=2, throttle_base_delay_seconds=600)
    add_user(app, "alice")
    cookie = device_cookie(app, "alice")
    device_id = wiring.get(app).devices.read(cookie, "alice")
    assert device_id
    with app.app_context():
        assert [attempt("alice", WRONG, device=cookie) for _ in range(2)] == ["nope"] * 2
        assert attempt("alice", GOOD_PASSWORD, device=cookie) == 600
        assert counters(app) == {(DEVICE, device_id): 2}
        # The account itself was never counted, so without the cookie the owner gets in.
        assert attempt("alice", GOOD_PASSWORD) == "yup"
        assert attempt("alice", GOOD_PASSWORD, at=NOW + timedelta(minutes=10), device=cookie) == (
            "yup"
        )
    assert (DEVICE, device_id) not in counters(app)


def test_strangers_who_spend_the_account_and_global_budgets_cannot_keep_the_owner_out(
    app_factory: Callable[..., Flask],
) -> None:
    """Let the owner's browser and program in, by their device values, after the issue's attack.

    The attack of the review: failures spread over one IPv6 /56, one /64 per attempt, make the
    account wait and spend the server's budget, which used to refuse every API login.
    """
    app = app_factory(
        throttle_free_failures=3, throttle_base_delay_seconds=600, throttle_global_limit=3
    )
    add_user(app, "alice")
    browser, program = Browser(app, HOME), Program(app, HOME)
    assert [browser.log_in("alice"), program.log_in("alice")] == ["yup", "yup"]
    attackers = [f"2001:db8:0:{net:x}::1" for net in range(1, 6)]
    assert [Program(app, attackers[i]).log_in("alice", WRONG) for i in range(3)] == ["nope"] * 3
    assert counters(app)[(GLOBAL, "*")] == 3
    # Anyone without a device value is refused: on alice by her wait, on anyone by the server's.
    stranger, elsewhere = Program(app, attackers[3]), Browser(app, attackers[4])
    assert 590 < waited(stranger.log_in("alice")) <= 600
    assert 290 < waited(elsewhere.log_in("bob", WRONG)) <= 300
    assert 590 < waited(Browser(app, ELSEWHERE).log_in("alice")) <= 600
    # The owner's browser and program are counted on their own devices, on neither budget.
    assert [browser.log_in("alice"), program.log_in("alice")] == ["yup", "yup"]
    assert [program.log_in("alice", WRONG), program.log_in("alice")] == ["nope", "yup"]
    found = counters(app)
    assert (found[(GLOBAL, "*")], found[account("alice")]) == (3, 3)
    assert not [key for key, count in found.items() if key[0] == DEVICE and count]


def test_the_accounts_thirty_day_limit_never_shuts_out_its_devices(
    app_factory: Callable[..., Flask],
) -> None:
    """Let the owner in by device after strangers spent the account's 100-a-month (here 3)."""
    app = app_factory(throttle_free_failures=1000, throttle_account_limit=3)
    assert wiring.get(app).settings.throttle_account_window_seconds == 30 * 86400
    add_user(app, "alice")
    browser, program = Browser(app, HOME), Program(app, HOME)
    assert [browser.log_in("alice"), program.log_in("alice")] == ["yup", "yup"]
    strangers = [Program(app, f"2001:db8:0:{net:x}::1") for net in range(1, 5)]
    assert [strangers[i].log_in("alice", WRONG) for i in range(3)] == ["nope"] * 3
    # The account is closed to everyone else for the rest of its thirty days.
    assert waited(strangers[3].log_in("alice")) > 29 * 86400
    assert waited(Browser(app, ELSEWHERE).log_in("alice")) > 29 * 86400
    assert [browser.log_in("alice"), program.log_in("alice")] == ["yup", "yup"]
    assert counters(app)[account("alice")] == 3


# Refunds


def test_success_gives_back_the_shared_attempt_and_clears_the_account(
    app: Flask,
) -> None:
    add_user(app, "alice")
    with app.app_context():
        assert attempt("ghost", WRONG) == "nope"
        assert attempt("alice", WRONG) == "nope"
        before = counters(app)
        assert before == {
            (ADDRESS, HOME): 2,
            (GLOBAL, "*"): 2,
            account("alice"): 1,
            account("ghost"): 1,
        }
        assert attempt("alice", GOOD_PASSWORD) == "yup"
    assert counters(app) == {(ADDRESS, HOME): 2, (GLOBAL, "*"): 2, account("ghost"): 1}


def test_an_attempt_that_gets_no_hashing_slot_is_given_back_everywhere(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(hash_concurrency=1, hash_wait_seconds=0.01)
    add_user(app, "alice")
    cookie = device_cookie(app, "alice")
    gate = wiring.get(app).hasher.gate
    with app.app_context():
        assert attempt("alice", WRONG) == "nope"
        assert attempt("alice", WRONG, device=cookie) == "nope"
        before = counters(app)
        assert len(before) == 4
        client = Client(address=HOME, user_agent="pytest")
        with gate.slot():
            for name, password, device in [
                ("alice", GOOD_PASSWORD, None),
                ("ghost", WRONG, None),
                ("alice", GOOD_PASSWORD, cookie),
            ]:
                with pytest.raises(Busy):
                    wiring.accounts().log_in(name, password, client, NOW, device_cookie=device)
                # A name never seen before may keep a row, but at zero.
                assert {key: n for key, n in counters(app).items() if n} == before
        assert attempt("alice", GOOD_PASSWORD) == "yup"


def test_an_attempt_that_gets_no_hashing_slot_leaves_no_wait_behind(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(
        hash_concurrency=1,
        hash_wait_seconds=0.01,
        throttle_free_failures=1,
        throttle_base_delay_seconds=600,
    )
    add_user(app, "alice")
    with app.app_context():
        with wiring.get(app).hasher.gate.slot(), pytest.raises(Busy):
            wiring.accounts().log_in("alice", GOOD_PASSWORD, Client(address=HOME), NOW)
        # Never checked, so not a failure: the retry must not wait.
        assert attempt("alice", GOOD_PASSWORD, at=NOW + timedelta(seconds=1)) == "yup"


# Sign-up


def test_every_sign_up_attempt_counts_against_the_address(
    app_factory: Callable[..., Flask], hashes: HashCounter
) -> None:
    app = app_factory(throttle_signup_limit=3)
    here, there = Client(address=HOME), Client(address=ELSEWHERE)
    with app.app_context():
        accounts = wiring.accounts()
        accounts.sign_up("carol", GOOD_PASSWORD, here, NOW)
        with pytest.raises(UsernameTaken):
            accounts.sign_up("carol", GOOD_PASSWORD, here, NOW)
        with pytest.raises(WeakPassword):
            accounts.sign_up("dave", "short", here, NOW)
        hashed = hashes.calls
        with pytest.raises(Throttled) as refused:
            accounts.sign_up("erin", GOOD_PASSWORD, here, NOW + timedelta(minutes=30))
        assert refused.value.retry_after == 30 * 60
        assert hashes.calls == hashed
        with pytest.raises(UnknownUser):
            wiring.operator().find("erin")
        assert accounts.sign_up("erin", GOOD_PASSWORD, there, NOW).username == "erin"
        assert accounts.sign_up("frank", GOOD_PASSWORD, here, NOW + timedelta(hours=1))
    assert counters(app)[(SIGNUP, HOME)] == 1


def test_a_throttled_sign_up_page_says_429_and_when(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(throttle_signup_limit=2)
    browser = app.test_client()
    form = {"username": "carol", "password": "short"}
    for _ in range(2):
        assert browser.post("/signup", data=form, headers=SAME_ORIGIN).status_code == 422
    refused = browser.post(
        "/signup", data={"username": "carol", "password": GOOD_PASSWORD}, headers=SAME_ORIGIN
    )
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "3600"
    assert "Too many attempts. Try again in 1 hour." in refused.get_data(as_text=True)
    assert refused.mimetype == "text/html"
    elsewhere = browser.post(
        "/signup",
        data={"username": "carol", "password": GOOD_PASSWORD},
        headers=SAME_ORIGIN,
        environ_base={"REMOTE_ADDR": ELSEWHERE},
    )
    assert elsewhere.status_code == 303
    assert elsewhere.headers["Location"] == "/yup"


# Atomic counting


def hit_at_once(app: Flask, times: int) -> int:
    """Hit one counter from ``times`` threads released together; return the count it reached."""
    barrier = threading.Barrier(times)

    def hit() -> None:
        with app.app_context():
            store = wiring.store()
            barrier.wait(timeout=30)
            with store.tx.write():
                store.counters.hit("test", "burst", NOW, NOW - timedelta(hours=1))

    with ThreadPoolExecutor(max_workers=times) as pool:
        for future in [pool.submit(hit) for _ in range(times)]:
            future.result(timeout=60)
    with app.app_context():
        row = counter_row("test", "burst")
        assert row is not None
        return row.count


def test_concurrent_hits_are_all_counted_on_sqlite(app: Flask) -> None:
    assert hit_at_once(app, 100) == 100


def test_concurrent_hits_are_all_counted_on_postgresql(
    app_factory: Callable[..., Flask], postgres_url: str
) -> None:
    app = app_factory(database_url=postgres_url)
    try:
        assert wiring.get(app).engine.dialect.name == "postgresql"
        assert hit_at_once(app, 100) == 100
    finally:
        wiring.get(app).engine.dispose()


# The operator


def test_users_unlock_lets_the_owner_in_at_once(
    app_factory: Callable[..., Flask], runner: CliRunner
) -> None:
    app = app_factory(
        throttle_free_failures=1,
        throttle_base_delay_seconds=3600,
        throttle_max_delay_seconds=3600,
    )
    add_user(app, "alice")
    browser = app.test_client()
    assert login(browser, "alice", WRONG).headers["Location"] == "/nope"
    throttled = login(browser, "alice")
    assert throttled.headers["Location"].startswith("/nope?wait=")
    assert int(throttled.headers["Retry-After"]) > 3500

    result = run_cli(runner, "users", "unlock", "ALICE")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Unlocked user 'alice'.\n"
    assert account("alice") not in counters(app)
    assert login(browser, "alice").headers["Location"] == "/yup"

    again = run_cli(runner, "users", "unlock", "alice")
    assert again.exit_code == 0
    assert again.stdout == "User 'alice' had no failed logins to clear.\n"


def test_users_unlock_of_an_unknown_user_is_one_line(runner: CliRunner, app: Flask) -> None:
    result = run_cli(runner, "users", "unlock", "nobody")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "Error: No user is named 'nobody'.\n"


# Housekeeping


def test_prune_deletes_what_ran_out_and_keeps_the_rest(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(audit_retention_days=30)
    add_user(app, "alice")
    hour, day = timedelta(hours=1), timedelta(days=1)
    settings = wiring.get(app).settings
    assert settings.session_idle_seconds == 12 * 3600
    assert settings.throttle_account_window_seconds == 30 * 86400  # the longest window
    sessions = {  # name: (last seen, absolute end)
        "fresh": (NOW - hour, NOW + day),
        "nearly-idle": (NOW - 12 * hour + timedelta(seconds=1), NOW + day),
        "idle": (NOW - 12 * hour - timedelta(seconds=1), NOW + day),
        "ended": (NOW - timedelta(minutes=1), NOW),
    }
    counter_rows = {  # key: (window start, blocked until)
        "recent": (NOW - 29 * day, None),
        "old": (NOW - 31 * day, None),
        "old-still-blocking": (NOW - 31 * day, NOW + hour),
        "old-was-blocking": (NOW - 31 * day, NOW - hour),
    }
    events = {"recent": NOW - 29 * day, "old": NOW - 31 * day}
    with app.app_context():
        store = wiring.store()
        alice = wiring.operator().find("alice")
        with store.tx.write():
            for name, (seen, ends) in sessions.items():
                store.sessions.add(
                    Session(
                        token_digest=tokens.digest(name),
                        user_id=alice.id,
                        created_at=NOW - 2 * day,
                        last_seen_at=seen,
                        expires_at=ends,
                    )
                )
            for key, (start, blocked) in counter_rows.items():
                store.counters.hit(ACCOUNT, key, start, start - day)
                if blocked is not None:
                    store.counters.block(ACCOUNT, key, blocked)
            for name, at in events.items():
                store.events.record(EventKind.LOGIN, at, Client(address=HOME), alice.id, name)

        assert wiring.prune(NOW) == Pruned(
            sessions=2,
            tokens=0,
            counters=2,
            logins=0,
            challenges=0,
            grants=0,
            keys=0,
            mail=0,
            events=1,
        )

    with app.app_context():
        session = wiring.orm_session()
        assert set(session.scalars(select(Session.token_digest))) == {
            tokens.digest("fresh"),
            tokens.digest("nearly-idle"),
        }
        assert set(session.scalars(select(ThrottleCounter.key))) == {
            "recent",
            "old-still-blocking",
        }
        logins = select(LoginEvent.username).where(LoginEvent.kind == EventKind.LOGIN.value)
        assert set(session.scalars(logins)) == {"recent"}


def events_of(app: Flask, kind: EventKind) -> int:
    """Return how many events of ``kind`` the log holds."""
    with app.app_context():
        return sum(1 for event in wiring.store().events.since() if event.kind == kind)


@pytest.mark.parametrize(
    ("name", "password"),
    [("bad\u0000name", GOOD_PASSWORD), ("alice", "x" * 10_000)],
    ids=["malformed name", "over-long password"],
)
def test_malformed_attempts_are_counted_before_they_are_logged(
    app_factory: Callable[..., Flask], name: str, password: str
) -> None:
    """Refuse a flood of malformed attempts like wrong ones: the log cannot grow past the limits.

    Before, such attempts were never counted and each wrote an event: about 1,000 rows a
    second from one client.
    """
    app = app_factory(throttle_address_limit=3)
    add_user(app, "alice")
    with app.app_context():
        outcomes = [attempt(name, password) for _ in range(50)]
    assert outcomes[:3] == ["nope"] * 3
    assert all(isinstance(outcome, int) for outcome in outcomes[3:])
    assert events_of(app, EventKind.LOGIN_FAILED) == 3
    assert events_of(app, EventKind.LOGIN_THROTTLED) == 1
    # Another address is not held back by this one's malformed attempts.
    with app.app_context():
        assert attempt("alice", GOOD_PASSWORD, address=ELSEWHERE) == "yup"


def test_repeated_refusals_make_one_row_per_counter_and_window(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(throttle_free_failures=1, throttle_base_delay_seconds=600)
    add_user(app, "alice")
    with app.app_context():
        assert attempt("alice", WRONG) == "nope"
        assert all(isinstance(attempt("alice", WRONG), int) for _ in range(40))
    assert events_of(app, EventKind.LOGIN_THROTTLED) == 1
    assert events_of(app, EventKind.LOGIN_FAILED) == 1


def test_repeated_sign_up_refusals_make_one_row(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(throttle_signup_limit=1)
    with app.app_context():
        accounts = wiring.accounts()
        client = Client(address=HOME, user_agent="pytest")
        accounts.sign_up("carol", GOOD_PASSWORD, client, NOW)
        for number in range(20):
            with pytest.raises(Throttled):
                accounts.sign_up(f"dave{number}", GOOD_PASSWORD, client, NOW)
    assert events_of(app, EventKind.SIGNUP_THROTTLED) == 1


def test_the_event_log_keeps_at_most_its_cap(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(audit_max_events=5)
    add_user(app, "alice")
    with app.app_context():
        for _ in range(9):
            attempt(f"nobody{_}", WRONG, address=f"192.0.2.{_ + 10}")
        written = sorted(event.id for event in wiring.store().events.since())
        assert len(written) == 10
        wiring.prune(NOW)
        # The newest written are kept, whatever the times they carry.
        assert sorted(event.id for event in wiring.store().events.since()) == written[-5:]
