"""Test the second factors' rules: an authenticator app, recovery codes, a login's second step.

Codes are computed by pyotp at chosen times, never waited for; each rule gets the time as a
parameter, as the web layer passes it the clock's. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from flask import Flask

from helpers import GOOD_PASSWORD, NOW, OPERATOR_CHANGES, add_user, change_as_operator, count_rows
from yupnope import wiring
from yupnope.accounts import SecondStepNeeded
from yupnope.client import Client
from yupnope.errors import (
    ChallengeGone,
    InvalidCredentials,
    SecondFactorExists,
    SecondFactorNeeded,
    Throttled,
    WrongCode,
    WrongPassword,
)
from yupnope.kinds import EventKind
from yupnope.models import LoginEvent, SecondFactor, Session, SessionKind, TotpFactor
from yupnope.security import codes
from yupnope.security.sealing import Sealer, Unsealable
from yupnope.sessions import LoginResult
from yupnope.snapshots import SessionSnapshot
from yupnope.sudo import WINDOW, Sudo

#: Run every app test here on SQLite and on PostgreSQL (see conftest.database_url).
BOTH_DATABASES = True

CLIENT = Client(address="192.0.2.7", user_agent="pytest")

#: A TOTP step: codes change every 30 seconds.
STEP = timedelta(seconds=30)

#: Failures of one account's codes before each further one waits (the default setting).
FREE = 5


def code_at(secret: str, when: Any) -> str:
    """Return the authenticator app's code at ``when``."""
    return pyotp.TOTP(secret).at(when)


def wrong_code(secret: str, when: Any) -> str:
    """Return six digits that are the app's code at no step near ``when``."""
    near = {code_at(secret, when + step * STEP) for step in (-1, 0, 1)}
    return next(c for c in (f"{n:06d}" for n in range(1000)) if c not in near)


def enrol(app: Flask, name: str = "alice", when: Any = NOW) -> tuple[str, list[str]]:
    """Set up an authenticator app for ``name`` at ``when``; return its secret and the codes."""
    with app.app_context():
        user = wiring.operator().find(name)
        apps = wiring.authenticator_apps()
        secret = apps.begin(user, when).secret
        made = apps.confirm(user, None, code_at(secret, when), CLIENT, when)
    return secret, made


def first_step(app: Flask, name: str = "alice", **kwargs: Any) -> SecondStepNeeded:
    """Log in with the right password at NOW; return the half-done login."""
    with app.app_context():
        done = wiring.accounts().log_in(
            name, GOOD_PASSWORD, CLIENT, kwargs.pop("when", NOW), **kwargs
        )
    assert isinstance(done, SecondStepNeeded)
    return done


def second_step(app: Flask, token: str, code: str, when: Any = NOW, **kwargs: Any) -> Any:
    """Complete a half-done login with ``code`` at ``when``."""
    with app.app_context():
        return wiring.second_step().complete(token, code, CLIENT, when, **kwargs)


def events_of(app: Flask, kind: EventKind) -> int:
    """Return how many events of ``kind`` the log holds."""
    return count_rows(app, LoginEvent, kind=kind.value)


@pytest.fixture
def alice(app: Flask) -> Flask:
    """Return an app with alice, who has no second factor yet."""
    add_user(app, "alice")
    return app


# The codes themselves.


def test_a_code_is_taken_one_step_either_side_and_no_further() -> None:
    secret = codes.new_totp_secret()
    totp = pyotp.TOTP(secret)
    current = totp.timecode(NOW)
    for offset in (-1, 0, 1):
        assert codes.totp_step(secret, totp.at(NOW + offset * STEP), NOW) == current + offset
    for offset in (-2, 2):
        typed = totp.at(NOW + offset * STEP)
        if typed not in {totp.at(NOW + near * STEP) for near in (-1, 0, 1)}:
            assert codes.totp_step(secret, typed, NOW) is None


def test_a_code_may_be_typed_with_spaces_but_is_six_ascii_digits() -> None:
    secret = codes.new_totp_secret()
    typed = code_at(secret, NOW)
    assert codes.totp_step(secret, f" {typed[:3]} {typed[3:]} ", NOW) is not None
    fullwidth = "".join(chr(ord(d) + 0xFF10 - 0x30) for d in typed)
    for bad in ("", typed[:5], typed + "0", fullwidth, "12345a", "١٢٣٤٥٦"):
        assert codes.totp_step(secret, bad, NOW) is None


def test_a_secret_has_160_bits_and_its_uri_names_the_account_and_issuer() -> None:
    secret = codes.new_totp_secret()
    assert len(secret) == 32 and len({codes.new_totp_secret() for _ in range(50)}) == 50
    uri = codes.totp_uri(secret, "Straße", "yupnope")
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert (parsed.secret, parsed.name, parsed.issuer) == (secret, "Straße", "yupnope")
    assert (parsed.digits, parsed.interval) == (6, 30)


def test_recovery_codes_are_ten_distinct_and_read_in_any_case_or_spacing() -> None:
    made = codes.new_recovery_codes()
    assert len(made) == len(set(made)) == 10
    for code in made:
        groups = code.split("-")
        assert [len(g) for g in groups] == [4, 4, 4, 4]
        assert set(code.replace("-", "")) <= set(codes.RECOVERY_ALPHABET)
    bare = made[0].replace("-", "")
    for typed in (made[0], made[0].lower(), f" {bare[:8]} {bare[8:]} ", bare):
        assert codes.recovery_code(typed) == bare
    for bad in ("", bare[:-1], bare + "A", bare[:-1] + "0", bare[:-1] + "I"):
        assert codes.recovery_code(bad) is None


def test_a_sealed_secret_opens_for_its_context_and_key_only() -> None:
    sealer = Sealer("a secret key", "yupnope totp secrets")
    sealed = sealer.seal("JBSWY3DPEHPK3PXP", "7")
    assert "JBSWY3DPEHPK3PXP" not in sealed and sealed.startswith("v1.")
    assert sealer.open(sealed, "7") == "JBSWY3DPEHPK3PXP"
    assert sealer.seal("JBSWY3DPEHPK3PXP", "7") != sealed  # a nonce of its own each time
    refused = [
        lambda: sealer.open(sealed, "8"),
        lambda: Sealer("another key", "yupnope totp secrets").open(sealed, "7"),
        lambda: Sealer("a secret key", "another purpose").open(sealed, "7"),
        lambda: sealer.open(sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1], "7"),
        lambda: sealer.open("v2." + sealed[3:], "7"),
        lambda: sealer.open("v1.not base64!", "7"),
    ]
    for attempt in refused:
        with pytest.raises(Unsealable):
            attempt()


# Enrolment.


def test_the_secret_is_sealed_at_rest_under_the_user(alice: Flask) -> None:
    with alice.app_context():
        user = wiring.operator().find("alice")
        secret = wiring.authenticator_apps().begin(user, NOW).secret
        stored = wiring.store().factors.totp(user.id)
        assert stored is not None and secret not in stored.sealed_secret
        assert wiring.get().sealer.open(stored.sealed_secret, str(user.id)) == secret
        with pytest.raises(Unsealable):
            wiring.get().sealer.open(stored.sealed_secret, str(user.id + 1))


def test_only_a_first_right_code_confirms_the_app(alice: Flask) -> None:
    with alice.app_context():
        user = wiring.operator().find("alice")
        apps = wiring.authenticator_apps()
        secret = apps.begin(user, NOW).secret
        assert apps.pending(user) is not None and not apps.enabled(user.id)
        # Unconfirmed, the app opens nothing: the login asks for the password alone.
        assert isinstance(
            wiring.accounts().log_in("alice", GOOD_PASSWORD, CLIENT, NOW), LoginResult
        )
        with pytest.raises(WrongCode):
            apps.confirm(user, None, wrong_code(secret, NOW), CLIENT, NOW)
        made = apps.confirm(user, None, code_at(secret, NOW), CLIENT, NOW)
        assert len(made) == 10 and apps.enabled(user.id) and apps.pending(user) is None
        assert apps.recovery.left(user.id) == 10
        with pytest.raises(SecondFactorExists):
            apps.begin(user, NOW)
    assert events_of(alice, EventKind.TOTP_ENABLED) == 1
    assert events_of(alice, EventKind.RECOVERY_CODES_MADE) == 1


def test_starting_again_replaces_the_secret_not_yet_confirmed(alice: Flask) -> None:
    with alice.app_context():
        user = wiring.operator().find("alice")
        apps = wiring.authenticator_apps()
        first = apps.begin(user, NOW).secret
        second = apps.begin(user, NOW + STEP).secret
        assert first != second
        with pytest.raises(WrongCode):
            apps.confirm(user, None, code_at(first, NOW + STEP), CLIENT, NOW + STEP)
        apps.confirm(user, None, code_at(second, NOW + STEP), CLIENT, NOW + STEP)


def test_the_code_that_confirmed_the_app_is_not_taken_again(alice: Flask) -> None:
    secret, _ = enrol(alice)
    challenge = first_step(alice).challenge
    with pytest.raises(InvalidCredentials):
        second_step(alice, challenge.token, code_at(secret, NOW))
    assert second_step(alice, challenge.token, code_at(secret, NOW + STEP), NOW + STEP)


def test_new_recovery_codes_replace_the_old_and_need_an_app(alice: Flask) -> None:
    _, old = enrol(alice)
    with alice.app_context():
        user = wiring.operator().find("alice")
        apps = wiring.authenticator_apps()
        new = apps.recovery.regenerate(user, CLIENT, NOW)
        assert not set(new) & set(old)
        apps.remove(user, CLIENT, NOW)
        assert apps.recovery.left(user.id) == 0
        with pytest.raises(SecondFactorNeeded):
            apps.recovery.regenerate(user, CLIENT, NOW)
        # With a passkey left the codes would stay (tests/test_passkeys.py); with none, they go.
    challenge = first_step_or_session(alice)
    assert challenge is None, "with the app removed, the password alone logs in"
    assert events_of(alice, EventKind.TOTP_REMOVED) == 1


def first_step_or_session(app: Flask) -> SecondStepNeeded | None:
    """Log alice in at NOW; return the half-done login, or None when it opened a session."""
    with app.app_context():
        done = wiring.accounts().log_in("alice", GOOD_PASSWORD, CLIENT, NOW)
    return done if isinstance(done, SecondStepNeeded) else None


# The login's second step.


def test_a_login_with_an_app_opens_no_session_before_its_code(alice: Flask) -> None:
    secret, _ = enrol(alice)
    before = count_rows(alice, Session)
    needed = first_step(alice)
    assert needed.challenge.expires_at == NOW + timedelta(minutes=5)
    assert count_rows(alice, Session) == before
    done = second_step(alice, needed.challenge.token, code_at(secret, NOW + STEP), NOW + STEP)
    assert done.session.record.second_factor == SecondFactor.TOTP
    assert done.session.record.second_factor == "totp"
    assert done.session.record.authenticated_at == NOW + STEP
    assert count_rows(alice, Session) == before + 1
    with alice.app_context():
        assert wiring.operator().find("alice").last_login_at == NOW + STEP
        found = wiring.sessions().find(done.session.token, NOW + STEP)
        assert found is not None and found[0].second_factor == "totp"


def test_a_code_is_good_once_on_every_worker(app_factory: Callable[..., Flask]) -> None:
    # Two apps on one database: two workers, or two instances, each with its own process state.
    one, other = app_factory(), app_factory()
    add_user(one, "alice")
    secret, _ = enrol(one)
    later = NOW + 2 * STEP
    code = code_at(secret, later)
    assert second_step(one, first_step(one).challenge.token, code, later)
    with pytest.raises(InvalidCredentials):
        second_step(other, first_step(other).challenge.token, code, later)
    # An earlier step's code, typed after a later one was taken, is refused too.
    with pytest.raises(InvalidCredentials):
        second_step(other, first_step(other).challenge.token, code_at(secret, later - STEP), later)
    assert events_of(one, EventKind.SECOND_FACTOR_FAILED) == 2


def test_a_recovery_code_is_good_once(alice: Flask) -> None:
    _, made = enrol(alice)
    done = second_step(alice, first_step(alice).challenge.token, made[3].lower())
    assert done.session.record.second_factor == SecondFactor.RECOVERY_CODE
    assert done.session.record.second_factor == "recovery_code"
    with pytest.raises(InvalidCredentials):
        second_step(alice, first_step(alice).challenge.token, made[3])
    with alice.app_context():
        assert wiring.authenticator_apps().recovery.left(wiring.operator().find("alice").id) == 9
    assert events_of(alice, EventKind.RECOVERY_CODE_USED) == 1


def test_a_recovery_code_used_twice_at_once_opens_one_session(alice: Flask) -> None:
    _, made = enrol(alice)
    tokens = [first_step(alice).challenge.token for _ in range(4)]
    barrier = threading.Barrier(len(tokens))

    def use(token: str) -> str:
        barrier.wait()
        try:
            second_step(alice, token, made[0])
        except InvalidCredentials:
            return "refused"
        return "opened"

    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        outcomes = sorted(pool.map(use, tokens))
    assert outcomes == ["opened"] + ["refused"] * 3


def test_a_half_done_login_lasts_five_minutes_and_serves_once(alice: Flask) -> None:
    secret, _ = enrol(alice)
    token = first_step(alice).challenge.token
    late = NOW + timedelta(minutes=5)
    with pytest.raises(ChallengeGone):
        second_step(alice, token, code_at(secret, late), late)
    token = first_step(alice).challenge.token
    second_step(alice, token, code_at(secret, NOW + STEP), NOW + STEP)
    for when in (NOW + 2 * STEP, NOW + 3 * STEP):
        with pytest.raises(ChallengeGone):
            second_step(alice, token, code_at(secret, when), when)
    with pytest.raises(ChallengeGone):
        second_step(alice, "", code_at(secret, NOW))


def test_a_half_done_login_completes_only_the_way_it_was_started(alice: Flask) -> None:
    secret, _ = enrol(alice)
    browser = first_step(alice).challenge.token
    api = first_step(alice, kind=SessionKind.API).challenge.token
    with pytest.raises(ChallengeGone):
        second_step(alice, browser, code_at(secret, NOW + STEP), NOW + STEP, kind=SessionKind.API)
    with pytest.raises(ChallengeGone):
        second_step(alice, api, code_at(secret, NOW + STEP), NOW + STEP)
    done = second_step(alice, api, code_at(secret, NOW + STEP), NOW + STEP, kind=SessionKind.API)
    assert done.session.record.kind == "api"


@pytest.mark.parametrize("change", OPERATOR_CHANGES)
def test_an_operator_change_ends_the_half_done_login(alice: Flask, change: str) -> None:
    secret, _ = enrol(alice)
    token = first_step(alice).challenge.token
    with alice.app_context():
        change_as_operator("alice", change)
    with pytest.raises(ChallengeGone):
        second_step(alice, token, code_at(secret, NOW + STEP), NOW + STEP)


# The throttle.


def test_a_parallel_burst_of_guesses_is_held_to_the_budget(alice: Flask) -> None:
    secret, _ = enrol(alice)
    token = first_step(alice).challenge.token
    wrong = wrong_code(secret, NOW)
    guesses = 12
    barrier = threading.Barrier(guesses)

    def guess(_: int) -> str:
        barrier.wait()
        try:
            second_step(alice, token, wrong)
        except InvalidCredentials:
            return "checked"
        except Throttled:
            return "throttled"
        return "opened"

    with ThreadPoolExecutor(max_workers=guesses) as pool:
        outcomes = list(pool.map(guess, range(guesses)))
    # The fifth failure sets a wait in the same atomic step as its count: no guess passes it.
    assert outcomes.count("checked") == FREE
    assert outcomes.count("throttled") == guesses - FREE
    assert events_of(alice, EventKind.SECOND_FACTOR_FAILED) == FREE
    # The refusals of one wait are one row in the log.
    assert events_of(alice, EventKind.SECOND_FACTOR_THROTTLED) == 1
    # Even the right code waits now: the budget is counted before the code is read.
    with pytest.raises(Throttled):
        second_step(alice, token, code_at(secret, NOW))


def test_a_stranger_with_the_password_cannot_lock_out_the_owner_device(alice: Flask) -> None:
    secret, _ = enrol(alice)
    owner = second_step(alice, first_step(alice).challenge.token, code_at(secret, NOW + STEP))
    device = owner.device
    later = NOW + 2 * STEP
    stranger = first_step(alice).challenge.token
    for _ in range(FREE):
        with pytest.raises(InvalidCredentials):
            second_step(alice, stranger, wrong_code(secret, later), later)
    with pytest.raises(Throttled):
        second_step(alice, stranger, code_at(secret, later), later)
    own = first_step(alice, device_cookie=device).challenge.token
    done = second_step(alice, own, code_at(secret, later), later, device_cookie=device)
    assert done.session.record.second_factor == SecondFactor.TOTP


def test_unlocking_an_account_clears_its_codes_wait(alice: Flask) -> None:
    secret, _ = enrol(alice)
    token = first_step(alice).challenge.token
    for _ in range(FREE):
        with pytest.raises(InvalidCredentials):
            second_step(alice, token, wrong_code(secret, NOW))
    with alice.app_context():
        assert wiring.operator().unlock(wiring.operator().find("alice"), NOW)
    assert second_step(alice, token, code_at(secret, NOW + STEP), NOW + STEP)


# Sudo mode and the operator.


def test_sudo_mode_lasts_ten_minutes_after_the_last_proof(alice: Flask) -> None:
    def session(proved: Any) -> SessionSnapshot:
        return SessionSnapshot(1, 1, "browser", NOW, NOW, NOW + WINDOW, None, proved)

    assert WINDOW == timedelta(minutes=10)
    assert Sudo.active(session(NOW), NOW + WINDOW - timedelta(seconds=1))
    assert not Sudo.active(session(NOW), NOW + WINDOW)
    assert not Sudo.active(session(None), NOW)
    assert not Sudo.active(None, NOW)
    with alice.app_context():
        started = wiring.sessions().start(wiring.operator().find("alice"), CLIENT, NOW)
        record, user = wiring.sessions().find(started.token, NOW + WINDOW) or (None, None)
        assert record is not None and user is not None
        assert not Sudo.active(record, NOW + WINDOW)
        sudo = wiring.accounts().sudo
        with pytest.raises(WrongPassword):
            sudo.enter(record, user, "not the password", CLIENT, NOW + WINDOW)
        sudo.enter(record, user, GOOD_PASSWORD, CLIENT, NOW + WINDOW)
        again = wiring.sessions().find(started.token, NOW + WINDOW)
        assert again is not None and Sudo.active(again[0], NOW + WINDOW)


def test_resetting_the_factors_removes_them_and_ends_every_session(alice: Flask) -> None:
    secret, _ = enrol(alice)
    second_step(alice, first_step(alice).challenge.token, code_at(secret, NOW + STEP))
    pending = first_step(alice).challenge.token
    with alice.app_context():
        operator = wiring.operator()
        user = operator.find("alice")
        assert operator.reset_second_factors(user, NOW)
        assert not operator.reset_second_factors(user, NOW)
        assert not wiring.authenticator_apps().enabled(user.id)
    assert count_rows(alice, Session) == 0
    assert count_rows(alice, TotpFactor) == 0
    with pytest.raises(ChallengeGone):
        second_step(alice, pending, code_at(secret, NOW + 2 * STEP), NOW + 2 * STEP)
    assert first_step_or_session(alice) is None
    assert events_of(alice, EventKind.ADMIN_SECOND_FACTORS_RESET) == 2
