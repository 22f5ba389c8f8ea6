"""Read a users file for ``yupnope users import``: the tutorial's dict of names and passwords."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import usernames
from ..errors import AccountError, ImportFileError
from ..security import passwords
from ..usernames import Username


def parse_import_file(file: Path) -> dict[Username, str]:
    """Return the file's entries as name and normalised password, or raise ImportFileError."""

    def object_without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # json.loads keeps the last of two equal keys without a word, which would drop a user
        # (or a password) the operator wrote down.
        found: dict[str, Any] = {}
        for key, value in pairs:
            if key in found:
                raise ImportFileError(f"{file}: {key!r} appears twice in one object")
            found[key] = value
        return found

    try:
        # utf-8-sig: editors on Windows start UTF-8 files with a byte-order mark.
        text = file.read_bytes().decode("utf-8-sig")
        data: Any = json.loads(text, object_pairs_hook=object_without_repeats)
    except OSError as exc:
        raise ImportFileError(f"cannot read {file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ImportFileError(f"{file} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ImportFileError(f"{file} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except (ValueError, RecursionError) as exc:
        # Valid JSON that Python refuses to hold: an integer of thousands of digits, or arrays
        # nested past the recursion limit. Without this they end in a traceback.
        reason = str(exc).split(";")[0]
        raise ImportFileError(f"{file} cannot be read as JSON: {reason}") from None
    if not isinstance(data, dict):
        raise ImportFileError(f'{file} must hold one JSON object: {{"name": {{"password": "…"}}}}')
    entries: dict[Username, str] = {}
    # Each name's skeleton to the entry that has it: equal keys have equal skeletons, so one
    # look-up finds both the same name written twice and two names that look alike.
    seen: dict[str, tuple[str, str]] = {}
    for raw_name, value in data.items():
        where = f"{file}: user {raw_name!r}"
        try:
            name = usernames.parse(raw_name)
        except AccountError as exc:
            raise ImportFileError(f"{where}: {exc}") from None
        if name.skeleton in seen:
            other, other_key = seen[name.skeleton]
            same = "is the same name as" if other_key == name.key else "looks like"
            raise ImportFileError(f"{where} {same} {other!r}")
        seen[name.skeleton] = (raw_name, name.key)
        if not isinstance(value, dict) or set(value) != {"password"}:
            raise ImportFileError(f'{where} must be {{"password": "…"}} and nothing else')
        password = value["password"]
        if not isinstance(password, str) or not password:
            raise ImportFileError(f"{where}: the password must be a non-empty string")
        secret = passwords.normalize(password)
        if secret is None:
            raise ImportFileError(
                f"{where}: the password is longer than {passwords.MAX_LENGTH} characters "
                "or is not text"
            )
        entries[name] = secret
    return entries
