"""Test the passkeys' rules on the real database, SQLite and PostgreSQL, with real signatures.

The answers come from tests/authenticator.py (a P-256 key, CBOR, the JSON a browser posts)
and are checked by py_webauthn as a browser's are. What the browser adds, the pages and the
script, is tested in Chromium by test_passkeys_browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from authenticator import SoftAuthenticator, b64url
from helpers import GOOD_PASSWORD, add_user, counter_row
from yupnope import wiring
from yupnope.accounts import SecondStepNeeded
from yupnope.client import Client
from yupnope.errors import (
    ChallengeGone,
    InvalidCredentials,
    InvalidPasskeyName,
    PasskeyRefused,
    SecondFactorNeeded,
    Throttled,
)
from yupnope.kinds import EventKind
from yupnope.models import Passkey, SecondFactor, Session, SessionKind
from yupnope.second_factors.assertions import Answer
from yupnope.second_factors.ceremonies import RelyingParty
from yupnope.snapshots import SessionSnapshot, UserSnapshot
from yupnope.sudo import Sudo
from yupnope.throttle.policy import CEREMONIES_PER_ADDRESS, SECOND_FACTOR, account_key

BOTH_DATABASES = True

ORIGIN = "https://login.example.com"
PARTY = RelyingParty.of(ORIGIN, "http://ignored.example")
CLIENT = Client.of("192.0.2.7", "test")
BROWSER = "a-browser-token"


@dataclass
class Signed:
    """A user signed in with a browser session, in an app context."""

    user: UserSnapshot
    session: SessionSnapshot
    token: str

    def refresh(self) -> Signed:
        """Read the session and user again, as the next request would."""
        found = wiring.sessions().find(self.token, datetime.now(UTC))
        assert found is not None
        return Signed(found[1], found[0], self.token)


@pytest.fixture
def ada(app: Flask) -> Iterator[Signed]:
    """Return ada, signed in (in sudo mode: she just logged in), inside an app context."""
    add_user(app, "ada")
    with app.app_context():
        user = wiring.operator().find("ada")
        started = wiring.sessions().start(user, CLIENT, datetime.now(UTC))
        yield Signed(None, None, started.token).refresh()  # type: ignore[arg-type]


def enrol(signed: Signed, authenticator: SoftAuthenticator, name: str = "Laptop") -> Passkey:
    """Register ``authenticator``'s credential for the signed-in user."""
    now = datetime.now(UTC)
    passkeys = wiring.passkeys()
    options = passkeys.registration_options(PARTY, signed.user, signed.session, now)
    return passkeys.register(
        PARTY, signed.user, signed.session, name, authenticator.register(options), CLIENT, now
    )


def passwordless(authenticator: SoftAuthenticator, browser: str = BROWSER) -> str:
    """Return an answer to a new passwordless login's options for ``browser``."""
    options = wiring.passkey_logins().login_options(PARTY, browser, CLIENT, datetime.now(UTC))
    return authenticator.assert_(options)


def log_in(credential: str, browser: str = BROWSER) -> object:
    """Log in without a password with ``credential``."""
    return wiring.passkey_logins().log_in(
        Answer(PARTY, credential), browser, CLIENT, datetime.now(UTC)
    )


def events() -> list[str]:
    """Return the kinds of every event logged, oldest first."""
    return [event.kind for event, _ in wiring.operator().events(None, None)]


# Registration


def test_registration_asks_for_a_discoverable_passkey_with_its_user_verified(
    ada: Signed,
) -> None:
    options = wiring.passkeys().registration_options(
        PARTY, ada.user, ada.session, datetime.now(UTC)
    )
    assert '"residentKey": "required"' in options
    assert '"userVerification": "required"' in options
    assert '"id": "login.example.com"' in options
    assert b64url(str(ada.user.id).encode()) not in options


def test_a_registered_passkey_is_listed_and_makes_the_session_a_passkeys(ada: Signed) -> None:
    made = enrol(ada, SoftAuthenticator(ORIGIN, synced=True), "  My laptop  ")
    [found] = wiring.passkeys().of_user(ada.user.id)
    assert (found.id, found.name, found.backed_up, found.transports) == (
        made.id,
        "My laptop",
        True,
        "internal",
    )
    assert ada.refresh().session.second_factor == SecondFactor.PASSKEY.value
    assert events()[-1] == EventKind.PASSKEY_ADDED


def test_the_users_passkeys_share_one_random_user_handle(ada: Signed) -> None:
    first, second = SoftAuthenticator(ORIGIN), SoftAuthenticator(ORIGIN)
    enrol(ada, first)
    enrol(ada, second, "Phone")
    assert first.user_handle == second.user_handle
    assert len(first.user_handle) == 32


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, "tab\there", "bidi\u202eoverride"])
def test_a_passkeys_name_is_checked(ada: Signed, name: str) -> None:
    with pytest.raises(InvalidPasskeyName):
        enrol(ada, SoftAuthenticator(ORIGIN), name)
    assert wiring.passkeys().of_user(ada.user.id) == []


def test_registration_refuses_another_origin_an_unverified_user_and_a_used_challenge(
    ada: Signed,
) -> None:
    with pytest.raises(PasskeyRefused):
        enrol(ada, SoftAuthenticator("https://login.example.com.evil.example"))
    with pytest.raises(PasskeyRefused):
        enrol(ada, SoftAuthenticator(ORIGIN, verifies_user=False))
    now = datetime.now(UTC)
    passkeys = wiring.passkeys()
    options = passkeys.registration_options(PARTY, ada.user, ada.session, now)
    answer = SoftAuthenticator(ORIGIN).register(options)
    passkeys.register(PARTY, ada.user, ada.session, "One", answer, CLIENT, now)
    with pytest.raises(PasskeyRefused):
        passkeys.register(PARTY, ada.user, ada.session, "Two", answer, CLIENT, now)
    assert len(passkeys.of_user(ada.user.id)) == 1


def test_a_registration_is_bound_to_the_session_that_asked(ada: Signed, app: Flask) -> None:
    now = datetime.now(UTC)
    options = wiring.passkeys().registration_options(PARTY, ada.user, ada.session, now)
    other = wiring.sessions().start(wiring.operator().find("ada"), CLIENT, now)
    elsewhere = Signed(ada.user, ada.session, other.token).refresh()
    with pytest.raises(PasskeyRefused):
        wiring.passkeys().register(
            PARTY,
            elsewhere.user,
            elsewhere.session,
            "Stolen",
            SoftAuthenticator(ORIGIN).register(options),
            CLIENT,
            now,
        )


# Logging in without a password


def test_a_passkey_logs_in_without_a_password(ada: Signed) -> None:
    key = SoftAuthenticator(ORIGIN)
    enrol(ada, key)
    done = log_in(passwordless(key))
    assert done.session.record.second_factor == SecondFactor.PASSKEY
    assert done.session.record.second_factor == "passkey"  # type: ignore[attr-defined]
    assert events()[-2:] == [EventKind.PASSKEY_USED, EventKind.LOGIN]
    [found] = wiring.passkeys().of_user(ada.user.id)
    assert found.sign_count == key.counter
    assert found.last_used_at is not None


def test_an_answer_is_good_once(ada: Signed) -> None:
    key = SoftAuthenticator(ORIGIN)
    enrol(ada, key)
    answer = passwordless(key)
    log_in(answer)
    with pytest.raises(PasskeyRefused):
        log_in(answer)


def test_an_answer_counts_only_for_the_browser_that_asked(ada: Signed) -> None:
    key = SoftAuthenticator(ORIGIN)
    enrol(ada, key)
    answer = passwordless(key, browser="mine")
    with pytest.raises(PasskeyRefused):
        log_in(answer, browser="someone-else's")
    log_in(answer, browser="mine")


def test_a_challenge_past_its_lifetime_is_refused(ada: Signed) -> None:
    key = SoftAuthenticator(ORIGIN)
    enrol(ada, key)
    answer = passwordless(key)
    with pytest.raises(PasskeyRefused):
        wiring.passkey_logins().log_in(
            Answer(PARTY, answer), BROWSER, CLIENT, datetime.now(UTC) + timedelta(minutes=6)
        )


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "http://login.example.com", "https://login.example.com:8443"]
)
def test_an_answer_made_at_another_origin_is_refused(ada: Signed, origin: str) -> None:
    key = SoftAuthenticator(ORIGIN)
    enrol(ada, key)
    key.origin = origin
    with pytest.raises(PasskeyRefused):
        log_in(passwordless(key))
    assert events()[-1] == EventKind.PASSKEY_FAILED


def test_challenges_for_logins_without_a_password_are_counted_per_address(
    ada: Signed,
) -> None:
    logins = wiring.passkey_logins()
    now = datetime.now(UTC)
    for _ in range(CEREMONIES_PER_ADDRESS.count):
        logins.login_options(PARTY, BROWSER, CLIENT, now)
    with pytest.raises(Throttled) as refused:
        logins.login_options(PARTY, BROWSER, CLIENT, now)
    assert 0 < refused.value.retry_after <= CEREMONIES_PER_ADDRESS.window.total_seconds()
    # Another address is not refused, and the refused one is again once its window is over.
    logins.login_options(PARTY, BROWSER, Client.of("198.51.100.9", "test"), now)
    later = now + CEREMONIES_PER_ADDRESS.window
    logins.login_options(PARTY, BROWSER, CLIENT, later)


def test_an_answer_for_another_rp_id_is_refused(ada: Signed) -> None:
    key = SoftAuthenticator(ORIGIN)
    enrol(ada, key)
    options = wiring.passkey_logins().login_options(PARTY, BROWSER, CLIENT, datetime.now(UTC))
    with pytest.raises(PasskeyRefused):
        log_in(key.assert_(options, rp_id="example.com"))


def test_a_login_without_a_password_needs_the_user_verified(ada: Signed) -> None:
    key = SoftAuthenticator(ORIGIN)
    enrol(ada, key)
    key.verifies_user = False
    with pytest.raises(PasskeyRefused):
        log_in(passwordless(key))


def test_a_forged_signature_is_refused(ada: Signed) -> None:
    key = SoftAuthenticator(ORIGIN)
    enrol(ada, key)
    forger = SoftAuthenticator(ORIGIN, credential_id=key.credential_id)
    forger.user_handle = key.user_handle
    with pytest.raises(PasskeyRefused):
        log_in(passwordless(forger))
    assert events()[-1] == EventKind.PASSKEY_FAILED


def test_a_counter_that_goes_back_is_refused_and_reported(ada: Signed) -> None:
    key = SoftAuthenticator(ORIGIN, counter=10)
    enrol(ada, key)
    log_in(passwordless(key))
    clone = SoftAuthenticator(
        ORIGIN, counter=3, credential_id=key.credential_id, key=key.key, user_handle=key.user_handle
    )
    with pytest.raises(PasskeyRefused):
        log_in(passwordless(clone))
    assert events()[-2:] == [EventKind.PASSKEY_FAILED, EventKind.PASSKEY_CLONE_SUSPECTED]
    [found] = wiring.passkeys().of_user(ada.user.id)
    assert found.sign_count == 11
    # A counter that stays put is no better than one that goes back.
    clone.counter = 10
    with pytest.raises(PasskeyRefused):
        log_in(passwordless(clone))


def test_an_authenticator_without_a_counter_is_accepted_every_time(ada: Signed) -> None:
    key = SoftAuthenticator(ORIGIN, step=0)
    enrol(ada, key)
    log_in(passwordless(key))
    log_in(passwordless(key))
    [found] = wiring.passkeys().of_user(ada.user.id)
    assert found.sign_count == 0


def test_a_removed_passkey_no_longer_logs_in(ada: Signed) -> None:
    key = SoftAuthenticator(ORIGIN)
    made = enrol(ada, key)
    assert wiring.passkeys().remove(ada.user, made.id, CLIENT, datetime.now(UTC))
    assert events()[-1] == EventKind.PASSKEY_REMOVED
    with pytest.raises(PasskeyRefused):
        log_in(passwordless(key))


# The second step, and sudo mode


def test_an_account_with_passkeys_alone_takes_a_second_step(ada: Signed) -> None:
    key = SoftAuthenticator(ORIGIN)
    enrol(ada, key)
    # The second step after a password asks for presence; verification is only preferred.
    key.verifies_user = False
    first = wiring.accounts().log_in("ada", GOOD_PASSWORD, CLIENT, datetime.now(UTC))
    assert isinstance(first, SecondStepNeeded)
    step = wiring.second_step()
    now = datetime.now(UTC)
    offered = step.offered(first.challenge.token, now)
    assert (offered.totp, offered.passkeys) == (False, True)
    options = step.passkey_options(PARTY, first.challenge.token, now)
    assert key.credential_id and b64url(key.credential_id) in options
    done = step.complete(first.challenge.token, Answer(PARTY, key.assert_(options)), CLIENT, now)
    assert done.session.record.second_factor == SecondFactor.PASSKEY
    assert events()[-2:] == [EventKind.PASSKEY_USED, EventKind.LOGIN]
    with pytest.raises(ChallengeGone):
        step.passkey_options(PARTY, first.challenge.token, now)


def test_recovery_codes_stand_in_for_lost_passkeys_and_go_with_the_last(ada: Signed) -> None:
    codes = wiring.authenticator_apps().recovery
    with pytest.raises(SecondFactorNeeded):
        codes.regenerate(ada.user, CLIENT, datetime.now(UTC))
    made = enrol(ada, SoftAuthenticator(ORIGIN))
    spare = enrol(ada, SoftAuthenticator(ORIGIN), "Phone")
    recovery = codes.regenerate(ada.user, CLIENT, datetime.now(UTC))
    first = wiring.accounts().log_in("ada", GOOD_PASSWORD, CLIENT, datetime.now(UTC))
    assert isinstance(first, SecondStepNeeded)
    step = wiring.second_step()
    now = datetime.now(UTC)
    offered = step.offered(first.challenge.token, now)
    assert (offered.totp, offered.passkeys, offered.recovery_codes) == (False, True, True)
    done = step.complete(first.challenge.token, recovery[0], CLIENT, now)
    assert done.session.record.second_factor == SecondFactor.RECOVERY_CODE
    passkeys = wiring.passkeys()
    assert passkeys.remove(ada.user, made.id, CLIENT, now)
    assert codes.left(ada.user.id) == 9
    assert passkeys.remove(ada.user, spare.id, CLIENT, now)
    assert codes.left(ada.user.id) == 0


def test_every_wrong_passkey_answer_at_the_second_step_counts(ada: Signed) -> None:
    key = SoftAuthenticator(ORIGIN)
    enrol(ada, key)
    other = SoftAuthenticator(ORIGIN)
    first = wiring.accounts().log_in("ada", GOOD_PASSWORD, CLIENT, datetime.now(UTC))
    assert isinstance(first, SecondStepNeeded)
    step = wiring.second_step()
    for _ in range(3):
        now = datetime.now(UTC)
        options = step.passkey_options(PARTY, first.challenge.token, now)
        with pytest.raises(InvalidCredentials):
            step.complete(first.challenge.token, Answer(PARTY, other.assert_(options)), CLIENT, now)
    assert events().count(EventKind.SECOND_FACTOR_FAILED) == 3
    counted = counter_row(SECOND_FACTOR, account_key(ada.user.username_key))
    assert counted is not None and counted.count == 3


def test_a_passkey_puts_a_session_in_sudo_mode(ada: Signed) -> None:
    key = SoftAuthenticator(ORIGIN)
    enrol(ada, key)
    store = wiring.store()
    with store.tx.write():
        store.session.execute(
            update(Session)
            .where(Session.id == ada.session.id)
            .values(authenticated_at=datetime.now(UTC) - timedelta(hours=1))
        )
    old = ada.refresh()
    assert not Sudo.active(old.session, datetime.now(UTC))
    logins = wiring.passkey_logins()
    options = logins.sudo_options(PARTY, old.session, old.user, datetime.now(UTC))
    logins.enter_sudo(
        Answer(PARTY, key.assert_(options)), old.session, old.user, CLIENT, datetime.now(UTC)
    )
    assert Sudo.active(ada.refresh().session, datetime.now(UTC))


def test_deleting_all_of_a_users_passkeys(ada: Signed) -> None:
    enrol(ada, SoftAuthenticator(ORIGIN))
    enrol(ada, SoftAuthenticator(ORIGIN), "Phone")
    store = wiring.store()
    with store.tx.write():
        assert store.factors.has_confirmed(ada.user.id)
        assert store.passkeys.delete_of(ada.user.id) == 2
        assert not store.factors.has_confirmed(ada.user.id)


def test_expired_challenges_are_pruned(ada: Signed) -> None:
    passwordless(SoftAuthenticator(ORIGIN))
    assert wiring.prune(datetime.now(UTC)).challenges == 0
    assert wiring.prune(datetime.now(UTC) + timedelta(minutes=6)).challenges == 1


# The API


def bearer(app: Flask, name: str = "ada") -> dict[str, str]:
    """Return the Authorization header of a new API session of ``name``."""
    with app.app_context():
        user = wiring.operator().find(name)
        started = wiring.sessions().start(user, CLIENT, datetime.now(UTC), kind=SessionKind.API)
    return {"Authorization": f"Bearer {started.token}"}


def test_the_api_lists_renames_and_removes_passkeys(
    app: Flask, client: FlaskClient, ada: Signed
) -> None:
    made = enrol(ada, SoftAuthenticator(ORIGIN), "Laptop")
    headers = bearer(app)
    listed = client.get("/api/v1/me/passkeys", headers=headers)
    assert listed.status_code == 200
    [shown] = listed.json["passkeys"]  # type: ignore[index]
    assert (shown["id"], shown["name"], shown["last_used_at"]) == (made.id, "Laptop", None)
    assert "public_key" not in shown and "credential_id" not in shown

    renamed = client.patch(
        f"/api/v1/me/passkeys/{made.id}", json={"name": "Old laptop"}, headers=headers
    )
    assert renamed.status_code == 204
    assert (
        client.patch(
            f"/api/v1/me/passkeys/{made.id}", json={"name": " "}, headers=headers
        ).status_code
        == 422
    )
    assert client.delete(f"/api/v1/me/passkeys/{made.id + 1}", headers=headers).status_code == 404
    assert client.delete(f"/api/v1/me/passkeys/{made.id}", headers=headers).status_code == 204
    assert client.get("/api/v1/me/passkeys", headers=headers).json == {"passkeys": []}


def test_the_api_removes_a_passkey_in_sudo_mode_only(
    app: Flask, client: FlaskClient, ada: Signed
) -> None:
    made = enrol(ada, SoftAuthenticator(ORIGIN))
    headers = bearer(app)
    store = wiring.store()
    with store.tx.write():
        store.session.execute(
            update(Session).values(authenticated_at=datetime.now(UTC) - timedelta(hours=1))
        )
    refused = client.delete(f"/api/v1/me/passkeys/{made.id}", headers=headers)
    assert refused.status_code == 403
    assert refused.json["code"] == "reauthentication_required"  # type: ignore[index]


def test_another_users_passkey_is_not_found(app: Flask, client: FlaskClient, ada: Signed) -> None:
    made = enrol(ada, SoftAuthenticator(ORIGIN))
    add_user(app, "bob")
    headers = bearer(app, "bob")
    assert client.delete(f"/api/v1/me/passkeys/{made.id}", headers=headers).status_code == 404
    assert (
        client.patch(
            f"/api/v1/me/passkeys/{made.id}", json={"name": "Mine"}, headers=headers
        ).status_code
        == 404
    )
    assert len(wiring.passkeys().of_user(ada.user.id)) == 1
