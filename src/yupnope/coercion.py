"""Turn a setting's value, as the environment or the instance file gives it, into its type."""

from __future__ import annotations

from typing import Any

from .errors import ConfigError


def coerce(value: object, wanted: type, where: str) -> Any:
    """Return ``value`` as a ``wanted`` (bool, str, int or float), or raise ConfigError.

    ``where`` names the setting in the error's one line: its variable, or the file and key.
    """
    if wanted is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where} must be true or false, not {value!r}")
    if wanted is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, not {value!r}")
        return value
    noun = "a whole number" if wanted is int else "a number"
    if isinstance(value, bool):
        raise ConfigError(f"{where} must be {noun}, not {value!r}")
    try:
        return wanted(str(value).strip())
    except ValueError:
        raise ConfigError(f"{where} must be {noun}, not {value!r}") from None
