"""Name the app in the events of signing in to apps and out of them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("login_events", sa.Column("app_name", sa.String(100), nullable=True))


def downgrade() -> None:
    # SQLite drops a column only by copying the table, which batch mode does.
    with op.batch_alter_table("login_events") as table:
        table.drop_column("app_name")
