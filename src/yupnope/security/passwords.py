"""Hash and verify passwords with argon2id, and judge new passwords against the policy.

The policy follows NIST SP 800-63B 5.1.1.2: a length range, no composition rules, and a refusal of
commonly used passwords and of the account's own name.
"""

from __future__ import annotations

import base64
import gzip
import secrets
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from . import foreign_hashes

#: Fewest characters in a new password (NIST SP 800-63B 5.1.1.2).
MIN_LENGTH = 8

#: Most characters in any password; a longer one is refused before hashing, never truncated.
MAX_LENGTH = 256

#: Largest input accepted before normalising: NFKC can grow a string, never by more than this.
_MAX_RAW_LENGTH = MAX_LENGTH * 4


@dataclass(frozen=True)
class Argon2Parameters:
    """Carry the argon2id costs: memory in KiB, iterations and lanes."""

    memory_kib: int
    time_cost: int
    parallelism: int


def normalize(password: str) -> str | None:
    """Return the NFKC form of ``password``, or None when it cannot be a password.

    None when it is longer than ``MAX_LENGTH``, or is not text (a lone surrogate, which is what
    undecodable bytes become on some paths, cannot be hashed). The raw length is checked first
    so that a megabyte of input is refused without normalising it; NFKC makes a password typed
    on another keyboard or platform hash the same.
    """
    if len(password) > _MAX_RAW_LENGTH or not _is_text(password):
        return None
    normal = unicodedata.normalize("NFKC", password)
    if len(normal) > MAX_LENGTH:
        return None
    return normal


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Hasher:
    """Hash and verify with one set of argon2id parameters; every verify costs one hash."""

    def __init__(self, parameters: Argon2Parameters) -> None:
        self._parameters = parameters
        self._argon2 = argon2.PasswordHasher(
            time_cost=parameters.time_cost,
            memory_cost=parameters.memory_kib,
            parallelism=parameters.parallelism,
            hash_len=32,
            salt_len=16,
            type=argon2.Type.ID,
        )
        self._dummy = _unmatchable_hash(parameters)

    def hash(self, password: str) -> str:
        """Return the encoded argon2id hash of an already normalised password."""
        return self._argon2.hash(password)

    def verify(self, encoded: str, password: str) -> bool:
        """Return whether ``password`` matches ``encoded``; a malformed hash does not match.

        ``encoded`` is argon2, or an imported hash of another scheme (foreign_hashes), which
        its own library verifies: every check of a password comes through here.

        A hash made with cheaper parameters than today's is verified faster than the dummy hash
        of an unknown name, so until its user's next login the time would tell that the name
        exists; the difference is spent on an unmatchable hash (Django's harden_runtime). A
        foreign hash's cost is not known, so it is followed by a whole dummy hash: never
        faster than an unknown name.
        """
        if not encoded.startswith(foreign_hashes.ARGON2_PREFIXES):
            matches = foreign_hashes.verify(encoded, password)
        else:
            try:
                matches = self._argon2.verify(encoded, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                matches = False
        padding = self._padding(encoded)
        if padding is not None:
            self._check(padding, password)
        return matches

    def _check(self, encoded: str, password: str) -> None:
        """Verify ``password`` against ``encoded`` for its cost alone."""
        try:
            self._argon2.verify(encoded, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            pass

    def _padding(self, encoded: str) -> str | None:
        """Return the unmatchable hash that brings a verify of ``encoded`` to today's cost.

        argon2's work grows with memory times passes, so the padding has today's memory and
        as many passes as make up the shortfall, rounded to the nearest (at least one).
        """
        today = self._parameters
        try:
            stored = argon2.extract_parameters(encoded)
            spent = stored.memory_cost * stored.time_cost
        except InvalidHashError:
            spent = 0
        shortfall = today.memory_kib * today.time_cost - spent
        passes = round(shortfall / today.memory_kib)
        if shortfall <= 0 or passes < 1:
            return None
        return _padding_hash(today.memory_kib, passes, today.parallelism)

    def verify_dummy(self, password: str) -> None:
        """Spend exactly what a wrong-password verify spends, so an unknown name costs the same.

        Django does the same for unknown users (ticket #20760), so response time does not tell
        whether a name exists.
        """
        self.verify(self._dummy, password)

    def saturated(self) -> bool:
        """Return whether a computation asked for now would be refused at once (never here)."""
        return False

    def needs_rehash(self, encoded: str) -> bool:
        """Return whether ``encoded`` was made with other parameters than this hasher's.

        A foreign hash always was: its owner's first login replaces it with argon2id.
        """
        if not encoded.startswith(foreign_hashes.ARGON2_PREFIXES):
            return True
        try:
            return self._argon2.check_needs_rehash(encoded)
        except InvalidHashError:
            return True


def is_argon2(encoded: str) -> bool:
    """Return whether ``encoded`` is a well-formed argon2 hash, of any of its three types."""
    try:
        argon2.extract_parameters(encoded)
    except InvalidHashError:
        return False
    return True


@cache
def _padding_hash(memory_kib: int, passes: int, parallelism: int) -> str:
    """Return an unmatchable hash of these costs, made once per process."""
    return _unmatchable_hash(Argon2Parameters(memory_kib, passes, parallelism))


def _unmatchable_hash(parameters: Argon2Parameters) -> str:
    """Return a well-formed argon2id hash that no password matches, made without hashing.

    Random salt and random digest with the hasher's own parameters: verifying against it runs one
    full argon2id computation and then fails the comparison, and building it costs nothing.
    """

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii").rstrip("=")

    return (
        f"$argon2id$v={argon2.low_level.ARGON2_VERSION}"
        f"$m={parameters.memory_kib},t={parameters.time_cost},p={parameters.parallelism}"
        f"${b64(secrets.token_bytes(16))}${b64(secrets.token_bytes(32))}"
    )


@dataclass(frozen=True)
class PolicyFailure:
    """Say why a password fails the policy: a stable ``reason`` word and a message for a person."""

    reason: str
    message: str


def policy_failure(password: str, username: str) -> PolicyFailure | None:
    """Return why ``username`` may not choose the normalised ``password``, or None."""
    if len(password) < MIN_LENGTH:
        return PolicyFailure("too_short", f"Use at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        return PolicyFailure("too_long", f"Use at most {MAX_LENGTH} characters.")
    if password.casefold() == username.casefold():
        return PolicyFailure("same_as_name", "The password may not be the account's name.")
    if password.lower() in common_passwords():
        return PolicyFailure(
            "common", "That password is among the most common ones, so it is guessed first."
        )
    return None


@cache
def common_passwords() -> frozenset[str]:
    """Return the shipped list of common passwords, lower-cased.

    The list is Django's ``common-passwords.txt.gz`` (20,000 entries by Royce Williams, shipped
    with Django under the BSD 3-Clause licence); see ``NOTICE`` beside it.
    """
    data = resources.files(__package__).joinpath("common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode("utf-8").split())
