"""Test store/prepared.py: a lookup compiled once reads what SQLAlchemy's own execution reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import event

from helpers import COOKIE, add_user, login
from yupnope import wiring
from yupnope.models import SessionKind
from yupnope.security import tokens

#: Run every test here on SQLite and on PostgreSQL (see conftest.database_url).
BOTH_DATABASES = True


def test_the_drivers_cursor_reads_what_sqlalchemy_reads(app: Flask) -> None:
    add_user(app, "alice")
    now = datetime.now(UTC)
    with app.app_context():
        operator = wiring.operator()
        for group in ("staff", "ops"):
            operator.add_group(group, now)
        operator.change_groups(operator.find("alice"), ["staff", "ops"], [], now)
    browser = app.test_client()
    assert login(browser, "alice").status_code == 303
    cookie = browser.get_cookie(COOKIE)
    assert cookie is not None
    digest = tokens.digest(cookie.value)
    credentials = wiring.get(app).credentials
    fast = credentials.session(digest, SessionKind.BROWSER.value)
    # Watched, the lookup runs through SQLAlchemy's execution instead, as one statement.
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(args[2])

    engine = wiring.get(app).engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        seen = credentials.session(digest, SessionKind.BROWSER.value)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(sent) == 1
    assert fast is not None and fast == seen
    session, user = fast
    assert (user.username, user.groups, user.disabled) == ("alice", ("ops", "staff"), False)
    # Aware UTC times on both databases, as models.UTCDateTime gives them back.
    for moment in (session.last_seen_at, session.expires_at, user.created_at):
        assert moment.utcoffset() == timedelta(0)
        assert abs(moment - now) < timedelta(days=15)
    assert credentials.session(digest, SessionKind.API.value) is None
    assert credentials.session(tokens.digest("nothing"), SessionKind.BROWSER.value) is None
