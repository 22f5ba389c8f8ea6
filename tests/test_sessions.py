"""Test server-side sessions: tokens at rest, rotation, idle and absolute expiry, ending."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask

from helpers import GOOD_PASSWORD, NOW, OPERATOR_CHANGES, change_as_operator
from yupnope import wiring
from yupnope.client import Client
from yupnope.errors import AccountChanged
from yupnope.models import User
from yupnope.security import tokens
from yupnope.sessions import Sessions

#: Run every app test here on SQLite and on PostgreSQL (see conftest.database_url).
BOTH_DATABASES = True

CLIENT = Client(address="198.51.100.1", user_agent="pytest")


@pytest.fixture
def ctx(app: Flask) -> Iterator[tuple[Sessions, User]]:
    with app.app_context():
        user = wiring.operator().add_user("alice", GOOD_PASSWORD, NOW)
        yield wiring.sessions(), user


def test_only_the_digest_of_the_token_is_stored(ctx: tuple[Sessions, User]) -> None:
    sessions, user = ctx
    started = sessions.start(user, CLIENT, NOW)
    assert len(tokens.digest(started.token)) == 64
    assert started.record.token_digest == tokens.digest(started.token)
    assert started.token not in started.record.token_digest
    found = sessions.find(started.token, NOW)
    assert found is not None and found[1].id == user.id
    assert sessions.find(started.token + "x", NOW) is None


def test_starting_a_session_replaces_the_previous_one(ctx: tuple[Sessions, User]) -> None:
    sessions, user = ctx
    first = sessions.start(user, CLIENT, NOW)
    second = sessions.start(user, CLIENT, NOW, replacing=first.token)
    assert first.token != second.token
    assert sessions.find(first.token, NOW) is None
    assert sessions.find(second.token, NOW) is not None


def test_idle_sessions_end(app: Flask, ctx: tuple[Sessions, User]) -> None:
    sessions, user = ctx
    idle = timedelta(seconds=wiring.get(app).settings.session_idle_seconds)
    started = sessions.start(user, CLIENT, NOW)
    assert sessions.find(started.token, NOW + idle - timedelta(seconds=1)) is not None
    # That use counted: the idle clock restarted from it.
    assert sessions.find(started.token, NOW + 2 * idle - timedelta(seconds=2)) is not None
    assert sessions.find(started.token, NOW + 3 * idle) is None
    assert sessions.store.sessions.count_of(user.id) == 0


def test_sessions_end_at_their_absolute_lifetime_however_busy(
    app: Flask, ctx: tuple[Sessions, User]
) -> None:
    sessions, user = ctx
    absolute = timedelta(seconds=wiring.get(app).settings.session_absolute_seconds)
    step = timedelta(seconds=wiring.get(app).settings.session_idle_seconds // 2)
    started = sessions.start(user, CLIENT, NOW)
    moment = NOW
    while moment + step < NOW + absolute:
        moment += step
        assert sessions.find(started.token, moment) is not None
    assert sessions.find(started.token, NOW + absolute) is None


def test_last_seen_is_written_at_most_once_per_touch_interval(
    app: Flask, ctx: tuple[Sessions, User]
) -> None:
    sessions, user = ctx
    started = sessions.start(user, CLIENT, NOW)
    sessions.find(started.token, NOW + timedelta(seconds=1))
    sessions.store.tx.end_read()
    found = sessions.find(started.token, NOW + timedelta(seconds=2))
    assert found is not None and found[0].last_seen_at == NOW
    later = NOW + timedelta(seconds=wiring.get(app).settings.session_touch_seconds)
    found = sessions.find(started.token, later)
    assert found is not None and found[0].last_seen_at == later


def test_end_all_ends_every_session_of_the_user_only(ctx: tuple[Sessions, User]) -> None:
    sessions, user = ctx
    other = wiring.operator().add_user("bob", GOOD_PASSWORD, NOW)
    mine = [sessions.start(user, CLIENT, NOW) for _ in range(3)]
    theirs = sessions.start(other, CLIENT, NOW)
    assert sessions.end_all(user.id, CLIENT, NOW) == 3
    assert all(sessions.find(s.token, NOW) is None for s in mine)
    assert sessions.find(theirs.token, NOW) is not None


def test_removing_or_disabling_a_user_ends_their_sessions(ctx: tuple[Sessions, User]) -> None:
    sessions, user = ctx
    operator = wiring.operator()
    started = sessions.start(user, CLIENT, NOW)
    operator.set_disabled(operator.find("alice"), True, NOW)
    assert sessions.find(started.token, NOW) is None
    operator.set_disabled(operator.find("alice"), False, NOW)
    started = sessions.start(user, CLIENT, NOW)
    operator.remove_user(operator.find("alice"), NOW)
    assert sessions.find(started.token, NOW) is None


def test_password_change_ends_the_other_sessions_only(ctx: tuple[Sessions, User]) -> None:
    sessions, user = ctx
    here = sessions.start(user, CLIENT, NOW)
    elsewhere = sessions.start(user, CLIENT, NOW)
    wiring.accounts().change_password(
        user, GOOD_PASSWORD, "a brand new passphrase", CLIENT, NOW, keep_session=here.record.id
    )
    assert sessions.find(here.token, NOW) is not None
    assert sessions.find(elsewhere.token, NOW) is None


def test_prune_deletes_expired_sessions(app: Flask, ctx: tuple[Sessions, User]) -> None:
    sessions, user = ctx
    sessions.start(user, CLIENT, NOW)
    live = sessions.start(user, CLIENT, NOW + timedelta(days=1))
    assert wiring.prune(NOW + timedelta(days=1)).sessions == 1
    assert sessions.find(live.token, NOW + timedelta(days=1)) is not None


@pytest.mark.parametrize("change", OPERATOR_CHANGES)
def test_a_login_that_checked_before_an_operator_change_gets_no_session(
    ctx: tuple[Sessions, User], change: str
) -> None:
    """The user object a login verified is stale once the operator acts: the operator wins."""
    sessions, checked = ctx
    # The login's copy belongs to another request: detach it from this ORM session.
    sessions.store.session.expunge(checked)
    change_as_operator("alice", change)
    with pytest.raises(AccountChanged):
        sessions.start(checked, CLIENT, NOW)
    assert sessions.store.sessions.count_of(checked.id) == 0


def test_a_stale_login_cannot_overwrite_an_operators_new_password(
    ctx: tuple[Sessions, User],
) -> None:
    sessions, checked = ctx
    sessions.store.session.expunge(checked)
    operator = wiring.operator()
    operator.set_password(operator.find("alice"), "an operator's new passphrase", NOW)
    assert not sessions.store.users.update_if_unchanged(checked, password_hash="rehashed")
    fresh = operator.find("alice")
    assert operator.accounts.hasher.verify(fresh.password_hash, "an operator's new passphrase")


@pytest.mark.parametrize(
    "values",
    [{"no_such_column": 1}, {"last_login_at": NOW, "id_": 0}],
    ids=["not a column", "a condition's name"],
)
def test_a_conditional_user_update_takes_columns_only(
    ctx: tuple[Sessions, User], values: dict[str, object]
) -> None:
    sessions, user = ctx
    with pytest.raises(ValueError, match="not a set of user columns"):
        sessions.store.users.update_if_unchanged(user, **values)
    assert sessions.store.users.update_if_unchanged(user, last_login_at=NOW)
    assert user.last_login_at == NOW


def test_a_conditional_user_update_of_nothing_says_whether_the_user_is_unchanged(
    ctx: tuple[Sessions, User],
) -> None:
    sessions, user = ctx
    assert sessions.store.users.update_if_unchanged(user)
    sessions.store.tx.end_read()
    operator = wiring.operator()
    operator.set_disabled(operator.find("alice"), True, NOW)
    assert not sessions.store.users.update_if_unchanged(user)
