"""Bring the database schema to the version this code expects, with Alembic.

The migrations themselves are in ``versions/``; ``env.py`` runs them on the engine given here.
"""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.util.exc import CommandError
from sqlalchemy import Engine

from ..errors import SchemaError

__all__ = ["NOTES", "SchemaError", "upgrade"]


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
        with engine.connect() as connection:
            applied = MigrationContext.configure(connection).get_current_heads()
        raise SchemaError(
            f"the database schema is at revision {', '.join(applied) or 'unknown'}, which this "
            "version of yupnope does not know (a newer version made it); run that version, "
            "or restore a backup made with this one"
        ) from None
    notes: list[str] = config.attributes.get(NOTES, [])
    return notes
