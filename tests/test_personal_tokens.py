"""Test the rules of personal API tokens that the API alone cannot reach: races and refusals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask

from helpers import GOOD_PASSWORD, NOW, OPERATOR_CHANGES, change_as_operator
from yupnope import wiring
from yupnope.client import Client
from yupnope.errors import AccountChanged, SessionRequired
from yupnope.models import User

#: Run every app test here on SQLite and on PostgreSQL (see conftest.database_url).
BOTH_DATABASES = True

CLIENT = Client(address="192.0.2.7", user_agent="pytest")
A_YEAR = timedelta(days=365)


@pytest.fixture
def alice(app: Flask) -> Iterator[User]:
    """Yield alice as a request would have loaded her, inside the app's context."""
    with app.app_context():
        yield wiring.operator().add_user("alice", GOOD_PASSWORD, NOW)


@pytest.mark.parametrize("action", OPERATOR_CHANGES)
def test_no_token_is_made_for_a_user_changed_since_the_request_began(
    app: Flask, alice: User, action: str
) -> None:
    """Refuse a token to a request that loaded the user before an operator changed them."""
    alice_id = alice.id
    # From another app context: another request's ORM session, as an operator's command has.
    with app.app_context():
        change_as_operator("alice", action)
    tokens = wiring.personal_tokens()
    with pytest.raises(AccountChanged):
        tokens.issue(alice, "backup", A_YEAR, CLIENT, NOW)
    assert wiring.store().tokens.count_of(alice_id) == 0


def test_a_personal_token_cannot_make_another(alice: User) -> None:
    with pytest.raises(SessionRequired):
        wiring.personal_tokens().issue(alice, "backup", A_YEAR, CLIENT, NOW, by_token=True)
    assert wiring.store().tokens.count_of(alice.id) == 0


def test_a_token_made_for_an_unchanged_user_opens_the_api(alice: User) -> None:
    tokens = wiring.personal_tokens()
    issued = tokens.issue(alice, "backup", A_YEAR, CLIENT, NOW)
    found = tokens.find(issued.secret, NOW + timedelta(days=1))
    assert found is not None
    assert found[1].id == alice.id
    assert tokens.find(issued.secret, NOW + A_YEAR) is None
