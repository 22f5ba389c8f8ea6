"""Bound how many argon2 computations one process runs at once.

Each computation holds its memory cost (19 MiB at OWASP's parameters) for its duration, so a flood
of logins could otherwise grow a worker without bound, as Keycloak and Kratos both learned. At most
``slots`` run at once, at most ``queue`` more wait a moment for a slot, and the rest are refused
at once: a flood is answered quickly with 503 instead of queueing, so the request threads that
the gate does not hold stay free for requests that need no hash (pages of users who are logged
in). ``yupnope serve`` starts more request threads than slots and queue together for that reason.

The computations also run on ``slots`` threads of the gate's own, never on the request threads:
glibc's malloc keeps a freed block of argon2's size in the arena of the thread that used it (its
mmap threshold rises to the largest block freed), so every request thread that ever hashed would
hold its 19 MiB for good, and a worker would grow to ``threads`` times that, not ``slots`` times.
Those threads also run at a lower priority (nice +HASH_NICENESS): with a slot per core, argon2
would otherwise keep every core busy during a flood, and the pages' threads would wait for a
core as long as for a thread. The kernel's scheduler gives a core to a page first; a login's
hash takes whatever the pages leave, which is all of it when no page is asked for.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import TypeVar

from .config import Settings
from .errors import Busy
from .metrics import GATE, OFF, Metrics
from .security.passwords import Argon2Parameters, Hasher

T = TypeVar("T")

#: Logins that may wait for a hashing slot in one process, per CPU of the machine: enough for an
#: ordinary burst however it falls on the workers (with one slot, eight waiting on 2 CPUs is about
#: 160 ms of hashing at OWASP's costs, inside the wait); past that, waiting would only hold request
#: threads a flood needs freed. Waiting holds no memory.
QUEUE_PER_CPU = 4


#: How much lower than the request threads' the hashing threads' priority is. On Linux's CFS a
#: thread's weight falls by about 1.25 times per step of nice (sched_prio_to_weight in the
#: kernel's sched/core.c): at +10, a page's thread gets about nine tenths of a core it shares.
HASH_NICENESS = 10


def _yield_to_pages() -> None:
    """Lower the calling thread's scheduling priority by HASH_NICENESS, where the OS allows.

    On Linux the nice value is a thread's own (setpriority(2), "BUGS"), so this leaves the
    request threads as they are. Elsewhere, or where it is not allowed, the hash runs as is.
    """
    try:
        current = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), current + HASH_NICENESS)
    except (AttributeError, OSError):
        return


def hashing_slots(cpus: int, workers: int) -> int:
    """Return each worker's share of the machine's CPUs as hashing slots, rounded up.

    argon2 is bound by memory bandwidth: more hashes at once than cores makes each slower and
    holds more memory, so the workers of one machine share its cores out among them. Rounding
    up leaves no core idle when the CPUs do not divide evenly (4 CPUs, 3 workers: 2 each, at
    most 6 at once), at the cost of that much oversubscription.
    """
    return max(1, -(-cpus // workers))


class Gate:
    """Admit at most ``slots`` holders at once; at most ``queue`` more wait up to ``wait`` s.

    First come, first served: a slot given back goes straight to the longest waiter. With a
    plain semaphore a newcomer can take it first, and under steady load one waiter may lose
    it over and over until its wait runs out, refused while later logins pass.
    """

    def __init__(self, slots: int, wait: float, queue: int, metrics: Metrics = OFF) -> None:
        self.slots = slots
        self.wait = wait
        self.queue = queue
        self.metrics = metrics
        self._lock = threading.Lock()
        self._held = 0
        self._waiters: deque[threading.Event] = deque()
        # Threads start on first use, so none exists yet when a server forks the app's process.
        self._threads = ThreadPoolExecutor(
            max_workers=slots, thread_name_prefix="yupnope-hash", initializer=_yield_to_pages
        )

    @property
    def waiting(self) -> int:
        """Return how many wait for a slot."""
        return len(self._waiters)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a slot for the block, or raise Busy when none comes free in time."""
        self._take()
        try:
            yield
        finally:
            self._give_back()

    def _take(self) -> None:
        """Take a free slot, or wait in line for one, or raise Busy."""
        with self._lock:
            if self._held < self.slots and not self._waiters:
                self._held += 1
                return
            if len(self._waiters) >= self.queue:
                self.metrics.busy(GATE)
                raise Busy()
            turn = threading.Event()
            self._waiters.append(turn)
        try:
            handed = turn.wait(self.wait)
        except BaseException:
            # Interrupted (KeyboardInterrupt, say) while in line: a slot handed over goes on.
            if self._leave(turn):
                self._give_back()
            raise
        if not handed and not self._leave(turn):
            self.metrics.busy(GATE)
            raise Busy()

    def _leave(self, turn: threading.Event) -> bool:
        """Step out of line; return True when the slot was handed over all the same.

        A slot can be handed over between the end of the wait and this step: it is then kept.
        """
        with self._lock:
            if turn.is_set():
                return True
            self._waiters.remove(turn)
            return False

    def _give_back(self) -> None:
        """Hand the slot to the longest waiter, or free it when nobody waits."""
        with self._lock:
            if self._waiters:
                self._waiters.popleft().set()
            else:
                self._held -= 1

    def saturated(self) -> bool:
        """Return whether every slot is taken and the queue is full, so slot() would refuse.

        A glance without the lock: it may be a moment out of date, which only moves where in a
        burst the refusals begin; slot() still decides.
        """
        return self._held >= self.slots and len(self._waiters) >= self.queue

    def run(self, work: Callable[[], T]) -> T:
        """Return ``work()``, run on one of the gate's own threads inside a slot, or raise Busy."""
        with self.slot():
            # Holding a slot, at most ``slots`` are in flight, so none waits for a pool thread.
            started = time.perf_counter()
            try:
                return self._threads.submit(work).result()
            finally:
                self.metrics.hashed(time.perf_counter() - started)


class GatedHasher(Hasher):
    """Hash and verify as Hasher does, each computation inside a slot of the gate."""

    def __init__(self, parameters: Argon2Parameters, gate: Gate) -> None:
        super().__init__(parameters)
        self.gate = gate

    @classmethod
    def of(cls, settings: Settings, metrics: Metrics = OFF) -> GatedHasher:
        """Return the hasher the settings ask for, behind a gate sized for this machine."""
        cpus = os.cpu_count() or 1
        parameters = Argon2Parameters(
            memory_kib=settings.argon2_memory_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
        )
        # Four logins per CPU of the machine may wait, whatever this worker's share of slots:
        # see QUEUE_PER_CPU.
        slots = settings.hash_concurrency or cpus
        gate = Gate(slots, settings.hash_wait_seconds, QUEUE_PER_CPU * cpus, metrics)
        return cls(parameters, gate)

    def hash(self, password: str) -> str:
        return self.gate.run(partial(Hasher.hash, self, password))

    def verify(self, encoded: str, password: str) -> bool:
        return self.gate.run(partial(Hasher.verify, self, encoded, password))

    def saturated(self) -> bool:
        return self.gate.saturated()
