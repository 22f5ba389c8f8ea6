"""Run Alembic migrations on the engine that ``yupnope.migrations.upgrade`` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, func, select

from yupnope import mail_tables, provider_tables  # noqa: F401 (they declare tables on Base)
from yupnope.db import WRITE_OPTION
from yupnope.models import Base

engine: Engine = context.config.attributes["engine"]

#: Advisory lock key that every yupnope process migrating one PostgreSQL database shares.
MIGRATION_LOCK = 0x79757020  # "yup "

# A write transaction from the start (BEGIN IMMEDIATE on SQLite): two commands migrating a new
# database at once then take turns instead of both creating the tables.
with engine.connect().execution_options(**{WRITE_OPTION: True}) as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Instances starting at once migrate one after another: the lock is held until the
            # transaction ends, and the next one then finds nothing left to do.
            connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK)))
        context.run_migrations()
    connection.commit()
