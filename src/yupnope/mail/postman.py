"""Run the sender on a thread of its own in each process that serves requests.

It starts at the first request a process serves (a worker forked from the server's first
process has none of its threads), sends what is due, then sleeps until a letter is queued in
this process or a few seconds pass, for the letters other processes queued or that wait for a
retry. Nothing it does is on a request's path.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from ..config import Settings
from ..store import Store
from .letters import Letters
from .outbox import QUEUED
from .sender import Sender
from .smtp import MailServer

log = logging.getLogger(__name__)

#: Seconds between two rounds when nothing was queued in this process.
ROUND_SECONDS = 5.0


class Postman:
    """Keep one sender thread alive in this process."""

    def __init__(
        self,
        open_store: Callable[[], AbstractContextManager[Store]],
        letters: Letters,
        server: MailServer,
        reset_lifetime: timedelta,
    ) -> None:
        self.open_store = open_store
        self.letters = letters
        self.server = server
        self.reset_lifetime = reset_lifetime
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    @classmethod
    def of(
        cls, settings: Settings, open_store: Callable[[], AbstractContextManager[Store]]
    ) -> Postman | None:
        """Return the postman the settings ask for: None while accounts have no addresses."""
        if settings.email == "off":
            return None
        letters = Letters(settings.instance_path, settings.public_origin, settings.mail_from)
        reset = timedelta(seconds=settings.password_reset_seconds)
        return cls(open_store, letters, MailServer.of(settings.smtp_url), reset)

    def ensure_running(self) -> None:
        """Start this process's sender thread unless it runs already."""
        if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._rounds, name="yupnope-mail", daemon=True)
            self._thread.start()

    def send_due(self) -> int:
        """Send what is due now, in this thread; return how many letters went."""
        with self.open_store() as store:
            return Sender(store, self.letters, self.server, self.reset_lifetime).send_due(
                datetime.now(UTC)
            )

    def stop(self) -> None:
        """Stop this process's sender thread after its round, and wait for it."""
        self._stopping.set()
        QUEUED.set()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join()

    def _rounds(self) -> None:
        while not self._stopping.is_set():
            QUEUED.clear()
            try:
                self.send_due()
            except SQLAlchemyError as exc:
                # The database is away: the letters wait in it, and the next round tries again.
                log.warning("mail not sent this round: %s", " ".join(str(exc).split())[:300])
            except Exception:
                # Whatever else went wrong, the thread lives on for the next round.
                log.exception("mail sender round failed")
            QUEUED.wait(ROUND_SECONDS)
