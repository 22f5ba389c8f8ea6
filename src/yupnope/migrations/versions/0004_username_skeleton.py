"""Add each user's name skeleton (UTS #39), unique, so names that look alike are one account.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

Existing accounts whose names look alike (``alice`` and ``аlice`` with a Cyrillic а) are all
kept: the oldest holds the skeleton, the later ones keep none, and each pair is reported as a
note that every command prints once (``migrations.upgrade``). Failing instead would leave the
operator no command to run, since every command migrates first, and no account is lost or
renamed behind anyone's back; ``yupnope users list`` marks the later ones until the operator
removes them or keeps them knowingly.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from yupnope import usernames
from yupnope.migrations import NOTES

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

users = sa.table(
    "users",
    sa.column("id", sa.Integer()),
    sa.column("username", sa.String()),
    sa.column("username_key", sa.String()),
    sa.column("username_skeleton", sa.String()),
)


def upgrade() -> None:
    # Adding a nullable column and a unique index needs no table copy, on SQLite either.
    op.add_column("users", sa.Column("username_skeleton", sa.String(512), nullable=True))
    connection = op.get_bind()
    holders: dict[str, str] = {}
    filled: list[dict[str, object]] = []
    notes: list[str] = context.config.attributes.setdefault(NOTES, [])
    rows = sa.select(users.c.id, users.c.username, users.c.username_key).order_by(users.c.id)
    for user_id, username, key in connection.execute(rows).all():
        skeleton = usernames.skeleton(key)
        if skeleton in holders:
            notes.append(
                f"the user names {holders[skeleton]!r} and {username!r} look alike; both "
                f"accounts are kept, and `yupnope users list` marks {username!r}"
            )
            continue
        holders[skeleton] = username
        filled.append({"id_": user_id, "skeleton_": skeleton})
    if filled:
        connection.execute(
            users.update()
            .where(users.c.id == sa.bindparam("id_"))
            .values(username_skeleton=sa.bindparam("skeleton_")),
            filled,
        )
    op.create_index("ix_users_username_skeleton", "users", ["username_skeleton"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_users_username_skeleton", table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("username_skeleton")
