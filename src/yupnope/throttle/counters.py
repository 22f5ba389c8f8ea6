"""Say what a counter is and what every place that keeps counters must do.

A counter is one (scope, key) pair with a count, the start of its window and an optional time
until which it refuses attempts. Every backend changes a counter in one atomic step, and runs a
throttle decision as one transaction: an exception inside it takes back every hit made in it.
The database keeps them (database.py) unless Redis is configured (redis.py), and whenever that
Redis cannot be reached (fallback.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from .policy import Backoff

T = TypeVar("T")


@dataclass(frozen=True)
class Count:
    """Carry a counter's state after an update."""

    count: int
    window_start: datetime
    blocked_until: datetime | None

    def waiting(self, now: datetime) -> bool:
        """Return whether the counter refuses attempts at ``now``."""
        return self.blocked_until is not None and self.blocked_until > now


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

    def transaction(self, work: Callable[[Counters], T], join: bool = False) -> T:
        """Return ``work(counters)``; if it raises, every hit it made is taken back.

        With ``join``, counters kept in the database change inside the caller's open write
        (a login's last write), committed with it; otherwise in a write of their own.
        """
        ...
