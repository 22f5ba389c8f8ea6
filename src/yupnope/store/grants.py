"""Query the provider's grants: authorization codes and the tokens handed out for them.

Each single use is one conditional statement whose row count says whether it won, as in
store/factors.py: a code is redeemed once, a refresh token rotated once, however many workers
race.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, delete, func, or_, select, update
from sqlalchemy.orm import Session as OrmSession

from ..provider_tables import AuthorizationCode, OidcClient, OidcToken


class GrantRows:
    """Read and write authorization codes and OpenID Connect tokens."""

    def __init__(self, session: OrmSession) -> None:
        self.session = session

    def add_code(self, record: AuthorizationCode) -> None:
        """Insert an authorization code."""
        self.session.add(record)
        self.session.flush()

    def code(self, digest: str) -> AuthorizationCode | None:
        """Return the code of ``digest``, used or not, or None."""
        query = select(AuthorizationCode).where(AuthorizationCode.code_digest == digest)
        return self.session.scalars(query).one_or_none()

    def redeem_code(self, code_id: int, now: datetime) -> bool:
        """Mark an unused, unexpired code used; return whether this call did."""
        query = (
            update(AuthorizationCode)
            .where(
                AuthorizationCode.id == code_id,
                AuthorizationCode.used_at.is_(None),
                AuthorizationCode.expires_at > now,
            )
            .values(used_at=now)
        )
        result = self.session.execute(query)
        return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    def add_token(self, record: OidcToken) -> OidcToken:
        """Insert a token and return it with its id."""
        self.session.add(record)
        self.session.flush()
        return record

    def by_access(self, digest: str) -> OidcToken | None:
        """Return the token of an access token's digest, or None."""
        query = select(OidcToken).where(OidcToken.access_digest == digest)
        return self.session.scalars(query).one_or_none()

    def by_refresh(self, digest: str) -> OidcToken | None:
        """Return the token of a refresh token's digest, or None."""
        query = select(OidcToken).where(OidcToken.refresh_digest == digest)
        return self.session.scalars(query).one_or_none()

    def revoke(self, token_id: int, now: datetime) -> bool:
        """Revoke a live token; return whether this call did (a rotation takes it once)."""
        query = (
            update(OidcToken)
            .where(OidcToken.id == token_id, OidcToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        result = self.session.execute(query)
        return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    def revoke_family(self, family: str, now: datetime) -> int:
        """Revoke every live token of a grant; return how many."""
        query = (
            update(OidcToken)
            .where(OidcToken.family == family, OidcToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        result = self.session.execute(query)
        return result.rowcount  # type: ignore[attr-defined, no-any-return]

    def families(self, user_id: int | None = None) -> Sequence[tuple[OidcToken, OidcClient]]:
        """Return the newest live token of each grant (of one user, or all), with its client."""
        query = _newest_live()
        if user_id is not None:
            query = query.where(OidcToken.user_id == user_id)
        return [(token, client) for token, client in self.session.execute(query).all()]

    def family(self, family: str) -> tuple[OidcToken, OidcClient] | None:
        """Return the newest live token of one grant, with its client; None if it has ended."""
        query = _newest_live().where(OidcToken.family == family)
        found = self.session.execute(query).one_or_none()
        return None if found is None else (found[0], found[1])

    def delete_of(self, user_id: int) -> None:
        """Delete a user's codes and tokens: they end with the user's other credentials."""
        self.session.execute(delete(AuthorizationCode).where(AuthorizationCode.user_id == user_id))
        self.session.execute(delete(OidcToken).where(OidcToken.user_id == user_id))

    def delete_expired(self, now: datetime) -> int:
        """Delete expired codes and the tokens nothing can use any more; return how many."""
        codes = delete(AuthorizationCode).where(AuthorizationCode.expires_at <= now)
        dead = or_(
            OidcToken.refresh_expires_at <= now,
            (OidcToken.refresh_expires_at.is_(None) & (OidcToken.access_expires_at <= now)),
        )
        tokens = delete(OidcToken).where(dead)
        deleted: int = self.session.execute(codes).rowcount  # type: ignore[attr-defined]
        deleted += self.session.execute(tokens).rowcount  # type: ignore[attr-defined]
        return deleted


def _newest_live() -> Select[OidcToken, OidcClient]:
    """Return the query of each live grant's newest token with its client, oldest grant first."""
    newest = (
        select(func.max(OidcToken.id))
        .where(OidcToken.revoked_at.is_(None))
        .group_by(OidcToken.family)
    )
    return (
        select(OidcToken, OidcClient)
        .join(OidcClient, OidcClient.id == OidcToken.client_row)
        .where(OidcToken.id.in_(newest))
        .order_by(OidcToken.id)
    )
