"""Keep what lives in the instance folder besides the settings: the generated secret key."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from .config import ConfigError


def ensure_secret_key(instance: Path) -> str:
    """Return the key kept in ``<instance>/secret_key``, creating it (mode 0600) on first use.

    ``O_EXCL`` makes the creation safe when several worker processes start at once: one writes,
    the others read what it wrote.
    """
    path = instance / "secret_key"
    instance.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(48))
    return _read_key(path)


def _read_key(path: Path) -> str:
    for _ in range(50):
        key = path.read_text().strip()
        if key:
            return key
        # Another process created the file an instant ago and has not written it yet.
        time.sleep(0.01)
    raise ConfigError(f"{path} is empty; delete it to have a new key generated")
