"""Query the provider's long-lived rows: signing keys, registered clients, consents, subjects."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session as OrmSession

from ..provider_tables import Consent, OidcClient, SigningKey, Subject


class AppRows:
    """Read and write the provider's keys, clients, consents and subjects."""

    def __init__(self, session: OrmSession) -> None:
        self.session = session

    def keys(self) -> Sequence[SigningKey]:
        """Return every signing key, newest first."""
        query = select(SigningKey).order_by(SigningKey.created_at.desc(), SigningKey.kid)
        return self.session.scalars(query).all()

    def add_key(self, record: SigningKey) -> None:
        """Insert a signing key."""
        self.session.add(record)
        self.session.flush()

    def retire_keys(self, now: datetime, but: Sequence[str]) -> int:
        """Retire every key still signing, but those of ``but``; return how many."""
        query = (
            update(SigningKey)
            .where(SigningKey.retired_at.is_(None), SigningKey.kid.not_in(but))
            .values(retired_at=now)
        )
        result = self.session.execute(query)
        return result.rowcount  # type: ignore[attr-defined, no-any-return]

    def delete_keys_retired_before(self, when: datetime) -> int:
        """Delete the keys retired before ``when``; return how many."""
        query = delete(SigningKey).where(SigningKey.retired_at < when)
        result = self.session.execute(query)
        return result.rowcount  # type: ignore[attr-defined, no-any-return]

    def add_client(self, record: OidcClient) -> OidcClient:
        """Insert a client and return it with its row id."""
        self.session.add(record)
        self.session.flush()
        return record

    def client(self, client_id: str) -> OidcClient | None:
        """Return the client of ``client_id``, or None."""
        query = select(OidcClient).where(OidcClient.client_id == client_id)
        return self.session.scalars(query).one_or_none()

    def client_by_row(self, row: int) -> OidcClient | None:
        """Return the client of row id ``row``, or None."""
        return self.session.get(OidcClient, row)

    def clients(self) -> Sequence[OidcClient]:
        """Return every client, oldest first."""
        return self.session.scalars(select(OidcClient).order_by(OidcClient.id)).all()

    def set_secret(self, client_id: str, digest: str) -> bool:
        """Replace a confidential client's secret digest; return whether there was one."""
        query = (
            update(OidcClient)
            .where(OidcClient.client_id == client_id, OidcClient.secret_digest.is_not(None))
            .values(secret_digest=digest)
        )
        result = self.session.execute(query)
        return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    def delete_client(self, client_id: str) -> bool:
        """Delete a client with its codes, tokens and consents; return whether it was there."""
        query = delete(OidcClient).where(OidcClient.client_id == client_id)
        result = self.session.execute(query)
        return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    def consent(self, user_id: int, client_row: int) -> Consent | None:
        """Return what the user allowed the client, or None."""
        return self.session.get(Consent, (user_id, client_row))

    def remember_consent(self, user_id: int, client_row: int, scope: str, now: datetime) -> None:
        """Record that the user allowed the client ``scope`` (replacing what they allowed)."""
        found = self.consent(user_id, client_row)
        if found is None:
            self.session.add(
                Consent(user_id=user_id, client_row=client_row, scope=scope, granted_at=now)
            )
        else:
            found.scope = scope
            found.granted_at = now
        self.session.flush()

    def forget_consents_of(self, user_id: int, client_row: int | None = None) -> int:
        """Delete a user's consents (to one client, or all); return how many."""
        query = delete(Consent).where(Consent.user_id == user_id)
        if client_row is not None:
            query = query.where(Consent.client_row == client_row)
        result = self.session.execute(query)
        return result.rowcount  # type: ignore[attr-defined, no-any-return]

    def subject_of(self, user_id: int) -> str | None:
        """Return the subject apps know the user by, or None before their first."""
        return self.session.scalar(select(Subject.subject).where(Subject.user_id == user_id))

    def add_subject(self, user_id: int, subject: str) -> None:
        """Record the user's subject (a duplicate key if another request made one first)."""
        self.session.add(Subject(user_id=user_id, subject=subject))
        self.session.flush()
