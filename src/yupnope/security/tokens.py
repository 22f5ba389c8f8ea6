"""Make unguessable tokens and the digests under which they are kept at rest."""

from __future__ import annotations

import hashlib
import secrets

from itsdangerous import BadData, URLSafeTimedSerializer

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


class DeviceCookies:
    """Sign and read device values: proof that a client logged in to one account before.

    A browser keeps its value in a cookie, an API client as the ``device`` of its login answer.

    The value names the account only by a digest, carries a random device id, and is signed
    (itsdangerous, HMAC) with the server's secret, with its time so it expires after ``max_age``.
    """

    def __init__(self, secret: str, max_age: int) -> None:
        self.max_age = max_age
        self._serializer = URLSafeTimedSerializer(secret, salt="yupnope.device-cookie")

    def sign(self, username_key: str) -> str:
        """Return a new device cookie value for the account with this folded name."""
        return self._serializer.dumps([digest(username_key)[:32], secrets.token_urlsafe(16)])

    def read(self, value: str, username_key: str) -> str | None:
        """Return the device id in ``value`` if it is valid and made for this account, else None."""
        try:
            payload = self._serializer.loads(value, max_age=self.max_age)
        except BadData:
            return None
        if (
            isinstance(payload, list)
            and len(payload) == 2
            and payload[0] == digest(username_key)[:32]
            and isinstance(payload[1], str)
        ):
            return payload[1]
        return None
