"""Test session tokens and their digests."""

from __future__ import annotations

import base64
import hashlib

from yupnope.security import tokens


def test_tokens_carry_256_bits_and_never_repeat() -> None:
    made = {tokens.new_token() for _ in range(1000)}
    assert len(made) == 1000
    for token in list(made)[:10]:
        assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) == 32


def test_digest_is_sha256_hex() -> None:
    assert tokens.digest("abc") == hashlib.sha256(b"abc").hexdigest()
    assert tokens.digest("\udcff") != tokens.digest("")  # a lone surrogate does not crash
