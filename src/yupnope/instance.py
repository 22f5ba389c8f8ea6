"""Keep the instance folder private, and the generated secret key in it.

The folder holds the SQLite database (password hashes, session digests, the event log) and the
secret key: what yupnope creates there is its owner's alone, the folder 0700 and the files 0600,
whatever the umask.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
import time
from pathlib import Path

from .errors import ConfigError

log = logging.getLogger(__name__)

#: Mode of an instance folder yupnope creates: its owner's alone.
FOLDER_MODE = 0o700

#: The permission bits of every other user, which no instance folder needs.
_OTHERS = stat.S_IRWXO


def close_to_others(instance: Path) -> None:
    """Take every other user's access away from an existing instance folder, with a warning.

    The owner's and the group's bits are left as they are: docs/deploy.md and the systemd unit
    (StateDirectoryMode=0750) give the service's own group read access on purpose. A folder
    yupnope may not change is left as it is, with the warning only.
    """
    try:
        mode = stat.S_IMODE(instance.stat().st_mode)
    except FileNotFoundError:
        return
    if not mode & _OTHERS:
        return
    try:
        os.chmod(instance, mode & ~_OTHERS)
    except OSError as exc:
        log.warning(
            "the instance folder %s is open to every user (mode %04o) and could not be closed "
            "(%s): run chmod o-rwx on it",
            instance,
            mode,
            exc.strerror,
        )
        return
    log.warning(
        "the instance folder %s was open to every user (mode %04o); now %04o",
        instance,
        mode,
        mode & ~_OTHERS,
    )


def ensure_secret_key(instance: Path) -> str:
    """Return the key kept in ``<instance>/secret_key``, creating it (mode 0600) on first use.

    ``O_EXCL`` makes the creation safe when several worker processes start at once: one writes,
    the others read what it wrote.
    """
    path = instance / "secret_key"
    instance.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
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
