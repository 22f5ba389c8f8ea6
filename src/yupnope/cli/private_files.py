"""Write a file only its owner may read, whole or not at all: ``users export``'s password hashes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click


def write_private(path: Path, text: str, replace: bool) -> None:
    """Write ``text`` to ``path`` with mode 0600; an existing file only when ``replace`` says so.

    The text goes to a temporary file beside ``path`` (mkstemp makes it 0600 from the start,
    so no other user ever sees it readable), then takes ``path``'s name in one step: a link,
    which fails when the name is taken, or a rename over it. A failure leaves no half-written
    file, and an interrupted export no file at all.
    """
    folder = path.parent
    try:
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise click.ClickException(f"cannot write in {folder}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
    except FileExistsError:
        raise click.ClickException(f"{path} exists; give --force to replace it") from None
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)
