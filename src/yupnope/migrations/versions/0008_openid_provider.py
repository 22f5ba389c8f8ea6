"""Add the OpenID Connect provider: signing keys, clients, codes, tokens, consents, subjects.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

Nothing is made here: the first signing keys are made when the provider first needs them,
and a user's subject at their first sign-in to an app.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _owner(table: str, primary_key: bool = False) -> sa.Column[int]:
    column = "user_id" if table == "users" else "client_row"
    return sa.Column(
        column,
        sa.Integer(),
        sa.ForeignKey(f"{table}.id", ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "oidc_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("alg", sa.String(16), nullable=False),
        sa.Column("sealed_private", sa.Text(), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        _when("created_at"),
        _when("retired_at", nullable=True),
    )
    op.create_table(
        "oidc_clients",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("secret_digest", sa.String(64), nullable=True),
        sa.Column("redirect_uris", sa.Text(), nullable=False),
        sa.Column("scopes", sa.String(200), nullable=False),
        sa.Column("allowed_groups", sa.String(1000), nullable=False),
        sa.Column("consent", sa.Boolean(), nullable=False),
        sa.Column("id_token_alg", sa.String(16), nullable=False),
        _when("created_at"),
    )
    op.create_table(
        "oidc_codes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code_digest", sa.String(64), nullable=False, unique=True),
        _owner("oidc_clients"),
        _owner("users"),
        sa.Column("family", sa.String(64), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("nonce", sa.String(512), nullable=True),
        sa.Column("code_challenge", sa.String(128), nullable=True),
        sa.Column("code_challenge_method", sa.String(16), nullable=True),
        _when("auth_time"),
        sa.Column("amr", sa.String(100), nullable=False),
        sa.Column("acr", sa.String(16), nullable=False),
        _when("expires_at"),
        _when("used_at", nullable=True),
    )
    op.create_index("ix_oidc_codes_user_id", "oidc_codes", ["user_id"])
    op.create_table(
        "oidc_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        _owner("oidc_clients"),
        _owner("users"),
        sa.Column("family", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("access_digest", sa.String(64), nullable=False, unique=True),
        _when("access_expires_at"),
        sa.Column("refresh_digest", sa.String(64), nullable=True, unique=True),
        _when("refresh_expires_at", nullable=True),
        _when("auth_time"),
        sa.Column("amr", sa.String(100), nullable=False),
        sa.Column("acr", sa.String(16), nullable=False),
        _when("created_at"),
        _when("revoked_at", nullable=True),
    )
    op.create_index("ix_oidc_tokens_user_id", "oidc_tokens", ["user_id"])
    op.create_index("ix_oidc_tokens_family", "oidc_tokens", ["family"])
    op.create_table(
        "oidc_consents",
        _owner("users", primary_key=True),
        _owner("oidc_clients", primary_key=True),
        sa.Column("scope", sa.String(200), nullable=False),
        _when("granted_at"),
    )
    op.create_table(
        "oidc_subjects",
        _owner("users", primary_key=True),
        sa.Column("subject", sa.String(64), nullable=False, unique=True),
    )


def downgrade() -> None:
    op.drop_table("oidc_subjects")
    op.drop_table("oidc_consents")
    op.drop_index("ix_oidc_tokens_family", table_name="oidc_tokens")
    op.drop_index("ix_oidc_tokens_user_id", table_name="oidc_tokens")
    op.drop_table("oidc_tokens")
    op.drop_index("ix_oidc_codes_user_id", table_name="oidc_codes")
    op.drop_table("oidc_codes")
    op.drop_table("oidc_clients")
    op.drop_table("oidc_keys")
