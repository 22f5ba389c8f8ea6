"""Judge how evenly a server's workers shared a workload: the busiest one's CPU over the least's.

granian gives each worker a listening socket of its own (``SO_REUSEPORT``) and the kernel hands
each new connection to one of them; a keep-alive connection then stays with that worker. A run
whose connections fell unevenly leaves cores idle while another is saturated, which no ratio of
throughput tells apart from a slow stack, so each throughput workload gets a row of its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from measurements import Run
from report import Result, at_most

#: The issue's bound on the busiest worker's CPU over the least busy one's, in any run.
CEILING = 1.3


def worst(runs: Sequence[Run]) -> float:
    """Return the largest busiest-over-least ratio of ``runs``, or NaN when none had workers."""
    known = [one.balance for one in runs if not math.isnan(one.balance)]
    return max(known) if known else math.nan


def _by_run(runs: Sequence[Run]) -> str:
    """Return each run's CPU seconds by worker and its ratio, as "5.1 / 4.9 s (1.04)"."""
    return ", ".join(
        " / ".join(f"{seconds:.1f}" for seconds in one.workers) + f" s ({one.balance:.2f})"
        for one in runs
    )


def bench_balance(of: str, what: str, runs: Sequence[Run], baseline: Sequence[Run] = ()) -> Result:
    """Return workload ``of``'s balance row: the worst of its runs, judged against CEILING.

    The worst run rather than the sum of all: two runs lopsided in opposite ways add up to an
    even split that no run had. A ``baseline`` server's runs (the bare app) are shown beside,
    to tell the server's spreading from what yupnope's app does.
    """
    ratio = worst(runs)
    beside = f"; the bare app's, by run: {_by_run(baseline)}" if baseline else ""
    return Result(
        id=f"{of}/balance",
        workload=f"busiest worker's CPU ÷ least busy worker's during {of}'s {what}, worst run",
        measured=f"CPU by worker, by run: {_by_run(runs)}{beside}",
        **at_most(ratio, CEILING),
        profile="Not profiled: py-spy shows where a worker's time goes, not how the kernel"
        " spread the connections over the workers.",
    )
