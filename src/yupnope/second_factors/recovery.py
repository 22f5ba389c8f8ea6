"""Make a user's recovery codes: ten, shown once, kept as digests, each good for one login.

They stand in for the authenticator app or the passkeys when those are lost. Using one is a
login's second step (second_step.py); here they are made and counted.
"""

from __future__ import annotations

from datetime import datetime

from ..client import Client
from ..errors import SecondFactorNeeded
from ..kinds import EventKind
from ..security import codes, tokens
from ..snapshots import UserSnapshot
from ..store import Store

#: Codes left at or below which the account page and the API warn the owner to make new ones.
FEW_LEFT = 3


class RecoveryCodes:
    """Make new recovery codes and count the ones left."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def left(self, user_id: int) -> int:
        """Return how many of the user's recovery codes are unused."""
        found = self.store.factors.recovery_codes_left(user_id)
        self.store.tx.end_read()
        return found

    def regenerate(self, user: UserSnapshot, client: Client, now: datetime) -> list[str]:
        """Replace the user's recovery codes with ten new ones and return them, once.

        Raises SecondFactorNeeded for an account without a second factor (an authenticator app
        or a passkey): codes that recover nothing would only be one more secret to keep. The
        callers make sure of sudo mode first.
        """
        made = codes.new_recovery_codes()
        with self.store.tx.write():
            if not self.store.factors.has_confirmed(user.id):
                raise SecondFactorNeeded("Set up an authenticator app or a passkey first.")
            self.replace(user, made, client, now)
        return made

    def drop_if_unneeded(self, user_id: int) -> None:
        """Delete the user's codes once no second factor is left for them to stand in for.

        Inside the caller's write, after it removed a factor.
        """
        if not self.store.factors.has_confirmed(user_id):
            self.store.factors.delete_recovery_codes(user_id)

    def replace(self, user: UserSnapshot, made: list[str], client: Client, now: datetime) -> None:
        """Store ``made`` in place of the user's codes, inside the caller's write."""
        digests = [tokens.digest(code.replace("-", "")) for code in made]
        self.store.factors.replace_recovery_codes(user.id, digests, now)
        self.store.events.record(EventKind.RECOVERY_CODES_MADE, now, client, user.id, user.username)
