"""Say whether a hash to import would ask too much of each login of its user.

A hash carries its own costs (rounds, memory), and verifying it spends them: an imported hash
of 4 GiB of argon2 memory, or bcrypt's cost 31, would take a worker's memory or hold a hashing
slot for hours at every login of its user until the first one replaced it. The limits are far
above what systems set by default (bcrypt 10 to 12, Django's pbkdf2 a million iterations,
Authelia's argon2id 64 MiB and three passes, sha512-crypt's 5,000 to 656,000 rounds), so a
hash within them costs a login seconds at worst.
"""

from __future__ import annotations

import argon2
from argon2.exceptions import InvalidHashError

from . import foreign_hashes

#: bcrypt's cost, the base-2 logarithm of its rounds: 16 takes about four seconds.
MOST_BCRYPT_COST = 16
#: pbkdf2's iterations and sha-crypt's rounds.
MOST_ITERATIONS = 10_000_000
#: argon2's and scrypt's memory, in KiB: 256 MiB.
MOST_MEMORY_KIB = 256 * 1024
#: argon2's passes over its memory.
MOST_PASSES = 20
#: argon2's lanes and scrypt's parallel runs.
MOST_LANES = 16


def excess(encoded: str) -> str | None:
    """Return which cost of ``encoded`` is over its limit, in words, or None when none is.

    ``encoded`` is a hash the import accepts (argon2, or foreign_hashes' schemes); anything
    else has no costs to read, and None.
    """
    if encoded.startswith(foreign_hashes.ARGON2_PREFIXES):
        try:
            found = argon2.extract_parameters(encoded)
        except InvalidHashError:
            return None
        return _memory_hard(found.memory_cost, found.time_cost, found.parallelism)
    scheme = foreign_hashes.scheme_of(encoded)
    if scheme is None:
        return None
    if scheme.handler is None:
        # Werkzeug's method, before the salt: pbkdf2:HASH:ITERATIONS or scrypt:N:R:P.
        words = encoded.split("$", 1)[0].split(":")
        if words[0] == "pbkdf2":
            return _over("iterations", int(words[2]), MOST_ITERATIONS)
        n, r, p = (int(word) for word in words[1:4])
        return _memory_hard(n * r // 8, 1, p)
    parsed = foreign_hashes.parse(scheme, encoded)
    name: str = parsed.name
    if "argon2" in name:
        return _memory_hard(parsed.memory_cost, parsed.rounds, parsed.parallelism)
    if "scrypt" in name:
        # scrypt's memory is 128 * r * N bytes (RFC 7914 5); passlib keeps log2(N) as rounds.
        return _memory_hard((2**parsed.rounds) * parsed.block_size // 8, 1, parsed.parallelism)
    if "bcrypt" in name:
        return _over("bcrypt cost", parsed.rounds, MOST_BCRYPT_COST)
    rounds = getattr(parsed, "rounds", None)
    return None if rounds is None else _over("rounds", rounds, MOST_ITERATIONS)


def _memory_hard(memory_kib: int, passes: int, lanes: int) -> str | None:
    """Return which of a memory-hard hash's costs is over its limit, or None."""
    return (
        _over("memory (KiB)", memory_kib, MOST_MEMORY_KIB)
        or _over("passes", passes, MOST_PASSES)
        or _over("lanes", lanes, MOST_LANES)
    )


def _over(what: str, value: int, most: int) -> str | None:
    """Return ``value`` of ``what`` against its limit when it is over, else None."""
    return f"{what} {value:,}, over the {most:,} taken" if value > most else None
