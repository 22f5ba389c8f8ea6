"""Declare the OpenID Connect provider's tables: keys, clients, codes, tokens, consents, subjects.

Every secret a client or an app holds (a client secret, a code, an access or refresh token) is
kept as its sha256 only, like the sessions' tokens; the signing keys' private halves are sealed
under the server's secret key (security/sealing.py), since the server must read them back.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base, UTCDateTime


class SigningKey(Base):
    """Record one key the provider signs ID tokens with, by its key id."""

    __tablename__ = "oidc_keys"

    #: The JWK's ``kid``: random, so a key's id says nothing of its age.
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The JWS algorithm it signs with: ``RS256`` or ``ES256``.
    alg: Mapped[str] = mapped_column(String(16))
    #: The private JWK as JSON, sealed under the kid (security/sealing.py).
    sealed_private: Mapped[str] = mapped_column(Text())
    #: The public JWK as JSON, published at the JWKS endpoint.
    public_jwk: Mapped[str] = mapped_column(Text())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: When a newer key took over: the key signs nothing more, but stays published until the
    #: last ID token it signed has expired.
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class OidcClient(Base):
    """Record one app the operator registered to sign its users in with yupnope."""

    __tablename__ = "oidc_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The public identifier the app sends: random, never reused.
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    #: sha256 of the secret, shown once; None for a public client (PKCE instead).
    secret_digest: Mapped[str | None] = mapped_column(String(64), default=None)
    #: The redirect URIs, one per line, each matched exactly.
    redirect_uris: Mapped[str] = mapped_column(Text())
    #: The scopes it may ask for, separated by spaces.
    scopes: Mapped[str] = mapped_column(String(200))
    #: The groups whose members may use it, separated by commas; empty for everyone.
    allowed_groups: Mapped[str] = mapped_column(String(1000), default="")
    #: Whether its users are asked once for their consent (per set of scopes).
    consent: Mapped[bool] = mapped_column(default=True)
    #: The algorithm its ID tokens are signed with: ``RS256`` (OpenID Connect's default) or
    #: ``ES256``.
    id_token_alg: Mapped[str] = mapped_column(String(16), default="RS256")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuthorizationCode(Base):
    """Record one authorization code, by its digest, until it is redeemed or expires."""

    __tablename__ = "oidc_codes"
    __table_args__ = (Index("ix_oidc_codes_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code_digest: Mapped[str] = mapped_column(String(64), unique=True)
    client_row: Mapped[int] = mapped_column(ForeignKey("oidc_clients.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: The grant its tokens will belong to: a second redemption ends them all (RFC 6749 4.1.2).
    family: Mapped[str] = mapped_column(String(64))
    redirect_uri: Mapped[str] = mapped_column(Text())
    scope: Mapped[str] = mapped_column(String(200))
    nonce: Mapped[str | None] = mapped_column(String(512), default=None)
    code_challenge: Mapped[str | None] = mapped_column(String(128), default=None)
    code_challenge_method: Mapped[str | None] = mapped_column(String(16), default=None)
    #: What the login proved, copied from the session: auth_time, amr and acr of the ID token.
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime())
    amr: Mapped[str] = mapped_column(String(100))
    acr: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Set by the one redemption that wins; the row stays until it expires so that a second
    #: one is recognised as a replay.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class OidcToken(Base):
    """Record one access token and, with ``offline_access``, its refresh token."""

    __tablename__ = "oidc_tokens"
    __table_args__ = (
        Index("ix_oidc_tokens_user_id", "user_id"),
        Index("ix_oidc_tokens_family", "family"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_row: Mapped[int] = mapped_column(ForeignKey("oidc_clients.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: The grant (one code's redemption and every refresh after it).
    family: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(200))
    access_digest: Mapped[str] = mapped_column(String(64), unique=True)
    access_expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    refresh_digest: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    refresh_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime())
    amr: Mapped[str] = mapped_column(String(100))
    acr: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Set when revoked or when its refresh token was used: presenting a used refresh token
    #: again ends the whole family (OAuth 2.0 Security BCP, RFC 9700 4.14.2).
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Consent(Base):
    """Record the scopes a user allowed a client, so it is not asked again for them."""

    __tablename__ = "oidc_consents"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    client_row: Mapped[int] = mapped_column(
        ForeignKey("oidc_clients.id", ondelete="CASCADE"), primary_key=True
    )
    #: The scopes allowed, sorted and separated by spaces.
    scope: Mapped[str] = mapped_column(String(200))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Subject(Base):
    """Record the ``sub`` the apps know a user by: random, made at the first sign-in to an app.

    Never the name (which can change) nor the row id (which SQLite may hand out again after a
    removal): an app must not take a new account for an old one.
    """

    __tablename__ = "oidc_subjects"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    subject: Mapped[str] = mapped_column(String(64), unique=True)
