"""Read ``<instance>/yupnope.toml``: each key a setting, ``[access]`` the access rules.

Every mistake is one ConfigError that names the file and the key.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from . import access
from .access import AccessRules
from .coercion import coerce
from .errors import ConfigError
from .setting_names import nearest

#: Settings that are tables, read from the instance file alone.
FILE_ONLY = frozenset({"access"})


def read(path: Path, types: dict[str, type]) -> dict[str, Any]:
    """Return the settings the file at ``path`` gives, each of the type ``types`` names."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = key.lower()
        if name not in types or name == "instance_path":
            known = types.keys() - {"instance_path"}
            raise ConfigError(f"{path}: unknown setting {key!r}{nearest(name, known)}")
        if name in FILE_ONLY:
            values[name] = access_rules(value, f"{path}: ")
        else:
            values[name] = coerce(value, types[name], f"{path}: {key}")
    return values


def access_rules(table: object, where: str) -> AccessRules:
    """Return the access rules of an ``[access]`` table; ``where`` starts the error's line."""
    try:
        return access.parse(table)
    except ValueError as exc:
        raise ConfigError(f"{where}{exc}") from None
