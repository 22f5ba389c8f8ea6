"""Test the account rules directly: sign-up, authentication cost, password changes, import."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import argon2
import pytest
from flask import Flask
from sqlalchemy import event

from helpers import (
    GOOD_PASSWORD,
    NOW,
    OPERATOR_CHANGES,
    HashCounter,
    add_user,
    count_rows,
    count_sessions_of,
    count_users,
    operator_acts_during_hash_check,
    user_by_id,
)
from yupnope import usernames, wiring
from yupnope.accounts import Accounts
from yupnope.client import Client
from yupnope.db import WRITE_OPTION
from yupnope.errors import (
    AccountChanged,
    ImportFileError,
    InvalidCredentials,
    InvalidUsername,
    SignupClosed,
    UnknownUser,
    UsernameTaken,
    WeakPassword,
    WrongPassword,
)
from yupnope.imports import ImportEntry
from yupnope.kinds import EventKind
from yupnope.models import Session
from yupnope.operator import Operator

#: Run every app test here on SQLite and on PostgreSQL (see conftest.database_url).
BOTH_DATABASES = True

CLIENT = Client(address="192.0.2.7", user_agent="pytest")


@pytest.fixture
def accounts(app: Flask) -> Iterator[Accounts]:
    with app.app_context():
        yield wiring.accounts()


@pytest.fixture
def operator(accounts: Accounts) -> Operator:
    return Operator(accounts)


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
    app: Flask, accounts: Accounts, hashes: HashCounter
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
    assert count_users(app) == 0


def test_sign_up_is_refused_when_closed(app_factory: Any) -> None:
    app = app_factory(signup_open=False)
    with app.app_context():
        with pytest.raises(SignupClosed):
            wiring.accounts().sign_up("erin", GOOD_PASSWORD, CLIENT, NOW)
        wiring.operator().add_user("erin", GOOD_PASSWORD, NOW)  # the operator still can


def test_log_in_returns_the_user_and_records_the_login(accounts: Accounts) -> None:
    accounts.sign_up("alice", GOOD_PASSWORD, CLIENT, NOW)
    user = accounts.log_in("ALICE", GOOD_PASSWORD, CLIENT, NOW + timedelta(minutes=1)).user
    assert user.username == "alice"
    assert user.last_login_at == NOW + timedelta(minutes=1)
    kinds = [event.kind for event in accounts.store.events.since(user_id=user.id)]
    assert kinds == [EventKind.SIGNUP, EventKind.LOGIN]


def test_password_is_normalised_before_hashing(accounts: Accounts) -> None:
    accounts.sign_up("alice", "ｃｏｒｒｅｃｔ horse battery", CLIENT, NOW)
    assert accounts.log_in("alice", "correct horse battery", CLIENT, NOW)


@pytest.mark.parametrize("case", ["unknown name", "wrong password", "disabled account"])
def test_every_failed_login_costs_exactly_one_hash(
    accounts: Accounts, operator: Operator, hashes: HashCounter, case: str
) -> None:
    operator.add_user("alice", GOOD_PASSWORD, NOW)
    if case == "disabled account":
        operator.set_disabled(operator.find("alice"), True, NOW)
    name, password = {
        "unknown name": ("nobody", GOOD_PASSWORD),
        "wrong password": ("alice", "not the password"),
        "disabled account": ("alice", GOOD_PASSWORD),
    }[case]
    hashes.calls = 0
    with pytest.raises(InvalidCredentials) as caught:
        accounts.log_in(name, password, CLIENT, NOW)
    assert hashes.calls == 1
    assert str(caught.value) == "The name or password is not right."
    failed = [e for e in accounts.store.events.since() if e.kind == EventKind.LOGIN_FAILED]
    assert len(failed) == 1 and failed[0].client_address == CLIENT.address


def test_a_successful_login_costs_one_hash_when_parameters_are_current(
    accounts: Accounts, operator: Operator, hashes: HashCounter
) -> None:
    operator.add_user("alice", GOOD_PASSWORD, NOW)
    hashes.calls = 0
    accounts.log_in("alice", GOOD_PASSWORD, CLIENT, NOW)
    assert hashes.calls == 1


@pytest.mark.parametrize(
    ("username", "password"),
    [("", GOOD_PASSWORD), ("alice", ""), ("a" * 300, GOOD_PASSWORD), ("alice", "p" * 1_000_000)],
)
def test_malformed_logins_fail_without_hashing(
    accounts: Accounts, operator: Operator, hashes: HashCounter, username: str, password: str
) -> None:
    operator.add_user("alice", GOOD_PASSWORD, NOW)
    hashes.calls = 0
    with pytest.raises(InvalidCredentials):
        accounts.log_in(username, password, CLIENT, NOW)
    assert hashes.calls == 0


def test_login_rehashes_when_the_parameters_changed(app_factory: Any) -> None:
    old = app_factory()
    with old.app_context():
        wiring.operator().add_user("alice", GOOD_PASSWORD, NOW)
    new = app_factory(argon2_memory_kib=16, argon2_time_cost=2)
    with new.app_context():
        user = wiring.accounts().log_in("alice", GOOD_PASSWORD, CLIENT, NOW).user
        stored = user_by_id(user.id)
        assert stored is not None
        assert argon2.extract_parameters(stored.password_hash).memory_cost == 16
        assert argon2.extract_parameters(stored.password_hash).time_cost == 2
        assert wiring.accounts().log_in("alice", GOOD_PASSWORD, CLIENT, NOW)


def test_login_with_a_password_that_fails_todays_policy_must_change_it(
    accounts: Accounts, operator: Operator
) -> None:
    entries = {
        usernames.parse("david"): ImportEntry(password="Baldy1"),
        usernames.parse("kate"): ImportEntry(password="k8t"),
    }
    report = operator.import_users(entries, NOW, workers=2)
    assert sorted(report.must_change) == ["david", "kate"]
    david = accounts.log_in("david", "Baldy1", CLIENT, NOW).user
    assert david.must_change_password
    accounts.change_password(david, "Baldy1", GOOD_PASSWORD, CLIENT, NOW)
    again = accounts.log_in("david", GOOD_PASSWORD, CLIENT, NOW).user
    assert not again.must_change_password


def test_change_password_needs_the_current_one_and_a_good_new_one(
    accounts: Accounts, operator: Operator
) -> None:
    user = operator.add_user("alice", GOOD_PASSWORD, NOW)
    with pytest.raises(WrongPassword):
        accounts.change_password(user, "wrong", "another good passphrase", CLIENT, NOW)
    with pytest.raises(WeakPassword):
        accounts.change_password(user, GOOD_PASSWORD, "letmein1", CLIENT, NOW)
    accounts.change_password(user, GOOD_PASSWORD, "another good passphrase", CLIENT, NOW)
    with pytest.raises(InvalidCredentials):
        accounts.log_in("alice", GOOD_PASSWORD, CLIENT, NOW)
    assert accounts.log_in("alice", "another good passphrase", CLIENT, NOW)


def test_import_skips_existing_names_and_writes_the_rest_at_once(
    app: Flask, operator: Operator
) -> None:
    operator.add_user("alice", GOOD_PASSWORD, NOW)
    entries = {
        usernames.parse(name): ImportEntry(password=GOOD_PASSWORD)
        for name in ("ALICE", "bob", "carol")
    }
    ticks: list[int] = []
    report = operator.import_users(entries, NOW, workers=2, progress=ticks.append)
    assert report.skipped == ["ALICE"]
    assert sorted(report.added) == ["bob", "carol"]
    assert sum(ticks) == 3  # every entry, skipped ones included
    assert count_users(app) == 3


def test_find_is_case_blind_and_names_unknown_users(operator: Operator) -> None:
    operator.add_user("alice", GOOD_PASSWORD, NOW)
    assert operator.find("ALICE").username == "alice"
    with pytest.raises(UnknownUser, match="ghost"):
        operator.find("ghost")


def test_delete_account_needs_the_password(accounts: Accounts, operator: Operator) -> None:
    user = operator.add_user("alice", GOOD_PASSWORD, NOW)
    with pytest.raises(WrongPassword):
        accounts.delete_account(user, "wrong", CLIENT, NOW)
    accounts.delete_account(user, GOOD_PASSWORD, CLIENT, NOW)
    assert accounts.store.users.by_key("alice") is None
    deleted = [e for e in accounts.store.events.since() if e.kind == EventKind.ACCOUNT_DELETED]
    assert deleted[0].user_id == user.id


def test_invalid_names_are_refused(accounts: Accounts) -> None:
    with pytest.raises(InvalidUsername):
        accounts.sign_up("bad\u200bname", GOOD_PASSWORD, CLIENT, NOW)


def test_the_event_log_never_holds_a_password(accounts: Accounts, operator: Operator) -> None:
    operator.add_user("alice", GOOD_PASSWORD, NOW)
    # A password typed into the name field, then the right and a wrong password.
    for name, password in [
        ("hunter2-secret", "x"),
        ("alice", "wrong-secret-guess"),
        ("alice", GOOD_PASSWORD),
    ]:
        try:
            accounts.log_in(name, password, CLIENT, NOW)
        except InvalidCredentials:
            pass
    events = accounts.store.events.since()
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
        accounts = wiring.accounts()
        wiring.operator().add_user("alice", GOOD_PASSWORD, NOW)
        engine = wiring.get(app).engine
        writes: list[bool] = []

        def began(connection: Any) -> None:
            writes.append(bool(connection.get_execution_options().get(WRITE_OPTION)))

        event.listen(engine, "begin", began)
        try:
            result = accounts.log_in("alice", GOOD_PASSWORD, CLIENT, NOW)
        finally:
            event.remove(engine, "begin", began)
        assert writes.count(True) == 2
        assert count_sessions_of(app, result.user.id) == 1
        assert result.session.record.user_id == result.user.id


@pytest.mark.parametrize("change", OPERATOR_CHANGES)
def test_an_operator_change_during_the_hash_wins_over_the_login(
    app: Flask, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    add_user(app, "alice")
    operator_acts_during_hash_check(monkeypatch, app, "alice", change)
    with app.app_context(), pytest.raises(InvalidCredentials):
        wiring.accounts().log_in("alice", GOOD_PASSWORD, CLIENT, NOW)
    assert count_rows(app, Session) == 0
    with app.app_context():
        kinds = [event.kind for event in wiring.store().events.since()]
    assert EventKind.LOGIN_FAILED in kinds
    assert EventKind.LOGIN not in kinds


@pytest.mark.parametrize("change", OPERATOR_CHANGES)
def test_an_operator_change_during_a_password_change_wins(
    app: Flask, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """Refuse the owner's new password when the operator acted after its check (finding 2)."""
    add_user(app, "alice")
    with app.app_context():
        user = wiring.operator().find("alice")
        operator_acts_during_hash_check(monkeypatch, app, "alice", change)
        with pytest.raises(AccountChanged):
            wiring.accounts().change_password(
                user, GOOD_PASSWORD, "an attacker's new passphrase", CLIENT, NOW
            )
    with app.app_context():
        after = wiring.store().users.by_key("alice")
        hasher = wiring.get(app).hasher
        if change == "remove":
            assert after is None
        else:
            assert after is not None
            assert not hasher.verify(after.password_hash, "an attacker's new passphrase")
            assert after.disabled == (change == "disable")
        kinds = [event.kind for event in wiring.store().events.since()]
    assert EventKind.PASSWORD_CHANGED not in kinds


def test_an_operator_change_during_an_account_deletion_wins(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user(app, "alice")
    with app.app_context():
        user = wiring.operator().find("alice")
        operator_acts_during_hash_check(monkeypatch, app, "alice", "set-password")
        with pytest.raises(AccountChanged):
            wiring.accounts().delete_account(user, GOOD_PASSWORD, CLIENT, NOW)
        assert wiring.store().users.by_key("alice") is not None


def test_a_hash_of_older_parameters_costs_what_an_unknown_name_costs(
    app_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pad a verify against a hash made with cheaper parameters to today's cost.

    Before, after the argon2 settings grew, existing names answered faster than unknown ones
    until their next login: enumeration by timing. Costs are counted as argon2 counts them
    (memory times passes), never timed.
    """
    old = app_factory()
    with old.app_context():
        wiring.operator().add_user("alice", GOOD_PASSWORD, NOW)
    memory, passes = 64, 3
    new = app_factory(argon2_memory_kib=memory, argon2_time_cost=passes)
    spent: list[int] = []
    verify = argon2.PasswordHasher.verify

    def counting(self: argon2.PasswordHasher, encoded: str, password: str) -> bool:
        found = argon2.extract_parameters(encoded)
        spent.append(found.memory_cost * found.time_cost)
        return verify(self, encoded, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", counting)

    def cost_of_a_wrong_password(name: str) -> int:
        spent.clear()
        with new.app_context(), pytest.raises(InvalidCredentials):
            wiring.accounts().log_in(name, "not the password at all", CLIENT, NOW)
        return sum(spent)

    unknown = cost_of_a_wrong_password("nobody")
    assert unknown == memory * passes
    assert abs(cost_of_a_wrong_password("alice") - unknown) <= memory // 2


# Look-alike names (UTS #39): taken like the name they look like, however they arrive.

#: The names from the outside review, each beside the account it looked like.
LOOK_ALIKES = [
    ("i\u0307nci", "inci"),  # i + combining dot above
    ("al\u0131\u0307ce", "alice"),  # dotless ı + combining dot above
    ("İnci", "inci"),  # Turkish capital İ: its fold is i + combining dot above
    ("\u0441\u043e\u0440\u0435", "cope"),  # all Cyrillic
]


@pytest.mark.parametrize(("look_alike", "taken"), LOOK_ALIKES)
def test_a_name_that_looks_like_a_taken_one_is_taken(
    app: Flask, accounts: Accounts, operator: Operator, look_alike: str, taken: str
) -> None:
    user = accounts.sign_up(taken, GOOD_PASSWORD, CLIENT, NOW)
    with pytest.raises(UsernameTaken, match="is taken"):
        accounts.sign_up(look_alike, GOOD_PASSWORD, CLIENT, NOW)
    with pytest.raises(UsernameTaken):
        operator.add_user(look_alike, GOOD_PASSWORD, NOW)
    with pytest.raises(UsernameTaken):
        operator.free_name(look_alike)
    assert count_users(app) == 1
    assert user.username_skeleton == usernames.parse(look_alike).skeleton


@pytest.mark.parametrize(("look_alike", "taken"), LOOK_ALIKES)
def test_the_look_alike_first_takes_the_plain_name(
    app: Flask, accounts: Accounts, look_alike: str, taken: str
) -> None:
    accounts.sign_up(look_alike, GOOD_PASSWORD, CLIENT, NOW)
    with pytest.raises(UsernameTaken):
        accounts.sign_up(taken, GOOD_PASSWORD, CLIENT, NOW)
    assert count_users(app) == 1


def test_a_name_mixing_scripts_is_refused_and_logs_in_as_no_one(
    app: Flask, accounts: Accounts
) -> None:
    accounts.sign_up("alice", GOOD_PASSWORD, CLIENT, NOW)
    with pytest.raises(InvalidUsername, match=r"several scripts \(Cyrillic and Latin\)"):
        accounts.sign_up("\u0430lice", GOOD_PASSWORD, CLIENT, NOW)
    with pytest.raises(InvalidCredentials):
        accounts.log_in("\u0430lice", GOOD_PASSWORD, CLIENT, NOW)
    assert count_users(app) == 1


def add_user_during_the_next_hash(app: Flask, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make the next argon2 hash first add ``name``: it commits between a check and an insert."""
    hash_ = argon2.PasswordHasher.hash

    def hash_after_adding(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(argon2.PasswordHasher, "hash", hash_)
        add_user(app, name)
        return hash_(*args, **kwargs)

    monkeypatch.setattr(argon2.PasswordHasher, "hash", hash_after_adding)


def test_a_look_alike_signed_up_during_the_hash_makes_the_name_taken(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The skeleton's unique index settles a race the check before the hash cannot see."""
    add_user_during_the_next_hash(app, monkeypatch, "inci")
    with app.app_context(), pytest.raises(UsernameTaken):
        wiring.accounts().sign_up("i\u0307nci", GOOD_PASSWORD, CLIENT, NOW)
    assert count_users(app) == 1


def test_import_skips_names_that_look_like_existing_ones(app: Flask, operator: Operator) -> None:
    operator.add_user("inci", GOOD_PASSWORD, NOW)
    entries = {
        usernames.parse(name): ImportEntry(password=GOOD_PASSWORD)
        for name in ("i\u0307nci", "İnci", "bob")
    }
    report = operator.import_users(entries, NOW, workers=1)
    assert sorted(report.skipped) == sorted(["i\u0307nci", "İnci"])
    assert report.added == ["bob"]
    assert count_users(app) == 2


def test_an_import_racing_a_look_alike_sign_up_imports_nothing(
    app: Flask, operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user_during_the_next_hash(app, monkeypatch, "İnci")
    entries = {
        usernames.parse(name): ImportEntry(password=GOOD_PASSWORD) for name in ("inci", "bob")
    }
    with pytest.raises(ImportFileError, match="of this file meanwhile"):
        operator.import_users(entries, NOW, workers=1)
    assert count_users(app) == 1
