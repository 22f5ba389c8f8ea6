"""Hold measured runs and sum them up; interleave the two sides of a workload.

The runs come from ``wrk.py`` (a load against a server) and ``hashing.py`` (raw argon2).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: How a workload is run: A B pairs, seconds per measured run, seconds of warm-up before each.
Timing = tuple[int, int, int]


@dataclass(frozen=True)
class Run:
    """Hold one measured run of a workload or of the raw argon2 baseline."""

    label: str
    seconds: float
    expected: int
    rate: float
    unexpected: int = 0
    #: The 503s among the unexpected answers: the hashing gate refused for a full queue.
    unavailable: int = 0
    non_2xx_3xx: int = 0
    socket_errors: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    #: CPU seconds of the processes doing the work: the server's tree, or the argon2 processes.
    cpu_seconds: float = 0.0
    other_cores: float = 0.0
    steal_cores: float = 0.0
    #: CPU seconds of each of the server's workers: one far above the other means the run's
    #: connections fell mostly on one worker.
    workers: tuple[float, ...] = ()

    @property
    def split(self) -> str:
        """Return each worker's share of the server's CPU, as "48 / 52 %", or "–"."""
        total = sum(self.workers)
        if total <= 0:
            return "–"
        return " / ".join(f"{100 * seconds / total:.0f}" for seconds in self.workers) + " %"

    @property
    def balance(self) -> float:
        """Return the busiest worker's CPU over the least busy one's (infinite if one idled).

        NaN when there is nothing to compare: one worker, or no CPU measured (the baseline).
        """
        if len(self.workers) < 2 or sum(self.workers) <= 0:
            return math.nan
        least = min(self.workers)
        return max(self.workers) / least if least > 0 else math.inf

    @property
    def balance_note(self) -> str:
        """Return the balance as " (busiest ÷ least 1.04)", or nothing when there is none."""
        return "" if math.isnan(self.balance) else f" (busiest ÷ least {self.balance:.2f})"

    @property
    def cpu_ms_each(self) -> float:
        """Return the CPU milliseconds spent per expected answer."""
        return 1000 * self.cpu_seconds / self.expected if self.expected else math.nan


def interleave(
    rounds: int, first: Callable[[], Run], second: Callable[[], Run]
) -> tuple[list[Run], list[Run], list[Run]]:
    """Run both sides ``rounds`` times as A B B A A B …; return each side's runs and all in order.

    Reversing every other pair cancels a drift that is linear in time (the machine getting
    busier, a database growing), which A B A B would hand to the side that always runs second.
    """
    firsts: list[Run] = []
    seconds: list[Run] = []
    ran: list[Run] = []
    for round_ in range(rounds):
        pair = [(first, firsts), (second, seconds)]
        for side, runs in pair if round_ % 2 == 0 else reversed(pair):
            runs.append(side())
            ran.append(runs[-1])
    return firsts, seconds, ran


def rate(runs: Sequence[Run]) -> float:
    """Return the expected answers per second over all ``runs`` together."""
    return sum(one.expected for one in runs) / sum(one.seconds for one in runs)


def median(runs: Sequence[Run]) -> float:
    """Return the mean of the medians of the runs that had any answer (equally long runs)."""
    known = [one.p50_ms for one in runs if one.p50_ms is not None]
    return sum(known) / len(known) if known else math.nan


def p99(runs: Sequence[Run]) -> float:
    """Return the mean of the runs' 99th percentiles (the runs are equally long)."""
    return sum(one.p99_ms or 0.0 for one in runs) / len(runs)


def cpu_ms(runs: Sequence[Run]) -> float:
    """Return the CPU milliseconds per expected answer over all ``runs`` together."""
    return 1000 * sum(one.cpu_seconds for one in runs) / sum(one.expected for one in runs)


def unavailable(runs: Sequence[Run]) -> int:
    """Return the 503 answers in ``runs``."""
    return sum(one.unavailable for one in runs)


def refused(runs: Sequence[Run]) -> str:
    """Return a note of the non-2xx/3xx answers in ``runs``, or nothing when there were none."""
    count = sum(one.non_2xx_3xx for one in runs)
    return f"; {count:,} non-2xx/3xx, {unavailable(runs):,} of them 503" if count else ""
