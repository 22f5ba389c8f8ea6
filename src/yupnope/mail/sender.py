"""Send the queued letters: lease each, write it (minting its link's token), hand it over.

Each letter is leased by one conditional UPDATE before it is written, so two senders (two
workers, two instances) never send one letter twice; a sender that dies holding one leaves it
to another once the lease runs out. A refusal the server says is permanent (a 5xx reply)
drops the letter; anything else tries again later, waiting twice as long each time, until the
letter is GIVE_UP_AFTER old: then it is dropped too.
"""

from __future__ import annotations

import json
import logging
import smtplib
from datetime import datetime, timedelta
from email.message import EmailMessage

from ..mail_tables import OutgoingMail
from ..store import Store
from .letters import Letter, Letters
from .links import NOT_ME_LIFETIME, VERIFY_LIFETIME, Links, Purpose
from .smtp import MailServer

log = logging.getLogger(__name__)

#: How long a sender holds a letter it is sending before another may take it over: longer
#: than a delivery may take, each of its eight or so steps waiting up to smtp.TIMEOUT_SECONDS.
LEASE = timedelta(minutes=10)

#: The wait before the first retry, doubled at each one, up to the longest.
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)

#: The age at which a letter that keeps failing is dropped, that of the longest-lived link
#: (a sign-in's "this wasn't me"): a letter that cannot be written (an instance's broken
#: template) would otherwise be tried for ever.
GIVE_UP_AFTER = NOT_ME_LIFETIME

#: Letters one round sends at most: the rest wait for the next round.
BATCH = 50


def retry_wait(attempts: int) -> timedelta:
    """Return the wait after the ``attempts``-th failed attempt."""
    return min(FIRST_RETRY * (1 << min(attempts - 1, 20)), LONGEST_RETRY)


def describe(exc: Exception) -> str:
    """Return a failure in one line, a mail server's reply as it wrote it."""
    code = getattr(exc, "smtp_code", None)
    reply = getattr(exc, "smtp_error", None)
    if isinstance(code, int) and isinstance(reply, bytes):
        return f"{type(exc).__name__}: {code} {reply.decode('utf-8', 'replace')}"
    return f"{type(exc).__name__}: {exc}"


def _permanent(exc: Exception) -> bool:
    """Return whether the server refused for good (RFC 5321 4.2.1: a 5yz reply)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    code = getattr(exc, "smtp_code", None)
    return isinstance(code, int) and code >= 500


class Sender:
    """Send what is due in the outbox, over one store and one mail server."""

    def __init__(
        self, store: Store, letters: Letters, server: MailServer, reset_lifetime: timedelta
    ) -> None:
        self.store = store
        self.letters = letters
        self.server = server
        self.reset_lifetime = reset_lifetime
        self.links = Links(store)

    def send_due(self, now: datetime) -> int:
        """Send the letters due now; return how many the server took."""
        sent = 0
        for mail in self.store.mail.due(now, BATCH):
            mail_id, attempts = mail.id, mail.attempts + 1
            with self.store.tx.write():
                if not self.store.mail.lease(mail_id, now, now + LEASE):
                    continue
            try:
                message = self.write(mail, now)
                if message is not None:
                    self.server.send(message)
            except Exception as exc:
                # Any failure, the mail server's or a letter's own (an instance's template):
                # the letter is kept and tried again later, and the round goes on.
                error = describe(exc)
                given_up = now - mail.created_at >= GIVE_UP_AFTER
                if given_up:
                    log.error("mail %d dropped, failing for %s: %s", mail_id, GIVE_UP_AFTER, error)
                else:
                    log.warning("mail %d to the mail server failed: %s", mail_id, error)
                with self.store.tx.write():
                    if given_up or _permanent(exc):
                        # Dropped: marked done, and the reason kept below.
                        self.store.mail.sent(mail_id, now)
                    self.store.mail.failed(mail_id, error, now + retry_wait(attempts))
                continue
            with self.store.tx.write():
                self.store.mail.sent(mail_id, now)
            sent += message is not None
        return sent

    def write(self, mail: OutgoingMail, now: datetime) -> EmailMessage | None:
        """Return the letter ``mail`` asks for, its link's token minted now; None if moot.

        Moot: a reset asked for an address that is no verified account's, a letter about an
        account since removed.
        """
        letter = Letter(mail.letter)
        details = json.loads(mail.details)
        if letter is Letter.TEST:
            return self.letters.write(letter, mail.recipient)
        recipient = mail.recipient
        if letter is Letter.RESET:
            found = self.store.mail.by_address(mail.recipient.lower())
            user_id = found.user_id if found and found.verified_at else None
            # To the address as verified, never as typed: a look-alike typed (a Kelvin sign
            # for a K) may fold to the same key and still be another mailbox.
            recipient = found.address if found else recipient
        else:
            user_id = mail.user_id
        user = self.store.users.by_id(user_id) if user_id is not None else None
        if user is None:
            return None
        context: dict[str, object] = {"username": user.username, **details}
        if letter is Letter.VERIFY:
            token = self.links.mint(
                user.id, Purpose.VERIFY, now, VERIFY_LIFETIME, address=mail.recipient
            )
            context.update(address=mail.recipient, link=self._link("verify-email", token))
        elif letter is Letter.RESET:
            if user.disabled:
                return None
            token = self.links.mint(
                user.id, Purpose.RESET, now, self.reset_lifetime, password_hash=user.password_hash
            )
            context.update(link=self._link("reset", token), lifetime=_duration(self.reset_lifetime))
        elif letter is Letter.NEW_SIGN_IN:
            token = self.links.mint(user.id, Purpose.NOT_ME, now, NOT_ME_LIFETIME)
            context.update(link=self._link("not-me", token))
        return self.letters.write(letter, recipient, **context)

    def _link(self, path: str, token: str) -> str:
        return f"{self.letters.public_url}/{path}/{token}"


def _duration(span: timedelta) -> str:
    """Return a span as a person says it: ``1 hour``, ``30 minutes``."""
    minutes = int(span.total_seconds() // 60)
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
