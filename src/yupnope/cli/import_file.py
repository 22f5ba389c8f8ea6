"""Read a users file for ``yupnope users import``: names, passwords or hashes, addresses, groups.

The formats (import_formats.py) all come to the same fields, checked here alike: the file is
refused whole, in one line naming the user, at its first bad entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import emails, groupnames, usernames
from ..errors import AccountError, ImportFileError
from ..imports import ImportEntry, storable, too_costly
from ..security import foreign_hashes, passwords
from ..usernames import Username
from .import_formats import JSON_SHAPE, READERS

#: The fields a user's entry may have besides its password or hash.
OPTIONAL = {"email", "groups", "disabled"}


def parse_import_file(file: Path, format: str = "json") -> dict[Username, ImportEntry]:
    """Return the file's entries by name, or raise ImportFileError."""
    try:
        # utf-8-sig: editors on Windows start UTF-8 files with a byte-order mark.
        text = file.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ImportFileError(f"cannot read {file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ImportFileError(f"{file} is not UTF-8 text") from None
    entries: dict[Username, ImportEntry] = {}
    # Each name's skeleton to the entry that has it: equal keys have equal skeletons, so one
    # look-up finds both the same name written twice and two names that look alike.
    seen: dict[str, tuple[str, str]] = {}
    owners: dict[str, str] = {}
    for raw_name, value in READERS[format](text, file):
        where = f"{file}: user {raw_name!r}"
        if not isinstance(raw_name, str):
            raise ImportFileError(f"{where}: a name must be text")
        with _naming(where):
            name = usernames.parse(raw_name)
        if name.skeleton in seen:
            other, other_key = seen[name.skeleton]
            same = "is the same name as" if other_key == name.key else "looks like"
            raise ImportFileError(f"{where} {same} {other!r}")
        seen[name.skeleton] = (raw_name, name.key)
        entry = _entry(value, where)
        if entry.email is not None:
            other = owners.setdefault(entry.email.lower(), raw_name)
            if other != raw_name:
                raise ImportFileError(f"{where}: the address {entry.email} is {other!r}'s too")
        entries[name] = entry
    return entries


@contextmanager
def _naming(where: str) -> Iterator[None]:
    """Turn a rule's refusal of a name, address or group into the file's, naming the user."""
    try:
        yield
    except AccountError as exc:
        raise ImportFileError(f"{where}: {exc}") from None


def _entry(value: Any, where: str) -> ImportEntry:
    """Return one user's fields checked, or raise ImportFileError saying which is wrong."""
    if (
        not isinstance(value, dict)
        or len({"password", "password_hash"} & set(value)) != 1
        or set(value) - OPTIONAL - {"password", "password_hash"}
    ):
        raise ImportFileError(
            f"{where} must be {JSON_SHAPE}, with email, groups and disabled optional"
        )
    email = value.get("email")
    groups = value.get("groups", [])
    disabled = value.get("disabled", False)
    if email is not None:
        if not isinstance(email, str):
            raise ImportFileError(f"{where}: the email must be a string")
        with _naming(where):
            email = emails.parse(email)
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise ImportFileError(f"{where}: groups must be a list of names")
    with _naming(where):
        parsed = tuple(sorted({groupnames.parse(group) for group in groups}))
    if not isinstance(disabled, bool):
        raise ImportFileError(f"{where}: disabled must be true or false")
    if "password_hash" in value:
        encoded = value["password_hash"]
        if not isinstance(encoded, str) or not encoded:
            raise ImportFileError(f"{where}: the password hash must be a non-empty string")
        if not storable(encoded):
            raise ImportFileError(
                f"{where}: the password hash is of no scheme yupnope verifies, or malformed "
                f"(DES crypt, unsalted MD5 and plain text are refused as too weak); accepted: "
                f"{foreign_hashes.ACCEPTED}"
            )
        costly = too_costly(encoded)
        if costly is not None:
            raise ImportFileError(
                f"{where}: the password hash would make each login too dear: {costly}"
            )
        return ImportEntry(password_hash=encoded, email=email, groups=parsed, disabled=disabled)
    password = value["password"]
    if not isinstance(password, str) or not password:
        raise ImportFileError(f"{where}: the password must be a non-empty string")
    secret = passwords.normalize(password)
    if secret is None:
        raise ImportFileError(
            f"{where}: the password is longer than {passwords.MAX_LENGTH} characters or is not text"
        )
    return ImportEntry(password=secret, email=email, groups=parsed, disabled=disabled)
