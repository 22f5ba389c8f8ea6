"""Keep the throttle's counters, and keep them in the database.

A counter is one (scope, key) pair with a count, the start of its window and an optional time
until which it refuses attempts. Every backend changes a counter in one atomic step, and runs a
throttle decision as one transaction: an exception inside it takes back every hit made in it.
The database keeps them unless Redis is configured (redis_counters.py), and whenever that
Redis cannot be reached (outage.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from .store import Count, Store

T = TypeVar("T")

#: Doublings of the base wait after which it grows no more: 2**30 base waits is decades already.
MOST_DOUBLINGS = 30


@dataclass(frozen=True)
class Backoff:
    """Let ``free`` failures pass, then make each wait ``base``, doubling up to ``longest``."""

    free: int
    base: timedelta
    longest: timedelta

    def wait(self, failures: int) -> timedelta | None:
        """Return the wait after ``failures`` failures, or None while they are still free."""
        beyond = failures - self.free
        if beyond < 0:
            return None
        return min(self.base * (1 << min(beyond, MOST_DOUBLINGS)), self.longest)

    def waits(self) -> list[timedelta]:
        """Return the waits after ``free``, ``free + 1`` … failures, up to the last new one."""
        found = [self.base]
        while len(found) <= MOST_DOUBLINGS and found[-1] < self.longest:
            found.append(self.base * (1 << len(found)))
        return [min(wait, self.longest) for wait in found]


def waiting(count: Count, now: datetime) -> bool:
    """Return whether a counter in the state ``count`` refuses attempts at ``now``."""
    return count.blocked_until is not None and count.blocked_until > now


class Counters(Protocol):
    """Change throttle counters, each step atomic."""

    def hit(
        self,
        scope: str,
        key: str,
        now: datetime,
        fresh_after: datetime,
        backoff: Backoff | None = None,
    ) -> Count:
        """Add one to a counter; return its count, its window and the wait it had before.

        A counter whose window began at or before ``fresh_after`` starts a new window at ``now``
        with a count of one, and keeps its wait. With ``backoff``, a counter that was not
        waiting gets the wait its new count earns, in the same atomic step: of a burst of
        concurrent attempts, none can pass between another's count and its wait.
        """
        ...

    def refund(self, scope: str, key: str) -> None:
        """Take one back from a counter, never below zero."""
        ...

    def unblock(self, scope: str, key: str, set_at: datetime, back_to: datetime | None) -> None:
        """Put a counter's wait back to ``back_to``, if it is still the ``set_at`` one set."""
        ...

    def clear(self, scope: str, key: str) -> int:
        """Delete a counter; return how many went (0 or 1)."""
        ...


class Keeper(Protocol):
    """Run the steps of one throttle decision together, wherever the counters are kept."""

    def transaction(self, work: Callable[[Counters], T]) -> T:
        """Return ``work(counters)``; if it raises, every hit it made is taken back."""
        ...


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
        count = self.store.hit_counter(scope, key, now, fresh_after)
        wait = None if backoff is None or waiting(count, now) else backoff.wait(count.count)
        if wait is not None:
            self.store.block_counter(scope, key, now + wait)
        return count

    def refund(self, scope: str, key: str) -> None:
        self.store.refund_counter(scope, key)

    def unblock(self, scope: str, key: str, set_at: datetime, back_to: datetime | None) -> None:
        self.store.unblock_counter(scope, key, set_at, back_to)

    def clear(self, scope: str, key: str) -> int:
        return self.store.clear_counter(scope, key)

    def transaction(self, work: Callable[[Counters], T]) -> T:
        # The rollback on an exception takes every hit back (inside another write, its rollback).
        with self.store.write():
            return work(self)
