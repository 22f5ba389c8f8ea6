"""Delete what has run out: sessions, tokens and half-done logins, stale counters, old events.

Only the database's counters need it: counters kept in Redis expire there by themselves, and
the database's still fill up whenever that Redis was unreachable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .store import Store


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
            events=store.events.delete_before(now - retention)
            + store.events.delete_beyond(max_events),
        )
