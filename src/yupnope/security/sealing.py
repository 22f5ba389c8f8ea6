"""Seal the secrets the server must read back (an authenticator app's key) before they are stored.

AES-256-GCM from the cryptography package, under a key derived from the server's secret key for
this one purpose with HKDF-SHA256 (RFC 5869), so the signing key itself never encrypts. Each
sealed value carries its own random nonce and is bound to a context (the user's id) as
associated data: a sealed secret copied onto another user's row does not open.
"""

from __future__ import annotations

import base64
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

#: The first part of every sealed value: the scheme, so a later one can be told apart.
VERSION = "v1"

#: Bytes of AES-GCM's nonce (NIST SP 800-38D 8.2: 96 bits, random for each value).
NONCE_BYTES = 12


class Unsealable(ValueError):
    """Report a sealed value that does not open: another secret key, or altered at rest."""


class Sealer:
    """Seal and open short secrets under a key of their own, derived from the secret key."""

    def __init__(self, secret_key: str, purpose: str) -> None:
        derive = HKDF(algorithm=SHA256(), length=32, salt=None, info=purpose.encode("utf-8"))
        self._aead = AESGCM(derive.derive(secret_key.encode("utf-8")))

    def seal(self, plain: str, context: str) -> str:
        """Return ``plain`` encrypted and authenticated, bound to ``context``, as ASCII text."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plain.encode("utf-8"), context.encode("utf-8"))
        return f"{VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode('ascii')}"

    def open(self, sealed: str, context: str) -> str:
        """Return what ``seal`` sealed under ``context``, or raise Unsealable."""
        version, _, body = sealed.partition(".")
        if version != VERSION:
            raise Unsealable(f"not a sealed value of scheme {VERSION}")
        try:
            raw = base64.urlsafe_b64decode(body.encode("ascii"))
            plain = self._aead.decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode("utf-8")
            )
        except (InvalidTag, ValueError) as exc:
            raise Unsealable("the sealed value does not open with this secret key") from exc
        return plain.decode("utf-8")
