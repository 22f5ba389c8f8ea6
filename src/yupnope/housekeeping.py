"""Delete what has run out: sessions, tokens, logins half done, grants, mail, counters, events.

Only the database's counters need it: counters kept in Redis expire there by themselves, and
the database's still fill up whenever that Redis was unreachable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .oidc.keys import PUBLISHED_AFTER_RETIREMENT
from .store import Store

#: How long sent mail stays in the outbox: a week to see what went out, and when.
SENT_MAIL_KEPT = timedelta(days=7)


@dataclass(frozen=True)
class Pruned:
    """Say how many rows of each kind were deleted."""

    sessions: int
    tokens: int
    counters: int
    #: Half-done logins whose second step never came.
    logins: int
    #: Passkey ceremonies' challenges past their end (second_factors/ceremonies.py).
    challenges: int
    #: The apps' expired codes and the tokens nothing can use any more.
    grants: int
    #: Signing keys retired long enough that no ID token they signed is still valid.
    keys: int
    #: Mailed links' expired tokens, and mail sent more than a week ago.
    mail: int
    events: int


def prune(
    store: Store,
    now: datetime,
    idle: timedelta,
    longest_window: timedelta,
    retention: timedelta,
    max_events: int,
) -> Pruned:
    """Delete expired sessions and tokens, counters older than every window, old events.

    Events go when they are older than ``retention``, and the oldest go whatever their age
    once there are more than ``max_events``: a cap that holds however busy the log gets.
    """
    with store.tx.write():
        return Pruned(
            sessions=store.sessions.delete_expired(now - idle, now),
            tokens=store.tokens.delete_expired(now),
            counters=store.counters.delete_stale(now - longest_window, now),
            logins=store.factors.delete_expired_challenges(now),
            challenges=store.passkeys.delete_expired_challenges(now),
            grants=store.grants.delete_expired(now),
            keys=store.apps.delete_keys_retired_before(now - PUBLISHED_AFTER_RETIREMENT),
            mail=store.mail.delete_expired(now, now - SENT_MAIL_KEPT),
            events=store.events.delete_before(now - retention)
            + store.events.delete_beyond(max_events),
        )
