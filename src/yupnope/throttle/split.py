"""Keep the long-window counters in the database and the short-window ones in Redis.

An account's, a device's and an owner's confirmations' counters span the account window (30
days by default, NIST SP 800-63B 5.2.2's budget of 100): a Redis restarted without persistence
would hand each of them a fresh budget. They stay in the database, which survives restarts,
and are few and rarely contended (one row per account or device). The address, global,
sign-up and refusal counters live for minutes, are the hot ones (the global row takes every
failure), and go to Redis: a restart gives back at most one of their short windows.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime
from typing import TypeVar

from .counters import Count, Counters
from .database import DatabaseCounters
from .policy import ACCOUNT, CLIENT, CONFIRMATION, DEVICE, FACTOR_DEVICE, SECOND_FACTOR, Backoff
from .redis import RedisCounters

T = TypeVar("T")

#: The scopes whose counters span the account window, and so stay in the database.
DURABLE = frozenset({ACCOUNT, DEVICE, CONFIRMATION, SECOND_FACTOR, FACTOR_DEVICE, CLIENT})


class SplitCounters:
    """Run each throttle transaction on both stores: the long counters' and the short ones'.

    The database's write opens at the first step on a long counter and holds the rest of
    Redis's transaction, so an exception inside takes back the Redis hits (by hand) and rolls
    the database's back; an unreachable Redis comes out of it with nothing kept, for the
    fallback to run the whole transaction on the database. A transaction of short counters
    alone (a sign-up, a refusal logged) writes nothing to the database.
    """

    def __init__(self, remote: RedisCounters, database: DatabaseCounters) -> None:
        self.remote = remote
        self.database = database

    def transaction(self, work: Callable[[Counters], T], join: bool = False) -> T:
        with ExitStack() as database_write:
            opened: list[Counters] = []

            def durable() -> Counters:
                if not opened:
                    database_write.enter_context(self.database.store.tx.write(join=join))
                    opened.append(self.database)
                return opened[0]

            return self.remote.transaction(lambda brief: work(_Routed(durable, brief)), join)


class _Routed:
    """Send each counter's step to the store its scope belongs in."""

    def __init__(self, durable: Callable[[], Counters], brief: Counters) -> None:
        self.durable = durable
        self.brief = brief

    def _of(self, scope: str) -> Counters:
        return self.durable() if scope in DURABLE else self.brief

    def hit(
        self,
        scope: str,
        key: str,
        now: datetime,
        fresh_after: datetime,
        backoff: Backoff | None = None,
    ) -> Count:
        return self._of(scope).hit(scope, key, now, fresh_after, backoff)

    def refund(self, scope: str, key: str) -> None:
        self._of(scope).refund(scope, key)

    def unblock(self, scope: str, key: str, set_at: datetime, back_to: datetime | None) -> None:
        self._of(scope).unblock(scope, key, set_at, back_to)

    def clear(self, scope: str, key: str) -> int:
        return self._of(scope).clear(scope, key)
