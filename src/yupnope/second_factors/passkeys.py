"""Add, list, rename and remove a user's passkeys (WebAuthn credentials, py_webauthn).

A passkey is made discoverable (a resident key) and with its user verified, so it can also
log in without a password (second_factors/passkey_logins.py). Adding and removing one are
changes sudo mode guards, which the callers make sure of; renaming is not.
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Sequence
from datetime import datetime

from webauthn import (
    base64url_to_bytes,
    generate_registration_options,
    options_to_json,
    verify_registration_response,
)
from webauthn.helpers import bytes_to_base64url, parse_registration_credential_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from ..client import Client
from ..db import DuplicateKey
from ..errors import AccountChanged, InvalidPasskeyName, PasskeyRefused
from ..kinds import EventKind
from ..models import Passkey, SecondFactor
from ..snapshots import SessionSnapshot, UserSnapshot
from ..store import Store
from .assertions import descriptor
from .ceremonies import LIFETIME, Ceremonies, Purpose, RelyingParty, Unanswerable, binding
from .recovery import RecoveryCodes

#: The longest name a passkey may have, in characters.
NAME_LIMIT = 64


def checked_name(name: str) -> str:
    """Return a passkey's name without its outer spaces, or raise InvalidPasskeyName."""
    name = name.strip()
    if not name:
        raise InvalidPasskeyName("Give the passkey a name, such as the device it is on.")
    if len(name) > NAME_LIMIT:
        raise InvalidPasskeyName(f"A passkey's name has at most {NAME_LIMIT} characters.")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in name):
        raise InvalidPasskeyName("A passkey's name cannot hold control characters.")
    return name


class Passkeys:
    """Register a user's passkeys, and list, rename and remove them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.ceremonies = Ceremonies(store)

    def of_user(self, user_id: int) -> Sequence[Passkey]:
        """Return the user's passkeys, oldest first."""
        found = self.store.passkeys.of_user(user_id)
        self.store.tx.end_read()
        return found

    def registration_options(
        self, party: RelyingParty, user: UserSnapshot, session: SessionSnapshot, now: datetime
    ) -> str:
        """Return the options (JSON) that ask the browser to make a passkey for ``user``.

        The user handle is the one the user's passkeys share, or a new random one (never
        the account's id or name: WebAuthn Level 3, 14.6.1); the browser's answer does not
        repeat it, so the challenge's binding keeps it. The user's passkeys are excluded, so
        an authenticator that holds one says so rather than making a second.
        """
        with self.store.tx.write():
            handle = self.store.passkeys.user_handle_of(user.id)
            handle = handle or bytes_to_base64url(secrets.token_bytes(32))
            existing = [descriptor(p) for p in self.store.passkeys.of_user(user.id)]
            bound_to = binding(Purpose.REGISTER, session.id)
            challenge = self.ceremonies.open(f"{bound_to}:{handle}", now)
        made = generate_registration_options(
            rp_id=party.id,
            rp_name=party.name,
            user_name=user.username,
            user_id=base64url_to_bytes(handle),
            challenge=challenge,
            timeout=int(LIFETIME.total_seconds() * 1000),
            attestation=AttestationConveyancePreference.NONE,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                require_resident_key=True,
                user_verification=UserVerificationRequirement.REQUIRED,
            ),
            exclude_credentials=existing,
        )
        return options_to_json(made)

    def register(
        self,
        party: RelyingParty,
        user: UserSnapshot,
        session: SessionSnapshot,
        name: str,
        credential: str,
        client: Client,
        now: datetime,
    ) -> Passkey:
        """Check the browser's answer to the registration options and keep the new passkey.

        The session that made it has proved it, so it counts as one made with a passkey.
        Raises InvalidPasskeyName, PasskeyRefused (an answer that does not check out, or a
        passkey registered already), AccountChanged.
        """
        name = checked_name(name)
        try:
            parsed = parse_registration_credential_json(credential)
            found = self.ceremonies.find(
                binding(Purpose.REGISTER, session.id), parsed.response.client_data_json, now
            )
            self.store.tx.end_read()
            verified = verify_registration_response(
                credential=parsed,
                expected_challenge=found.challenge,
                expected_rp_id=party.id,
                expected_origin=party.origin,
                require_user_verification=True,
            )
        except (WebAuthnException, ValueError, TypeError, KeyError, Unanswerable):
            raise PasskeyRefused("The passkey could not be added. Try again.") from None
        transports = ",".join(t.value for t in parsed.response.transports or [])
        record = Passkey(
            user_id=user.id,
            credential_id=bytes_to_base64url(verified.credential_id),
            user_handle=found.extra,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            transports=transports[:200],
            name=name,
            backed_up=verified.credential_backed_up,
            created_at=now,
        )
        try:
            with self.store.tx.write():
                if not self.store.users.is_unchanged(user):
                    raise AccountChanged()
                self.ceremonies.take(found)
                self.store.passkeys.add(record)
                self.store.sessions.prove_second_factor(session.id, SecondFactor.PASSKEY, now)
                self.store.events.record(
                    EventKind.PASSKEY_ADDED, now, client, user.id, user.username
                )
        except (DuplicateKey, Unanswerable):
            raise PasskeyRefused("This passkey is added already.") from None
        return record

    def rename(self, user: UserSnapshot, passkey_id: int, name: str) -> bool:
        """Rename one of the user's passkeys; return whether it was theirs."""
        name = checked_name(name)
        with self.store.tx.write():
            return self.store.passkeys.rename(user.id, passkey_id, name)

    def remove(self, user: UserSnapshot, passkey_id: int, client: Client, now: datetime) -> bool:
        """Remove one of the user's passkeys; return whether it was theirs.

        The callers make sure of sudo mode first.
        """
        with self.store.tx.write():
            removed = self.store.passkeys.delete(user.id, passkey_id)
            # Codes that recover nothing would only be one more secret to keep.
            RecoveryCodes(self.store).drop_if_unneeded(user.id)
            if removed is not None:
                self.store.events.record(
                    EventKind.PASSKEY_REMOVED, now, client, user.id, user.username
                )
        return removed is not None
