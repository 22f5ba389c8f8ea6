"""Act as a passkey's authenticator in Python, for the rules' tests: a real P-256 key, real CBOR.

It answers the options the server makes as a browser and a CTAP2 authenticator would
together: the clientDataJSON a browser writes (with the origin it runs at), the
authenticator's data (RP ID hash, flags, counter), and an ECDSA signature over both (WebAuthn
Level 3, 6.1 and 6.3). The answers go through py_webauthn's checks like a browser's; the
browser tests use Chromium's own virtual authenticator instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

#: Authenticator data flags (WebAuthn Level 3, 6.1): user present, user verified, backup
#: eligible, backed up, attested credential data included.
UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64url(data: bytes) -> str:
    """Return ``data`` in base64url without padding, as WebAuthn's JSON has it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    """Return the bytes of base64url ``text``, padded or not."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftAuthenticator:
    """Hold one credential: its id, key, user handle and counter; and the origin it runs at."""

    origin: str
    counter: int = 0
    #: Step the counter moves by at each use; 0 for an authenticator that keeps none.
    step: int = 1
    verifies_user: bool = True
    synced: bool = False
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    user_handle: bytes = b""

    def _flags(self, attested: bool) -> int:
        flags = UP | (UV if self.verifies_user else 0) | BE | (BS if self.synced else 0)
        return flags | (AT if attested else 0)

    def _client_data(self, kind: str, options: dict[str, Any]) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": options["challenge"], "origin": self.origin},
            separators=(",", ":"),
        ).encode()

    def _public_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        # COSE_Key (RFC 9052, 7.1): EC2, ES256, P-256, x, y.
        cose = {
            1: 2,
            3: -7,
            -1: 1,
            -2: numbers.x.to_bytes(32, "big"),
            -3: numbers.y.to_bytes(32, "big"),
        }
        return cbor2.dumps(cose)

    def register(self, options_json: str) -> str:
        """Answer registration options: the JSON a browser's ``credential.toJSON()`` gives."""
        options = json.loads(options_json)
        self.user_handle = unb64url(options["user"]["id"])
        client_data = self._client_data("webauthn.create", options)
        rp_hash = hashlib.sha256(options["rp"]["id"].encode()).digest()
        attested = (
            bytes(16)
            + struct.pack(">H", len(self.credential_id))
            + self.credential_id
            + self._public_key()
        )
        auth_data = rp_hash + bytes([self._flags(True)]) + struct.pack(">I", self.counter)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data + attested})
        return json.dumps(
            {
                "id": b64url(self.credential_id),
                "rawId": b64url(self.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "attestationObject": b64url(attestation),
                    "transports": ["internal"],
                },
                "clientExtensionResults": {},
                "authenticatorAttachment": "platform",
            }
        )

    def assert_(self, options_json: str, rp_id: str | None = None) -> str:
        """Answer authentication options, signing with the credential's key."""
        options = json.loads(options_json)
        self.counter += self.step
        client_data = self._client_data("webauthn.get", options)
        rp_hash = hashlib.sha256((rp_id or options["rpId"]).encode()).digest()
        auth_data = rp_hash + bytes([self._flags(False)]) + struct.pack(">I", self.counter)
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return json.dumps(
            {
                "id": b64url(self.credential_id),
                "rawId": b64url(self.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "authenticatorData": b64url(auth_data),
                    "signature": b64url(signature),
                    "userHandle": b64url(self.user_handle),
                },
                "clientExtensionResults": {},
                "authenticatorAttachment": "platform",
            }
        )
