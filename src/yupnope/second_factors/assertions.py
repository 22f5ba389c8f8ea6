"""Check a passkey's answer to a login's or a confirmation's challenge (a WebAuthn assertion).

In three parts, so the callers count an attempt on the throttle between finding whose passkey
answered and checking the answer: ``find`` (the challenge and the passkey, no cryptography),
``verify`` (py_webauthn: origin, RP ID, user presence and verification, the signature), and
``use`` inside the caller's write (the challenge taken, the counter moved on, both once).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from webauthn import (
    base64url_to_bytes,
    generate_authentication_options,
    options_to_json,
    verify_authentication_response,
)
from webauthn.helpers import bytes_to_base64url, parse_authentication_credential_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticationCredential,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    UserVerificationRequirement,
)

from ..models import Passkey
from ..store import Store
from .ceremonies import LIFETIME, Ceremonies, Found, RelyingParty, Unanswerable


@dataclass(frozen=True)
class Answer:
    """Carry a browser's answer as it came (the JSON of its PublicKeyCredential), and to whom."""

    party: RelyingParty
    credential: str


@dataclass(frozen=True)
class Matched:
    """Carry an answer matched to its stored challenge and to a known passkey, not yet checked."""

    answer: Answer
    parsed: AuthenticationCredential
    found: Found
    passkey: Passkey


@dataclass(frozen=True)
class Checked:
    """Carry a verified answer: the passkey, its challenge, and the counter and flag it sent."""

    passkey: Passkey
    found: Found
    sign_count: int
    backed_up: bool


class Unverified(Exception):
    """Refuse an answer; ``clone`` when it was signed right but its counter did not go up."""

    def __init__(self, reason: str, clone: bool = False) -> None:
        super().__init__(reason)
        self.clone = clone


def counter_grows(stored: int, sent: int) -> bool:
    """Return whether a use's counter ``sent`` follows ``stored`` (zero twice: no counter)."""
    return sent > stored or sent == stored == 0


class Assertions:
    """Make a login's or confirmation's options, and check the answers to them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.ceremonies = Ceremonies(store)

    def options(
        self, party: RelyingParty, bound_to: str, now: datetime, user_id: int | None = None
    ) -> str:
        """Return the options (JSON) of a challenge bound to ``bound_to``, inside a write.

        Without ``user_id`` any discoverable passkey may answer (a login without a password),
        and the authenticator must verify its user; with it, only that user's passkeys, and
        verification is preferred (a second step after the password).
        """
        allowed = []
        if user_id is not None:
            allowed = [descriptor(p) for p in self.store.passkeys.of_user(user_id)]
        challenge = self.ceremonies.open(bound_to, now)
        made = generate_authentication_options(
            rp_id=party.id,
            challenge=challenge,
            timeout=int(LIFETIME.total_seconds() * 1000),
            allow_credentials=allowed,
            user_verification=UserVerificationRequirement.PREFERRED
            if user_id is not None
            else UserVerificationRequirement.REQUIRED,
        )
        return options_to_json(made)

    def find(self, answer: Answer, bound_to: str, now: datetime) -> Matched:
        """Match ``answer`` to its challenge and its passkey, or raise Unverified."""
        try:
            parsed = parse_authentication_credential_json(answer.credential)
            found = self.ceremonies.find(bound_to, parsed.response.client_data_json, now)
        except (WebAuthnException, ValueError, TypeError, KeyError, Unanswerable) as exc:
            raise Unverified("no such challenge, or a malformed answer") from exc
        passkey = self.store.passkeys.by_credential_id(parsed.id)
        self.store.tx.end_read()
        if passkey is None:
            raise Unverified("no such passkey")
        handle = parsed.response.user_handle
        if handle is not None and bytes_to_base64url(handle) != passkey.user_handle:
            raise Unverified("the user handle is not the passkey's")
        return Matched(answer, parsed, found, passkey)

    def verify(self, matched: Matched, require_verified_user: bool) -> Checked:
        """Check the answer's origin, RP ID, flags and signature, then its counter.

        py_webauthn is given a counter of zero, so that its own check never refuses: ours
        runs after the signature is known good, so only a signed answer counts as a clone
        (WebAuthn Level 3, 6.1.1: the relying party decides what a counter that did not
        grow means; here it is refused and reported).
        """
        party = matched.answer.party
        try:
            verified = verify_authentication_response(
                credential=matched.parsed,
                expected_challenge=matched.found.challenge,
                expected_rp_id=party.id,
                expected_origin=party.origin,
                credential_public_key=matched.passkey.public_key,
                credential_current_sign_count=0,
                require_user_verification=require_verified_user,
            )
        except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
            raise Unverified(str(exc)) from exc
        if not counter_grows(matched.passkey.sign_count, verified.new_sign_count):
            raise Unverified("the signature counter did not go up", clone=True)
        return Checked(
            matched.passkey,
            matched.found,
            verified.new_sign_count,
            verified.credential_backed_up,
        )

    def use(self, checked: Checked, now: datetime) -> None:
        """Take the challenge and move the counter on, inside the caller's write.

        Raises Unverified: the challenge was taken meanwhile (a replay racing), or another use
        moved the counter past this one's (``clone``).
        """
        try:
            self.ceremonies.take(checked.found)
        except Unanswerable:
            raise Unverified("the challenge was used meanwhile") from None
        if not self.store.passkeys.record_use(
            checked.passkey.id, checked.sign_count, checked.backed_up, now
        ):
            raise Unverified("the signature counter did not go up", clone=True)


def descriptor(passkey: Passkey) -> PublicKeyCredentialDescriptor:
    """Describe a stored passkey to the browser, with the transports it said it has."""
    transports = [
        AuthenticatorTransport(t)
        for t in passkey.transports.split(",")
        if t in AuthenticatorTransport._value2member_map_
    ]
    return PublicKeyCredentialDescriptor(
        id=base64url_to_bytes(passkey.credential_id), transports=transports or None
    )
