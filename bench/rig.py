"""Size the rig the workloads run on: workers, threads, hashing slots, connections, the user.

The workloads, ``run.py``'s ``main`` and the report's method section all read these, so they live
in one place below all three.
"""

from __future__ import annotations

import os

import wrk
from wrk import Load

CPUS = os.cpu_count() or 1

#: Workers per server as ``yupnope serve`` picks them when not told (cli/serve.py: one per CPU).
WORKERS = CPUS

#: Threads per worker as ``yupnope serve`` picks them when not told (cli/serve.py: six per CPU).
THREADS = 6 * CPUS

#: Hashing slots per worker, given to every server as YUPNOPE_HASH_CONCURRENCY so that no
#: ratio or budget moves with the default: the CPUs shared out among the workers, which is
#: what ``yupnope serve`` picks by default since the slots stopped being one per CPU each.
SLOTS = -(-CPUS // WORKERS)

#: Concurrent logins: enough to keep every core hashing, and no more than one worker's gate
#: holds (its slots plus four waiting per CPU, hashing.QUEUE_PER_CPU), so even if every
#: connection lands on the same worker none is refused with 503.
LOGIN_CONNECTIONS = 4 * CPUS

#: Concurrent page views: past the point where either server's throughput stops rising.
PAGE_CONNECTIONS = 8 * CPUS

#: Users in B6's small database (the issue's number); --users sets the large one.
FEW_USERS = 100

USER = "bench"


def login(username: str, password: str, location: str, label: str, server: str) -> Load:
    """Return the load of logging in as ``username``, answered by a 303 to ``location``."""
    return wrk.login(label, server, (username, password), location, LOGIN_CONNECTIONS)
