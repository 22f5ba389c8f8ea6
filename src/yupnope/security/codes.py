"""Make and read the codes a person types at the second step: an app's TOTP, a recovery code.

TOTP is RFC 6238 as every authenticator app does it (SHA-1, six digits, 30-second steps),
computed by pyotp. Recovery codes are random, from ``secrets``, and kept as digests only.
"""

from __future__ import annotations

import secrets
from datetime import datetime

import pyotp
from pyotp.utils import strings_equal

#: Steps either side of the current one whose code is taken: a phone's clock a little off, or a
#: code typed as it changed (RFC 6238 5.2 recommends at most one step back).
DRIFT_STEPS = 1

#: Digits of a TOTP code: what every authenticator app shows.
TOTP_DIGITS = 6

#: Recovery codes made at once.
RECOVERY_CODES = 10

#: Characters of a recovery code: upper-case letters and digits without 0, 1, I and O, which
#: read alike; 32 of them, so each character carries 5 bits.
RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

#: Characters in a recovery code: 80 bits, beyond reach of guessing its digest offline too.
RECOVERY_LENGTH = 16

#: Characters between two dashes when a recovery code is shown.
RECOVERY_GROUP = 4


def new_totp_secret() -> str:
    """Return a fresh base32 TOTP secret of 160 bits (RFC 4226 4: the HMAC-SHA-1 length)."""
    return pyotp.random_base32(32)


def totp_uri(secret: str, account: str, issuer: str) -> str:
    """Return the ``otpauth://`` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def totp_step(secret: str, code: str, now: datetime) -> int | None:
    """Return the time step whose code ``code`` is, within DRIFT_STEPS of ``now``, or None.

    Spaces are dropped, since apps show the code as "123 456". The step is what the replay
    guard keeps: a code is taken only for a step after the last one taken.
    """
    typed = "".join(code.split())
    if len(typed) != TOTP_DIGITS or not typed.isascii() or not typed.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    found = None
    # Every step is compared, whichever matches, so the time taken says nothing of which.
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if strings_equal(totp.generate_otp(step), typed):
            found = step
    return found


def new_recovery_codes() -> list[str]:
    """Return RECOVERY_CODES fresh codes, each shown as XXXX-XXXX-XXXX-XXXX."""
    return [_grouped(_random_code()) for _ in range(RECOVERY_CODES)]


def recovery_code(typed: str) -> str | None:
    """Return a typed recovery code in its stored form, or None if it cannot be one.

    Case, spaces and dashes do not matter; a code copied with its dashes or typed without them
    is the same code.
    """
    bare = "".join(typed.split()).replace("-", "").upper()
    if len(bare) != RECOVERY_LENGTH or any(ch not in RECOVERY_ALPHABET for ch in bare):
        return None
    return bare


def _random_code() -> str:
    return "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))


def _grouped(code: str) -> str:
    return "-".join(code[i : i + RECOVERY_GROUP] for i in range(0, len(code), RECOVERY_GROUP))
