"""Bound how many argon2 computations one process runs at once.

Each computation holds its memory cost (19 MiB at OWASP's parameters) for its duration, so a flood
of logins could otherwise grow a worker without bound, as Keycloak and Kratos both learned. At most
``slots`` run at once, at most as many again wait a moment for a slot, and the rest are refused
at once: a flood is answered quickly with 503 instead of queueing, so the threads stay free for
requests that need no hash (pages of users who are logged in).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import Busy
from .security.passwords import Argon2Parameters, Hasher


class Gate:
    """Admit at most ``slots`` holders at once; at most ``slots`` more wait up to ``wait`` s."""

    def __init__(self, slots: int, wait: float) -> None:
        self.slots = slots
        self.wait = wait
        self._free = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._waiting = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a slot for the block, or raise Busy when none comes free in time."""
        if not self._free.acquire(blocking=False):
            with self._lock:
                if self._waiting >= self.slots:
                    raise Busy()
                self._waiting += 1
            try:
                acquired = self._free.acquire(timeout=self.wait)
            finally:
                with self._lock:
                    self._waiting -= 1
            if not acquired:
                raise Busy()
        try:
            yield
        finally:
            self._free.release()


class GatedHasher(Hasher):
    """Hash and verify as Hasher does, each computation inside a slot of the gate."""

    def __init__(self, parameters: Argon2Parameters, gate: Gate) -> None:
        super().__init__(parameters)
        self.gate = gate

    def hash(self, password: str) -> str:
        with self.gate.slot():
            return super().hash(password)

    def verify(self, encoded: str, password: str) -> bool:
        with self.gate.slot():
            return super().verify(encoded, password)
