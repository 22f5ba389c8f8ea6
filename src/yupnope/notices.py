"""Tell a person of a sign-in from a browser their account had not seen, and let them stop it.

A login from a browser without the account's device value (its cookie, or an API client's
``device``) queues a letter to the account's verified address: when, from which address and
browser, and a "this wasn't me" link. Followed and confirmed, that link ends every session and
token of the account, and locks its password until a reset by mail chooses a new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from .client import Client
from .kinds import EventKind
from .mail.errors import MailTokenInvalid
from .mail.letters import Letter
from .mail.links import Links, Purpose
from .mail.outbox import Outbox
from .models import LoginEvent, User
from .snapshots import UserSnapshot
from .store import Store

#: What a locked password hash starts with: no hash matches it (a malformed hash is padded to
#: the full cost, security/passwords.py), so the password opens nothing until it is reset.
LOCKED = "locked:"


def locked(password_hash: str) -> bool:
    """Return whether the password was locked by "this wasn't me"."""
    return password_hash.startswith(LOCKED)


class Notices:
    """Queue the notice of a new sign-in; act on its "this wasn't me" link."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def new_sign_in(self, user: User | UserSnapshot, client: Client, now: datetime) -> None:
        """Queue the notice of a sign-in from a new browser, if the account has an address."""
        found = self.store.mail.address_of(user.id)
        if found is None or found.verified_at is None:
            return
        Outbox(self.store).queue(
            Letter.NEW_SIGN_IN,
            found.address,
            now,
            user.id,
            when=now.strftime("%Y-%m-%d %H:%M UTC"),
            client_address=client.address,
            user_agent=client.user_agent,
        )

    def recent_sign_ins(self, user_id: int, limit: int = 10) -> Sequence[LoginEvent]:
        """Return the account's latest sign-ins, newest first: when, from where, which browser."""
        found = self.store.events.latest(user_id, [EventKind.LOGIN.value], limit)
        self.store.tx.end_read()
        return found

    def check(self, token: str, now: datetime) -> User:
        """Return the account a "this wasn't me" link is about, or raise MailTokenInvalid."""
        _, user = Links(self.store).owned(token, Purpose.NOT_ME, now)
        return user

    def not_me(self, token: str, client: Client, now: datetime) -> User:
        """End every session and token of the account, and lock its password; return it."""
        links = Links(self.store)
        record, user = links.owned(token, Purpose.NOT_ME, now)
        with self.store.tx.write():
            if not links.take(record):
                raise MailTokenInvalid()
            if not locked(user.password_hash):
                self.store.users.update(user, password_hash=LOCKED + user.password_hash)
            self.store.end_credentials_of(user.id)
            self.store.mail.drop_tokens(user.id, [Purpose.NOT_ME.value])
            self.store.events.record(EventKind.NOT_ME, now, client, user.id, user.username)
        return user
