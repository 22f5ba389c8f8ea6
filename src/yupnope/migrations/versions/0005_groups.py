"""Add groups and their members, and the group an event in the log was about.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

Every existing user starts in no group.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "groups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "group_members",
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "group_id",
            sa.Integer(),
            sa.ForeignKey("groups.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    )
    op.create_index("ix_group_members_group_id", "group_members", ["group_id"])
    # A nullable column needs no table copy, on SQLite either.
    op.add_column("login_events", sa.Column("group_name", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("login_events") as batch:
        batch.drop_column("group_name")
    op.drop_index("ix_group_members_group_id", table_name="group_members")
    op.drop_table("group_members")
    op.drop_table("groups")
