"""Test the account rules directly: sign-up, authentication cost, password changes, import."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import argon2
import pytest
from flask import Flask
from sqlalchemy import event

from conftest import GOOD_PASSWORD, HashCounter
from yupnope import services, usernames
from yupnope.accounts import Accounts
from yupnope.client import Client
from yupnope.errors import (
    InvalidCredentials,
    InvalidUsername,
    SignupClosed,
    UnknownUser,
    UsernameTaken,
    WeakPassword,
)
from yupnope.models import EventKind
from yupnope.store import WRITE_OPTION

#: Run every app test here on SQLite and on PostgreSQL (see conftest.database_url).
BOTH_DATABASES = True

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CLIENT = Client(address="192.0.2.7", user_agent="pytest")


@pytest.fixture
def accounts(app: Flask) -> Iterator[Accounts]:
    with app.app_context():
        yield services.accounts()


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> HashCounter:
    return HashCounter(monkeypatch)


def test_sign_up_keeps_the_name_as_typed_and_folds_the_key(accounts: Accounts) -> None:
    user = accounts.sign_up("Ｄavid", GOOD_PASSWORD, CLIENT, NOW)
    assert user.username == "David"  # NFKC turns the full-width letter into a plain one
    assert user.username_key == "david"
    assert user.password_hash.startswith("$argon2id$")
    assert GOOD_PASSWORD not in user.password_hash


def test_names_equal_after_folding_are_one_account(accounts: Accounts) -> None:
    accounts.sign_up("Straße", GOOD_PASSWORD, CLIENT, NOW)
    for other in ("STRASSE", "strasse", "ＳＴＲＡＳＳＥ"):
        with pytest.raises(UsernameTaken):
            accounts.sign_up(other, GOOD_PASSWORD, CLIENT, NOW)


def test_sign_up_refuses_a_weak_password_before_hashing(
    accounts: Accounts, hashes: HashCounter
) -> None:
    cases = {
        "short": "too_short",
        "password1": "common",
        "Qwertyuiop": "common",
        "daniel-the-user": "same_as_name",
        "x" * 257: "too_long",
        "y" * 1_000_000: "too_long",
    }
    for password, reason in cases.items():
        with pytest.raises(WeakPassword) as caught:
            accounts.sign_up("daniel-the-user", password, CLIENT, NOW)
        assert caught.value.reason == reason
    assert hashes.calls == 0
    assert accounts.store.count_users() == 0


def test_sign_up_is_refused_when_closed(app_factory: Any) -> None:
    app = app_factory(SIGNUP_OPEN=False)
    with app.app_context():
        with pytest.raises(SignupClosed):
            services.accounts().sign_up("erin", GOOD_PASSWORD, CLIENT, NOW)
        services.accounts().add_user("erin", GOOD_PASSWORD, NOW)  # the operator still can


def test_authenticate_returns_the_user_and_records_the_login(accounts: Accounts) -> None:
    accounts.sign_up("alice", GOOD_PASSWORD, CLIENT, NOW)
    user = accounts.authenticate("ALICE", GOOD_PASSWORD, CLIENT, NOW + timedelta(minutes=1))
    assert user.username == "alice"
    assert user.last_login_at == NOW + timedelta(minutes=1)
    kinds = [event.kind for event in accounts.store.events_since(user_id=user.id)]
    assert kinds == [EventKind.SIGNUP, EventKind.LOGIN]


def test_password_is_normalised_before_hashing(accounts: Accounts) -> None:
    accounts.sign_up("alice", "ｃｏｒｒｅｃｔ horse battery", CLIENT, NOW)
    assert accounts.authenticate("alice", "correct horse battery", CLIENT, NOW)


@pytest.mark.parametrize("case", ["unknown name", "wrong password", "disabled account"])
def test_every_failed_login_costs_exactly_one_hash(
    accounts: Accounts, hashes: HashCounter, case: str
) -> None:
    accounts.add_user("alice", GOOD_PASSWORD, NOW)
    if case == "disabled account":
        accounts.set_disabled(accounts.find("alice"), True, NOW)
    name, password = {
        "unknown name": ("nobody", GOOD_PASSWORD),
        "wrong password": ("alice", "not the password"),
        "disabled account": ("alice", GOOD_PASSWORD),
    }[case]
    hashes.calls = 0
    with pytest.raises(InvalidCredentials) as caught:
        accounts.authenticate(name, password, CLIENT, NOW)
    assert hashes.calls == 1
    assert str(caught.value) == "The name or password is not right."
    failed = [e for e in accounts.store.events_since() if e.kind == EventKind.LOGIN_FAILED]
    assert len(failed) == 1 and failed[0].client_address == CLIENT.address


def test_a_successful_login_costs_one_hash_when_parameters_are_current(
    accounts: Accounts, hashes: HashCounter
) -> None:
    accounts.add_user("alice", GOOD_PASSWORD, NOW)
    hashes.calls = 0
    accounts.authenticate("alice", GOOD_PASSWORD, CLIENT, NOW)
    assert hashes.calls == 1


@pytest.mark.parametrize(
    ("username", "password"),
    [("", GOOD_PASSWORD), ("alice", ""), ("a" * 300, GOOD_PASSWORD), ("alice", "p" * 1_000_000)],
)
def test_malformed_logins_fail_without_hashing(
    accounts: Accounts, hashes: HashCounter, username: str, password: str
) -> None:
    accounts.add_user("alice", GOOD_PASSWORD, NOW)
    hashes.calls = 0
    with pytest.raises(InvalidCredentials):
        accounts.authenticate(username, password, CLIENT, NOW)
    assert hashes.calls == 0


def test_login_rehashes_when_the_parameters_changed(app_factory: Any) -> None:
    old = app_factory()
    with old.app_context():
        services.accounts().add_user("alice", GOOD_PASSWORD, NOW)
    new = app_factory(ARGON2_MEMORY_KIB=16, ARGON2_TIME_COST=2)
    with new.app_context():
        user = services.accounts().authenticate("alice", GOOD_PASSWORD, CLIENT, NOW)
        stored = services.store().user_by_id(user.id)
        assert stored is not None
        assert argon2.extract_parameters(stored.password_hash).memory_cost == 16
        assert argon2.extract_parameters(stored.password_hash).time_cost == 2
        assert services.accounts().authenticate("alice", GOOD_PASSWORD, CLIENT, NOW)


def test_login_with_a_password_that_fails_todays_policy_must_change_it(
    accounts: Accounts,
) -> None:
    entries = {usernames.parse("david"): "Baldy1", usernames.parse("kate"): "k8t"}
    report = accounts.import_users(entries, NOW, workers=2)
    assert sorted(report.must_change) == ["david", "kate"]
    david = accounts.authenticate("david", "Baldy1", CLIENT, NOW)
    assert david.must_change_password
    accounts.change_password(david, "Baldy1", GOOD_PASSWORD, CLIENT, NOW)
    again = accounts.authenticate("david", GOOD_PASSWORD, CLIENT, NOW)
    assert not again.must_change_password


def test_change_password_needs_the_current_one_and_a_good_new_one(accounts: Accounts) -> None:
    user = accounts.add_user("alice", GOOD_PASSWORD, NOW)
    with pytest.raises(InvalidCredentials):
        accounts.change_password(user, "wrong", "another good passphrase", CLIENT, NOW)
    with pytest.raises(WeakPassword):
        accounts.change_password(user, GOOD_PASSWORD, "letmein1", CLIENT, NOW)
    accounts.change_password(user, GOOD_PASSWORD, "another good passphrase", CLIENT, NOW)
    with pytest.raises(InvalidCredentials):
        accounts.authenticate("alice", GOOD_PASSWORD, CLIENT, NOW)
    assert accounts.authenticate("alice", "another good passphrase", CLIENT, NOW)


def test_import_skips_existing_names_and_writes_the_rest_at_once(accounts: Accounts) -> None:
    accounts.add_user("alice", GOOD_PASSWORD, NOW)
    entries = {usernames.parse(name): GOOD_PASSWORD for name in ("ALICE", "bob", "carol")}
    ticks: list[int] = []
    report = accounts.import_users(entries, NOW, workers=2, progress=ticks.append)
    assert report.skipped == ["ALICE"]
    assert sorted(report.added) == ["bob", "carol"]
    assert sum(ticks) == 3  # every entry, skipped ones included
    assert accounts.store.count_users() == 3


def test_find_is_case_blind_and_names_unknown_users(accounts: Accounts) -> None:
    accounts.add_user("alice", GOOD_PASSWORD, NOW)
    assert accounts.find("ALICE").username == "alice"
    with pytest.raises(UnknownUser, match="ghost"):
        accounts.find("ghost")


def test_delete_account_needs_the_password(accounts: Accounts) -> None:
    user = accounts.add_user("alice", GOOD_PASSWORD, NOW)
    with pytest.raises(InvalidCredentials):
        accounts.delete_account(user, "wrong", CLIENT, NOW)
    accounts.delete_account(user, GOOD_PASSWORD, CLIENT, NOW)
    assert accounts.store.user_by_key("alice") is None
    deleted = [e for e in accounts.store.events_since() if e.kind == EventKind.ACCOUNT_DELETED]
    assert deleted[0].user_id == user.id


def test_invalid_names_are_refused(accounts: Accounts) -> None:
    with pytest.raises(InvalidUsername):
        accounts.sign_up("bad\u200bname", GOOD_PASSWORD, CLIENT, NOW)


def test_the_event_log_never_holds_a_password(accounts: Accounts) -> None:
    accounts.add_user("alice", GOOD_PASSWORD, NOW)
    # A password typed into the name field, then the right and a wrong password.
    for name, password in [
        ("hunter2-secret", "x"),
        ("alice", "wrong-secret-guess"),
        ("alice", GOOD_PASSWORD),
    ]:
        try:
            accounts.authenticate(name, password, CLIENT, NOW)
        except InvalidCredentials:
            pass
    events = accounts.store.events_since()
    assert [e.username for e in events if e.kind == EventKind.LOGIN_FAILED] == [None, "alice"]
    text = repr([vars(e) for e in events])
    for secret in ("hunter2-secret", "wrong-secret-guess", GOOD_PASSWORD):
        assert secret not in text


def test_a_good_login_and_its_session_take_two_write_transactions(app: Flask) -> None:
    """Count the commits of a login: the throttle's count before the hash, then one for the rest.

    The throttle's success, the user's last login, the event and the new session are written
    together after the hash, so a login costs two commits however many rows it changes.
    """
    with app.app_context():
        accounts = services.accounts()
        accounts.add_user("alice", GOOD_PASSWORD, NOW)
        sessions = services.sessions()
        engine = app.extensions["yupnope.engine"]
        writes: list[bool] = []

        def began(connection: Any) -> None:
            writes.append(bool(connection.get_execution_options().get(WRITE_OPTION)))

        event.listen(engine, "begin", began)
        try:
            user, started = accounts.log_in(
                "alice", GOOD_PASSWORD, CLIENT, NOW, lambda u: sessions.start(u, CLIENT, NOW)
            )
        finally:
            event.remove(engine, "begin", began)
        assert writes.count(True) == 2
        assert services.store().count_sessions_of(user.id) == 1
        assert started.record.user_id == user.id
