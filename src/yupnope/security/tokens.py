"""Make unguessable tokens and the digests under which they are kept at rest."""

from __future__ import annotations

import hashlib
import secrets

#: Bytes of randomness in a session token: 256 bits.
TOKEN_BYTES = 32


def new_token() -> str:
    """Return a fresh URL-safe token carrying ``TOKEN_BYTES`` of randomness from ``secrets``."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def digest(token: str) -> str:
    """Return the hex sha256 of ``token``, the only form in which a token is stored.

    A fast hash is enough: the token has 256 bits of entropy, so there is nothing to brute-force,
    and a database leak then yields no usable cookie.
    """
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
