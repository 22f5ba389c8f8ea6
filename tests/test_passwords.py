"""Test argon2id hashing, the dummy verify, and the password policy."""

from __future__ import annotations

import argon2
import pytest
from werkzeug.security import generate_password_hash

from yupnope.security import passwords
from yupnope.security.passwords import Argon2Parameters, Hasher

CHEAP = Argon2Parameters(memory_kib=8, time_cost=1, parallelism=1)


def test_owasp_parameters_are_the_defaults() -> None:
    from yupnope import config

    defaults = config.Settings
    assert (defaults.argon2_memory_kib, defaults.argon2_time_cost, defaults.argon2_parallelism) == (
        19456,
        2,
        1,
    )


def test_hash_is_argon2id_with_the_given_parameters() -> None:
    hasher = Hasher(Argon2Parameters(memory_kib=64, time_cost=3, parallelism=2))
    encoded = hasher.hash("correct horse")
    assert encoded.startswith("$argon2id$")
    params = argon2.extract_parameters(encoded)
    assert (params.memory_cost, params.time_cost, params.parallelism) == (64, 3, 2)
    assert hasher.verify(encoded, "correct horse")
    assert not hasher.verify(encoded, "correct horsf")
    assert not hasher.verify("not a hash", "correct horse")


def test_the_dummy_hash_has_the_hashers_parameters_and_matches_nothing() -> None:
    hasher = Hasher(CHEAP)
    dummy = hasher._dummy
    params = argon2.extract_parameters(dummy)
    assert (params.memory_cost, params.time_cost, params.parallelism) == (8, 1, 1)
    assert not hasher.needs_rehash(dummy)
    assert not hasher.verify(dummy, "")
    assert not hasher.verify(dummy, "anything")
    hasher.verify_dummy("anything")


def test_needs_rehash_when_parameters_change() -> None:
    encoded = Hasher(CHEAP).hash("pw")
    assert not Hasher(CHEAP).needs_rehash(encoded)
    assert Hasher(Argon2Parameters(16, 1, 1)).needs_rehash(encoded)
    assert Hasher(CHEAP).needs_rehash("garbage")


def test_a_foreign_hash_is_verified_by_its_library_padded_and_always_rehashed() -> None:
    hasher = Hasher(CHEAP)
    foreign = generate_password_hash("correct horse", "pbkdf2:sha256:1000")
    assert hasher.verify(foreign, "correct horse")
    assert not hasher.verify(foreign, "correct horsf")
    assert hasher.needs_rehash(foreign)
    # Its cost is unknown, so a whole dummy hash at today's cost follows it.
    padding = hasher._padding(foreign)
    assert padding is not None
    assert argon2.extract_parameters(padding).time_cost == CHEAP.time_cost
    assert not hasher.verify("locked:" + foreign, "correct horse")
    assert not hasher.verify(foreign[:-1], "correct horse")


def test_normalize_uses_nfkc_and_refuses_overlong_without_truncating() -> None:
    assert passwords.normalize("ｐａｓｓ") == "pass"
    assert passwords.normalize("x" * 256) == "x" * 256
    assert passwords.normalize("x" * 257) is None
    assert passwords.normalize("x" * 1_000_000) is None
    # A lone surrogate (undecodable bytes on some paths) is not text and cannot be hashed.
    assert passwords.normalize("\ud800abcdefgh") is None
    # U+FDFA grows to 18 characters under NFKC: the limit applies after normalising.
    assert passwords.normalize("\ufdfa" * 15) is None


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("1234567", "too_short"),
        ("x" * 257, "too_long"),
        ("alice-smith", "same_as_name"),
        ("ALICE-SMITH", "same_as_name"),
        ("password", "common"),
        ("Password", "common"),
        ("iloveyou", "common"),
        ("qwertyuiop", "common"),
    ],
)
def test_policy_refuses(password: str, reason: str) -> None:
    failure = passwords.policy_failure(password, "alice-smith")
    assert failure is not None and failure.reason == reason and failure.message


@pytest.mark.parametrize(
    "password",
    ["12345678x!zq", "correct horse battery staple", "aaaaaaaab", "x" * 256, "日本語のパスワード"],
)
def test_policy_has_no_composition_rules(password: str) -> None:
    assert passwords.policy_failure(password, "alice-smith") is None


def test_the_common_list_is_shipped_and_large() -> None:
    common = passwords.common_passwords()
    assert len(common) >= 10_000
    assert "123456" in common
    assert all(entry == entry.lower() for entry in common)
