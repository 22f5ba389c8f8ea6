"""Keep the keys ID tokens are signed with: made when first needed, rotated, published.

joserfc makes and uses the keys; the database keeps them, so every worker and instance signs
with the same key and publishes the same set. A rotation makes a new key per algorithm and
retires the old ones: they sign nothing more but stay in the published set until every ID
token they signed has expired, so apps that cached the set keep validating (OpenID Connect
Core 10.1.1).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from joserfc.jwk import ECKey, RSAKey

from ..provider_tables import SigningKey
from ..security.sealing import Sealer
from ..store import Store

#: What the sealing key of the private keys is derived for (security/sealing.py).
PURPOSE = "yupnope oidc signing keys v1"

#: The algorithms ID tokens may be signed with: RS256 is every app's default (OpenID Connect
#: Core 15.1), ES256 is shorter and faster for the apps that ask for it.
ALGORITHMS = ("RS256", "ES256")

#: How long an ID token is valid.
ID_TOKEN_LIFETIME = timedelta(hours=1)

#: How long a retired key stays published: its last ID token's life, and a margin for clocks.
PUBLISHED_AFTER_RETIREMENT = ID_TOKEN_LIFETIME + timedelta(minutes=5)

#: RSA modulus size (NIST SP 800-57 Part 1: 2048 bits is good through 2030).
RSA_BITS = 2048

Key = RSAKey | ECKey


def _generate(alg: str, kid: str) -> Key:
    parameters: Any = {"alg": alg, "use": "sig", "kid": kid}
    if alg == "RS256":
        return RSAKey.generate_key(RSA_BITS, parameters=parameters)
    return ECKey.generate_key("P-256", parameters=parameters)


class KeyRing:
    """Sign with the newest key of an algorithm; publish the keys whose tokens may be alive."""

    def __init__(self, store: Store, sealer: Sealer) -> None:
        self.store = store
        self.sealer = sealer

    def signing_key(self, alg: str, now: datetime) -> Key:
        """Return the key that signs with ``alg`` now, made first if there is none."""
        for record in self.store.apps.keys():
            if record.alg == alg and record.retired_at is None:
                return self._private(record)
        return self._make(alg, now)

    def published(self, now: datetime) -> dict[str, list[dict[str, Any]]]:
        """Return the JWK Set of every key still signing or retired recently enough."""
        self._ensure(now)
        shown = [
            json.loads(record.public_jwk)
            for record in self.store.apps.keys()
            if record.retired_at is None or now - record.retired_at < PUBLISHED_AFTER_RETIREMENT
        ]
        return {"keys": shown}

    def rotate(self, now: datetime) -> list[str]:
        """Make a new key for every algorithm and retire the others; return the new key ids."""
        with self.store.tx.write():
            made = [self._add(alg, now) for alg in ALGORITHMS]
            self.store.apps.retire_keys(now, but=made)
        return made

    def kept(self) -> Sequence[SigningKey]:
        """Return every key kept, newest first (the operator's list)."""
        return self.store.apps.keys()

    def _ensure(self, now: datetime) -> None:
        """Make a key for each algorithm that has none signing."""
        live = {record.alg for record in self.store.apps.keys() if record.retired_at is None}
        for alg in ALGORITHMS:
            if alg not in live:
                self._make(alg, now)

    def _make(self, alg: str, now: datetime) -> Key:
        """Make and keep a first key for ``alg``, then sign with the newest one kept.

        Two workers making a first key at once each keep one: both are published, and both
        then sign with the same, the newest.
        """
        with self.store.tx.write():
            self._add(alg, now)
        for record in self.store.apps.keys():
            if record.alg == alg and record.retired_at is None:
                return self._private(record)
        raise LookupError(f"no {alg} signing key after making one")

    def _add(self, alg: str, now: datetime) -> str:
        kid = secrets.token_urlsafe(16)
        key = _generate(alg, kid)
        self.store.apps.add_key(
            SigningKey(
                kid=kid,
                alg=alg,
                sealed_private=self.sealer.seal(json.dumps(key.as_dict(private=True)), kid),
                public_jwk=json.dumps(key.as_dict(private=False)),
                created_at=now,
            )
        )
        return kid

    def _private(self, record: SigningKey) -> Key:
        data = json.loads(self.sealer.open(record.sealed_private, record.kid))
        if record.alg == "RS256":
            return RSAKey.import_key(data)
        return ECKey.import_key(data)
