"""Queue a letter to send: one row in the caller's write, sent later by a sender thread."""

from __future__ import annotations

import json
import threading
from datetime import datetime

from ..mail_tables import OutgoingMail
from ..store import Store
from .letters import Letter

#: Set when a letter is queued, so this process's sender wakes at once rather than at its next
#: round (mail/postman.py).
QUEUED = threading.Event()


class Outbox:
    """Queue letters in the database, where every process's sender finds them."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def queue(
        self,
        letter: Letter,
        recipient: str,
        now: datetime,
        user_id: int | None = None,
        **details: str | None,
    ) -> None:
        """Queue ``letter`` to ``recipient`` about ``user_id``, in the caller's write or its own."""
        with self.store.tx.write(join=True):
            self.store.mail.queue(
                OutgoingMail(
                    letter=letter.value,
                    recipient=recipient,
                    user_id=user_id,
                    details=json.dumps(details),
                    created_at=now,
                    attempts=0,
                    next_attempt_at=now,
                )
            )
        QUEUED.set()
