"""Keep the throttle's counters in the database, shared by every worker and instance on it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from ..store import Store
from .counters import Count, Counters
from .policy import Backoff

T = TypeVar("T")


class DatabaseCounters:
    """Keep the counters in the database, each transaction one write transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def hit(
        self,
        scope: str,
        key: str,
        now: datetime,
        fresh_after: datetime,
        backoff: Backoff | None = None,
    ) -> Count:
        # The upsert locks the row until the transaction ends, so the wait below lands before
        # any concurrent attempt on this counter reads it.
        count = Count(*self.store.counters.hit(scope, key, now, fresh_after))
        wait = None if backoff is None or count.waiting(now) else backoff.wait(count.count)
        if wait is not None:
            self.store.counters.block(scope, key, now + wait)
        return count

    def refund(self, scope: str, key: str) -> None:
        self.store.counters.refund(scope, key)

    def unblock(self, scope: str, key: str, set_at: datetime, back_to: datetime | None) -> None:
        self.store.counters.unblock(scope, key, set_at, back_to)

    def clear(self, scope: str, key: str) -> int:
        return self.store.counters.clear(scope, key)

    def transaction(self, work: Callable[[Counters], T], join: bool = False) -> T:
        # The rollback on an exception takes every hit back (joined: the caller's rollback).
        with self.store.tx.write(join=join):
            return work(self)
