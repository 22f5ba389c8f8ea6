"""Query a user's second factors (authenticator app, recovery codes) and half-done logins.

Passkeys have their own rows (store/passkeys.py); ``has_confirmed`` counts them too.

Each single use is one conditional statement whose row count says whether it won: a code's
step moves forward, a recovery code's row goes, a challenge's row goes. Of two workers taking
the same one at once, exactly one sees its row change.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session as OrmSession

from ..models import LoginChallenge, Passkey, RecoveryCode, TotpFactor


class FactorRows:
    """Read and write authenticator apps, recovery codes and login challenges."""

    def __init__(self, session: OrmSession) -> None:
        self.session = session

    def totp(self, user_id: int) -> TotpFactor | None:
        """Return the user's authenticator app, confirmed or still enrolling, or None."""
        return self.session.get(TotpFactor, user_id, populate_existing=True)

    def has_confirmed(self, user_id: int) -> bool:
        """Return whether the user has a second factor that a login must ask for.

        A confirmed authenticator app or a passkey: an account with passkeys alone takes
        a second step after its password too.
        """
        return self.has_totp(user_id) or (
            self.session.scalar(select(Passkey.id).where(Passkey.user_id == user_id).limit(1))
            is not None
        )

    def has_totp(self, user_id: int) -> bool:
        """Return whether the user has a confirmed authenticator app."""
        query = select(TotpFactor.user_id).where(
            TotpFactor.user_id == user_id, TotpFactor.confirmed_at.is_not(None)
        )
        return self.session.scalar(query) is not None

    def start_totp(self, user_id: int, sealed_secret: str, now: datetime) -> None:
        """Put an unconfirmed authenticator app in place of any unconfirmed one of the user."""
        self.session.execute(
            delete(TotpFactor).where(
                TotpFactor.user_id == user_id, TotpFactor.confirmed_at.is_(None)
            )
        )
        self.session.execute(
            insert(TotpFactor).values(user_id=user_id, sealed_secret=sealed_secret, created_at=now)
        )

    def confirm_totp(self, user_id: int, created_at: datetime, step: int, now: datetime) -> bool:
        """Confirm the enrolment begun at ``created_at``; False if another replaced it meanwhile."""
        result = self.session.execute(
            update(TotpFactor)
            .where(
                TotpFactor.user_id == user_id,
                TotpFactor.created_at == created_at,
                TotpFactor.confirmed_at.is_(None),
            )
            .values(confirmed_at=now, last_step=step)
        )
        return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    def take_step(self, user_id: int, step: int) -> bool:
        """Record ``step`` as the last one used, only if it is after it; return whether it was.

        The replay guard: the condition and the write are one statement, so a code used on
        one worker is refused on every other, and two uses at once let one through.
        """
        result = self.session.execute(
            update(TotpFactor)
            .where(
                TotpFactor.user_id == user_id,
                TotpFactor.confirmed_at.is_not(None),
                (TotpFactor.last_step.is_(None)) | (TotpFactor.last_step < step),
            )
            .values(last_step=step)
        )
        return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    def delete_totp(self, user_id: int) -> int:
        """Delete the user's authenticator app; return 0 or 1."""
        result = self.session.execute(delete(TotpFactor).where(TotpFactor.user_id == user_id))
        return result.rowcount  # type: ignore[attr-defined, no-any-return]

    def replace_recovery_codes(self, user_id: int, digests: Iterable[str], now: datetime) -> None:
        """Put new recovery codes (their digests) in place of all the user's old ones."""
        self.delete_recovery_codes(user_id)
        rows = [{"user_id": user_id, "code_digest": d, "created_at": now} for d in digests]
        self.session.execute(insert(RecoveryCode), rows)

    def take_recovery_code(self, user_id: int, code_digest: str) -> bool:
        """Delete one of the user's recovery codes by its digest; return whether it was there."""
        result = self.session.execute(
            delete(RecoveryCode).where(
                RecoveryCode.user_id == user_id, RecoveryCode.code_digest == code_digest
            )
        )
        return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    def recovery_codes_left(self, user_id: int) -> int:
        """Return how many unused recovery codes the user has."""
        query = select(func.count()).select_from(RecoveryCode)
        return self.session.scalar(query.where(RecoveryCode.user_id == user_id)) or 0

    def delete_recovery_codes(self, user_id: int) -> int:
        """Delete every recovery code of the user; return how many went."""
        result = self.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        return result.rowcount  # type: ignore[attr-defined, no-any-return]

    def add_challenge(self, record: LoginChallenge) -> None:
        """Insert a half-done login."""
        self.session.add(record)
        self.session.flush()

    def challenge(self, token_digest: str, kind: str) -> LoginChallenge | None:
        """Return the half-done login of ``kind`` whose token hashes to ``token_digest``."""
        query = select(LoginChallenge).where(
            LoginChallenge.token_digest == token_digest, LoginChallenge.kind == kind
        )
        return self.session.scalar(query)

    def take_challenge(self, challenge_id: int) -> bool:
        """Delete a half-done login; return whether this call was the one that did."""
        result = self.session.execute(
            delete(LoginChallenge).where(LoginChallenge.id == challenge_id)
        )
        return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    def delete_challenges_of(self, user_id: int) -> int:
        """Delete every half-done login of the user; return how many went."""
        result = self.session.execute(
            delete(LoginChallenge).where(LoginChallenge.user_id == user_id)
        )
        return result.rowcount  # type: ignore[attr-defined, no-any-return]

    def delete_expired_challenges(self, now: datetime) -> int:
        """Delete half-done logins past their end."""
        result = self.session.execute(
            delete(LoginChallenge).where(LoginChallenge.expires_at <= now)
        )
        return result.rowcount  # type: ignore[attr-defined, no-any-return]
