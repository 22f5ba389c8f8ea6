"""Reset a forgotten password by mail: ask with an address, follow the link, choose a new one.

The request answers alike whether or not the address is any account's, and in the same time:
it only counts the attempt and queues a letter to the address as typed; the sender, off the
request's path, finds whether a verified account has it and writes the letter only then
(mail/sender.py). The link's token is bound to the password hash it was made under
(mail/links.py), so it works once, until it expires, and not after any password change. The
new password follows the usual policy; every session and token of the account ends, and a
lock by "this wasn't me" (notices.py) goes with the old password. An account with a second
factor still needs it at its next login.
"""

from __future__ import annotations

from datetime import datetime

from . import new_passwords
from .client import Client
from .kinds import EventKind
from .mail.errors import MailTokenInvalid
from .mail.letters import Letter
from .mail.links import Links, Purpose
from .mail.outbox import Outbox
from .models import User
from .security.passwords import Hasher
from .store import Store
from .throttle import Throttle

#: The most characters an address typed into the form may have to be queued at all.
MOST_TYPED = 254


class Resets:
    """Queue reset letters, and set the new password a reset link allows."""

    def __init__(self, store: Store, throttle: Throttle, hasher: Hasher) -> None:
        self.store = store
        self.throttle = throttle
        self.hasher = hasher

    def ask(self, typed: str, client: Client, now: datetime) -> None:
        """Count the request and queue a reset letter to ``typed``; raise Throttled if over.

        Nothing here looks at the accounts: what is known of the address shows in no answer
        and no timing.
        """
        address = typed.strip()[:MOST_TYPED]
        self.throttle.admit_reset(address, client.address, now)
        if "@" in address:
            Outbox(self.store).queue(Letter.RESET, address, now)

    def check(self, token: str, now: datetime) -> User:
        """Return the account a reset link is for, or raise MailTokenInvalid."""
        _, user = Links(self.store).owned(token, Purpose.RESET, now)
        if user.disabled:
            raise MailTokenInvalid()
        return user

    def complete(self, token: str, new_password: str, client: Client, now: datetime) -> User:
        """Set the new password a reset link allows; end every session and token; return whose.

        Raises MailTokenInvalid (used, expired, superseded), WeakPassword, or Busy.
        """
        user = self.check(token, now)
        secret = new_passwords.acceptable(new_password, user.username, "new_password")
        new_hash = self.hasher.hash(secret)
        links = Links(self.store)
        with self.store.tx.write():
            # Found again in the write: a password changed during the hash ends the token.
            record, owner = links.owned(token, Purpose.RESET, now)
            if owner.id != user.id or not links.take(record):
                raise MailTokenInvalid()
            changed = self.store.users.update_if_unchanged(
                user, password_hash=new_hash, must_change_password=False
            )
            if not changed:
                raise MailTokenInvalid()
            self.store.end_credentials_of(user.id)
            self.store.mail.drop_tokens(user.id, [Purpose.RESET.value])
            self.store.events.record(EventKind.PASSWORD_RESET, now, client, user.id, user.username)
        return user
