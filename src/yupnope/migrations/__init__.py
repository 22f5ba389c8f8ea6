"""Bring the database schema to the version this code expects, with Alembic.

The migrations themselves are in ``versions/``; ``env.py`` runs them on the engine given here.
"""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine

from ..errors import SchemaError

__all__ = ["NOTES", "SchemaError", "require_head", "upgrade"]


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("yupnope") / "migrations"))
    config.attributes["engine"] = engine
    return config


#: Key in the Alembic config's ``attributes`` under which a migration leaves notes.
NOTES = "yupnope_notes"


def upgrade(engine: Engine) -> list[str]:
    """Apply every migration the database lacks, or raise SchemaError when it is too new.

    Returns what the migrations that ran want the operator to know (empty, nearly always):
    0004 names the existing accounts whose names look alike.
    """
    config = _config(engine)
    try:
        command.upgrade(config, "head")
    except CommandError:
        raise SchemaError(_too_new(_applied(engine))) from None
    notes: list[str] = config.attributes.get(NOTES, [])
    return notes


def require_head(engine: Engine, which: str) -> None:
    """Raise SchemaError unless the database is at this version's newest revision.

    For a command that reads a database and must leave it as it was: it is never migrated
    here, so a backup of an older version stays that version's. ``which`` names it.
    """
    script = ScriptDirectory.from_config(_config(engine))
    heads = tuple(script.get_heads())
    applied = _applied(engine)
    if set(applied) == set(heads):
        return
    if not set(applied) <= {revision.revision for revision in script.walk_revisions()}:
        raise SchemaError(f"{which}: {_too_new(applied)}")
    raise SchemaError(
        f"{which}: the database schema is at revision {', '.join(applied) or 'none'}, behind "
        f"this version's {', '.join(heads)}; run `yupnope db upgrade` on it first"
    )


def _applied(engine: Engine) -> tuple[str, ...]:
    """Return the revisions the database is at: none for an empty one."""
    with engine.connect() as connection:
        return tuple(MigrationContext.configure(connection).get_current_heads())


def _too_new(applied: tuple[str, ...]) -> str:
    """Say that the database is at a revision this version does not know."""
    return (
        f"the database schema is at revision {', '.join(applied) or 'unknown'}, which this "
        "version of yupnope does not know (a newer version made it); run that version, "
        "or restore a backup made with this one"
    )
