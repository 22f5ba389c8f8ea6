"""Keep accounts' email addresses: given, verified by a link, changed, removed, set by the operator.

An address counts once its owner followed the link mailed to it (or the operator set it): only
then does it sign in, receive resets and notices, and hold its place, so nobody can claim an
address they cannot read. A change is confirmed at the new address, with a notice to the old.
One address is one account, compared case-insensitively.
"""

from __future__ import annotations

from datetime import datetime

from .client import OPERATOR, Client
from .db import DuplicateKey
from .kinds import EventKind
from .mail.errors import EmailTaken, InvalidEmail, MailTokenInvalid
from .mail.letters import Letter
from .mail.links import Links, Purpose
from .mail.outbox import Outbox
from .mail_tables import EmailAddress
from .models import User
from .snapshots import UserSnapshot
from .store import Store

#: The longest address (RFC 5321 4.5.3.1.3: a path is at most 256 octets with its brackets).
MAX_LENGTH = 254


def parse(text: str) -> str:
    """Return ``text`` as an address, trimmed, or raise InvalidEmail saying why not.

    Only its shape is checked: one ``@`` between a local part and a domain with a dot, no
    spaces or control characters. Whether it receives mail is what the link proves.
    """
    address = text.strip()
    if not address:
        raise InvalidEmail("Enter an email address.")
    local, at, domain = address.rpartition("@")
    bad = any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in address)
    if len(address) > MAX_LENGTH or bad or not at or not local or "@" in local:
        raise InvalidEmail("That is not an email address, such as ada@example.com.")
    if "." not in domain.strip(".") or domain.startswith(".") or domain.endswith("."):
        raise InvalidEmail("That is not an email address, such as ada@example.com.")
    return address


class Addresses:
    """Give, verify, change and remove the address of an account."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def of(self, user_id: int) -> EmailAddress | None:
        """Return the account's verified address, or None."""
        return self.store.mail.address_of(user_id)

    def free(self, text: str, user_id: int | None = None) -> str:
        """Return ``text`` as an address no other account has verified, or raise saying why."""
        address = parse(text)
        taken = self.store.mail.by_address(address.lower())
        if taken is not None and taken.user_id != user_id:
            raise EmailTaken()
        return address

    def ask(self, user: User | UserSnapshot, text: str, now: datetime) -> str:
        """Mail a link to confirm ``text`` as the account's address; return it as kept.

        With a verified address already, that one stays until the new one is confirmed, and
        hears of the change.
        """
        address = self.free(text, user.id)
        current = self.of(user.id)
        if current is not None and current.address_key == address.lower():
            return current.address
        outbox = Outbox(self.store)
        with self.store.tx.write():
            # A link mailed for an earlier request must not confirm that address later.
            self.store.mail.drop_tokens(user.id, [Purpose.VERIFY.value])
            outbox.queue(Letter.VERIFY, address, now, user.id)
            if current is not None:
                outbox.queue(
                    Letter.ADDRESS_CHANGED, current.address, now, user.id, new_address=address
                )
        return address

    def pending(self, token: str, now: datetime) -> tuple[User, str]:
        """Return the account and address a verification link is about, or raise."""
        record, user = Links(self.store).owned(token, Purpose.VERIFY, now)
        if record.address is None:
            raise MailTokenInvalid()
        return user, record.address

    def verify(self, token: str, client: Client, now: datetime) -> tuple[User, str]:
        """Make the address a verification link was mailed to the account's; return both."""
        links = Links(self.store)
        record, user = links.owned(token, Purpose.VERIFY, now)
        if record.address is None:
            raise MailTokenInvalid()
        try:
            with self.store.tx.write():
                if not links.take(record):
                    raise MailTokenInvalid()
                self.store.mail.set_address(user.id, record.address, now, now)
                self.store.events.record(
                    EventKind.EMAIL_VERIFIED, now, client, user.id, user.username
                )
        except DuplicateKey:
            raise EmailTaken() from None
        return user, record.address

    def set_by_operator(self, user: User, text: str, now: datetime) -> str:
        """Give the account ``text`` as its address, verified: the operator vouches for it."""
        address = parse(text)
        try:
            with self.store.tx.write():
                self.store.mail.set_address(user.id, address, now, now)
                self._record(EventKind.ADMIN_EMAIL_SET, user, OPERATOR, now)
        except DuplicateKey:
            raise EmailTaken() from None
        return address

    def remove(self, user: User | UserSnapshot, client: Client, now: datetime) -> bool:
        """Remove the account's address; say whether it had one."""
        with self.store.tx.write():
            removed = self.store.mail.remove_address(user.id)
            self.store.mail.drop_tokens(user.id, [Purpose.VERIFY.value])
            if removed:
                self.store.events.record(
                    EventKind.EMAIL_REMOVED, now, client, user.id, user.username
                )
        return removed

    def _record(
        self, kind: EventKind, user: User | UserSnapshot, client: Client, now: datetime
    ) -> None:
        self.store.events.record(kind, now, client, user.id, user.username)
