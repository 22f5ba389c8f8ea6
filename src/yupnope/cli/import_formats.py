"""Read the formats ``yupnope users import`` takes into one shape: each user's name and fields.

Every reader returns the file's users in order as ``(name, fields)``, the fields named as in
the JSON format (``password`` or ``password_hash``, ``email``, ``groups``, ``disabled``), for
``import_file`` to check alike. A name written twice refuses the file in every format: each
parser used here would otherwise keep one of the two without a word.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import yaml

from ..errors import ImportFileError

Records = list[tuple[Any, Any]]

#: The JSON format's shape, as an error message shows it.
JSON_SHAPE = '{"name": {"password": "…"}} or {"name": {"password_hash": "…"}}'


def read_json(text: str, file: Path) -> Records:
    """Return the users of a JSON file: one object of names, each with an object of fields."""

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
        data: Any = json.loads(text, object_pairs_hook=object_without_repeats)
    except json.JSONDecodeError as exc:
        where = f"{file} is not valid JSON: {exc.msg} at line {exc.lineno}"
        if text[exc.pos : exc.pos + 1] == "'":
            # The tutorial's users are a Python dict; pasted as it is, its quotes are single.
            raise ImportFileError(
                f"{where}: this looks like a Python dict; JSON needs double quotes around "
                f'names and text, as in {{"david": {{"password": "Baldy1"}}}}'
            ) from None
        raise ImportFileError(where) from None
    except (ValueError, RecursionError) as exc:
        # Valid JSON that Python refuses to hold: an integer of thousands of digits, or arrays
        # nested past the recursion limit. Without this they end in a traceback.
        reason = str(exc).split(";")[0]
        raise ImportFileError(f"{file} cannot be read as JSON: {reason}") from None
    if not isinstance(data, dict):
        raise ImportFileError(f"{file} must hold one JSON object: {JSON_SHAPE}")
    return list(data.items())


def read_htpasswd(text: str, file: Path) -> Records:
    """Return the users of an Apache htpasswd file: ``name:hash`` lines.

    Blank lines and lines starting with ``#`` are passed over, as passlib's HtpasswdFile does.
    """
    records: Records = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        name, colon, encoded = line.partition(":")
        if not colon:
            raise ImportFileError(f"{file}: line {number} is not name:hash")
        if name in seen:
            raise ImportFileError(f"{file}: {name!r} appears twice")
        seen.add(name)
        records.append((name, {"password_hash": encoded}))
    return records


class _UniqueKeyLoader(yaml.SafeLoader):
    """Load YAML as yaml.safe_load does, refusing a mapping that holds one key twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys: set[Hashable] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in keys:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} appears twice", key_node.start_mark
                )
            keys.add(key)
        return super().construct_mapping(node, deep=deep)


def read_authelia(text: str, file: Path) -> Records:
    """Return the users of Authelia's users file: ``users: {name: {password, email, groups}}``.

    ``displayname`` and Authelia's other attributes have no place here and are passed over.
    """
    try:
        data: Any = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not YAML"
        raise ImportFileError(f"{file} is not valid YAML: {problem}{where}") from None
    except RecursionError:
        # PyYAML's composer recurses once per level: lists nested thousands deep end in this.
        raise ImportFileError(f"{file} cannot be read as YAML: it is nested too deep") from None
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, dict):
        raise ImportFileError(f"{file} must hold Authelia's users: 'users:' with one per name")
    records: Records = []
    for name, attributes in users.items():
        if not isinstance(attributes, dict):
            records.append((name, attributes))
            continue
        fields = {"password_hash": attributes.get("password")}
        fields.update(
            {k: attributes[k] for k in ("email", "groups", "disabled") if k in attributes}
        )
        records.append((name, fields))
    return records


#: The formats by the name ``--format`` gives them.
READERS: dict[str, Callable[[str, Path], Records]] = {
    "json": read_json,
    "htpasswd": read_htpasswd,
    "authelia": read_authelia,
}
