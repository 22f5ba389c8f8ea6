"""Recognise and verify the password hashes other systems store, each by a library that keeps it.

An imported account keeps the hash its old system made until its first successful login, which
replaces it with argon2id (accounts.py). Every hash is verified by the library that defines or
maintains its scheme: Werkzeug's own by ``werkzeug.security``, the others by passlib (libpass,
its maintained fork), whose ``bcrypt`` scheme runs on the ``bcrypt`` package. Nothing here
computes a digest itself. argon2 hashes are no foreign scheme: ``passwords.Hasher`` verifies
them with argon2-cffi, whatever system made them.

Refused as too weak, and so never imported: traditional DES crypt (it reads only a password's
first eight characters, so ``password`` and ``password123`` match one hash), unsalted MD5 and
plain text. An unsalted SHA-1 (``{SHA}``, Apache's htpasswd ``-s``) is accepted: it reads the
whole password, and lives only until its owner's first login.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from passlib import hash as passlib_hash
from werkzeug.security import check_password_hash

#: The most bytes bcrypt reads of a password (OpenBSD's bcrypt(3)): every producer of these
#: hashes (PHP, Apache, Django, bcrypt before 5.0) read those and dropped the rest; bcrypt 5.0
#: raises on a longer password instead, so the verifier is given the bytes that were hashed.
BCRYPT_MAX_BYTES = 72

#: Werkzeug's ``generate_password_hash`` forms: ``pbkdf2:HASH:ITERATIONS$SALT$HEX`` and
#: ``scrypt:N:R:P$SALT$HEX``. The iterations are required: without them Werkzeug would use
#: its own default of the day, which need not be the one that made the hash.
_WERKZEUG = re.compile(
    r"(?:pbkdf2:(?:sha256|sha512):[1-9][0-9]{0,9}|scrypt(?::[1-9][0-9]{0,9}){3})"
    r"\$[^$\s]+\$[0-9a-f]{64,128}"
)


@dataclass(frozen=True)
class Scheme:
    """Name one accepted scheme: its name as it is known, the prefix that marks it, its verifier.

    ``handler`` is the passlib class that parses and verifies it, None for Werkzeug's;
    ``shape``, where the library's parser accepts more than the scheme's hashes, the form a
    hash must have; ``truncates``, whether the scheme reads only ``BCRYPT_MAX_BYTES``.
    """

    name: str
    prefix: str
    handler: Any = None
    truncates: bool = False
    shape: re.Pattern[str] | None = None


#: Every accepted foreign scheme, by the prefix its hashes start with.
SCHEMES: tuple[Scheme, ...] = (
    Scheme("werkzeug pbkdf2", "pbkdf2:", shape=_WERKZEUG),
    Scheme("werkzeug scrypt", "scrypt:", shape=_WERKZEUG),
    Scheme("django pbkdf2_sha256", "pbkdf2_sha256$", passlib_hash.django_pbkdf2_sha256),
    Scheme("django argon2", "argon2$", passlib_hash.django_argon2),
    Scheme("django bcrypt", "bcrypt$", passlib_hash.django_bcrypt, truncates=True),
    Scheme("django bcrypt_sha256", "bcrypt_sha256$", passlib_hash.django_bcrypt_sha256),
    Scheme("bcrypt $2b$", "$2b$", passlib_hash.bcrypt, truncates=True),
    Scheme("bcrypt $2y$", "$2y$", passlib_hash.bcrypt, truncates=True),
    Scheme("bcrypt $2a$", "$2a$", passlib_hash.bcrypt, truncates=True),
    Scheme("passlib bcrypt-sha256", "$bcrypt-sha256$", passlib_hash.bcrypt_sha256),
    Scheme("pbkdf2-sha256", "$pbkdf2-sha256$", passlib_hash.pbkdf2_sha256),
    Scheme("pbkdf2-sha512", "$pbkdf2-sha512$", passlib_hash.pbkdf2_sha512),
    Scheme("scrypt", "$scrypt$", passlib_hash.scrypt),
    Scheme("sha512-crypt", "$6$", passlib_hash.sha512_crypt),
    Scheme("sha256-crypt", "$5$", passlib_hash.sha256_crypt),
    Scheme("apache md5 $apr1$", "$apr1$", passlib_hash.apr_md5_crypt),
    # The same algorithm as $apr1$ under crypt(3)'s own prefix (old Linux and BSD systems).
    Scheme("md5-crypt $1$", "$1$", passlib_hash.md5_crypt),
    # passlib reads any base64 after the prefix; a SHA-1 digest is 20 bytes, 28 in base64.
    Scheme(
        "apache {SHA}",
        "{SHA}",
        passlib_hash.ldap_sha1,
        shape=re.compile(r"\{SHA\}[A-Za-z0-9+/]{27}="),
    ),
)

#: The argon2 forms, verified by argon2-cffi as yupnope's own hashes are.
ARGON2_PREFIXES = ("$argon2id$", "$argon2i$", "$argon2d$")

#: The accepted schemes as an error message or the README lists them.
ACCEPTED = ", ".join(["argon2 ($argon2id$, $argon2i$, $argon2d$)"] + [s.name for s in SCHEMES])


def scheme_of(encoded: str) -> Scheme | None:
    """Return the foreign scheme of a well-formed ``encoded`` hash, or None.

    None for anything else: argon2 (not foreign), an unknown or refused scheme, or a hash of
    a known scheme that its library cannot parse, so it could never be verified.
    """
    found = next((s for s in SCHEMES if encoded.startswith(s.prefix)), None)
    if found is None or (found.shape is not None and not found.shape.fullmatch(encoded)):
        return None
    if found.handler is None:
        return found if _werkzeug_readable(encoded) else None
    try:
        parsed = parse(found, encoded)
    except (ValueError, TypeError):
        return None
    # passlib also reads a hash's settings alone, without a digest: no password matches that.
    if getattr(parsed, "checksum", None) in (None, "", b""):
        return None
    return found


def _werkzeug_readable(encoded: str) -> bool:
    """Return whether Werkzeug can check ``encoded``, or hashlib would refuse its scrypt.

    scrypt's N must be a power of two, and its memory within the bound Werkzeug hands hashlib
    (132 * N * r * p bytes), which OpenSSL takes only under 2 GiB.
    """
    method = encoded.split("$", 1)[0].split(":")
    if method[0] != "scrypt":
        return True
    n, r, p = (int(word) for word in method[1:4])
    return n >= 2 and n & (n - 1) == 0 and 132 * n * r * p < 2**31


def parse(found: Scheme, encoded: str) -> Any:
    """Return passlib's reading of ``encoded``, a hash of ``found``'s: its salt, its costs.

    Raises ValueError or TypeError for a hash passlib cannot read.
    """
    handler, inner = found.handler, encoded
    # passlib's Django argon2 and bcrypt rename another scheme's hashes (a PrefixWrapper):
    # the renamed scheme parses them, without the prefix Django puts in front.
    if getattr(handler, "wrapped", None) is not None:
        handler, inner = handler.wrapped, handler.orig_prefix + encoded[len(handler.prefix) :]
    return handler.from_string(inner)


def verify(encoded: str, password: str) -> bool:
    """Return whether ``password`` matches the foreign hash ``encoded``; a malformed one never does.

    The caller checks first that ``scheme_of(encoded)`` is a scheme; a hash that is none is
    no match.
    """
    found = scheme_of(encoded)
    if found is None:
        return False
    if found.handler is None:
        try:
            return check_password_hash(encoded, password)
        except ValueError:
            # hashlib's refusal of scrypt's costs on this machine (its memory): no match.
            return False
    secret: str | bytes = password
    if found.truncates:
        secret = password.encode("utf-8")[:BCRYPT_MAX_BYTES]
    try:
        return bool(found.handler.verify(secret, encoded))
    except (ValueError, TypeError):
        # passlib refuses some passwords outright (a NUL byte for bcrypt): no match.
        return False
