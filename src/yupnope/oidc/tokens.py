"""Hand out, redeem, rotate and revoke what apps hold: codes, access and refresh tokens.

Each is random (security/tokens.py) and kept as its sha256 only. A code is redeemed once; a
second redemption revokes what the first one gave (RFC 6749 4.1.2). A refresh token is rotated
at each use; a used one presented again means it was stolen, and its whole grant ends (OAuth
2.0 Security BCP, RFC 9700 4.14.2). Everything ends with the user's other credentials
(store.Store.end_credentials_of).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..client import Client
from ..kinds import EventKind
from ..provider_tables import AuthorizationCode, OidcToken
from ..security import tokens
from ..store import Store
from .claims import Authentication, EndUser
from .clients import RegisteredClient

#: How long a code may wait for its redemption (RFC 6749 4.1.2: ten minutes at most).
CODE_LIFETIME = timedelta(minutes=1)

#: How long an access token opens the userinfo endpoint.
ACCESS_LIFETIME = timedelta(hours=1)

#: How long a refresh token may wait for its use; each use gives a new one.
REFRESH_LIFETIME = timedelta(days=30)


def _auth(record: AuthorizationCode | OidcToken) -> Authentication:
    return Authentication(at=record.auth_time, amr=tuple(record.amr.split()), acr=record.acr)


@dataclass(frozen=True)
class IssuedCode:
    """Hold a redeemed code as authlib's grant reads it (its AuthorizationCodeMixin)."""

    record: AuthorizationCode

    @property
    def user_id(self) -> int:
        return self.record.user_id

    @property
    def auth(self) -> Authentication:
        return _auth(self.record)

    @property
    def nonce(self) -> str | None:
        return self.record.nonce

    @property
    def code_challenge(self) -> str | None:
        return self.record.code_challenge

    @property
    def code_challenge_method(self) -> str | None:
        return self.record.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.record.redirect_uri

    def get_scope(self) -> str:
        return self.record.scope


@dataclass(frozen=True)
class IssuedToken:
    """Hold a token as authlib's endpoints read it (its TokenMixin): the access or refresh one."""

    record: OidcToken
    #: Which of the row's two tokens was presented: ``access_token`` or ``refresh_token``.
    kind: str
    now: datetime

    @property
    def auth(self) -> Authentication:
        return _auth(self.record)

    def check_client(self, client: RegisteredClient) -> bool:
        return self.record.client_row == client.row

    def get_scope(self) -> str:
        return self.record.scope

    def expires_at(self) -> datetime:
        """Return when the presented token expires."""
        if self.kind == "refresh_token" and self.record.refresh_expires_at is not None:
            return self.record.refresh_expires_at
        return self.record.access_expires_at

    def get_expires_in(self) -> int:
        return max(0, int((self.expires_at() - self.now).total_seconds()))

    def is_expired(self) -> bool:
        return self.now >= self.expires_at()

    def is_revoked(self) -> bool:
        return self.record.revoked_at is not None


class Codes:
    """Save the codes the authorization endpoint hands out, and redeem each once."""

    def __init__(self, store: Store, caller: Client, now: datetime) -> None:
        self.store = store
        self.caller = caller
        self.now = now

    def save(self, code: str, client: RegisteredClient, end_user: EndUser, request: Any) -> None:
        """Keep a new code's digest with what its tokens will say; log the sign-in to the app.

        The event is the person's, from their browser: the code is handed out on their request
        to the authorization endpoint, not on the app's later one that redeems it.
        """
        data = request.payload.data
        auth = end_user.authentication
        with self.store.tx.write():
            self.store.events.record(
                EventKind.APP_SIGNED_IN,
                self.now,
                self.caller,
                end_user.user.id,
                end_user.user.username,
                app_name=client.name,
            )
            self.store.grants.add_code(
                AuthorizationCode(
                    code_digest=tokens.digest(code),
                    client_row=client.row,
                    user_id=end_user.user.id,
                    family=secrets.token_urlsafe(24),
                    redirect_uri=request.payload.redirect_uri or client.redirect_uris[0],
                    scope=request.scope,
                    nonce=data.get("nonce"),
                    code_challenge=data.get("code_challenge"),
                    code_challenge_method=data.get("code_challenge_method"),
                    auth_time=auth.at,
                    amr=" ".join(auth.amr),
                    acr=auth.acr,
                    expires_at=self.now + CODE_LIFETIME,
                )
            )

    def redeem(self, code: str, client: RegisteredClient) -> IssuedCode | None:
        """Return the code if this is its first redemption by its client, in time; else None.

        A code redeemed before revokes every token its first redemption gave.
        """
        record = self.store.grants.code(tokens.digest(code))
        if record is None or record.client_row != client.row:
            return None
        with self.store.tx.write():
            if self.store.grants.redeem_code(record.id, self.now):
                return IssuedCode(record)
            self.store.grants.revoke_family(record.family, self.now)
        return None


class Tokens:
    """Make, keep, rotate, find and revoke the access and refresh tokens of apps."""

    def __init__(self, store: Store, now: datetime) -> None:
        self.store = store
        self.now = now

    def generate(
        self,
        grant_type: str,
        client: RegisteredClient,
        user: EndUser | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        """Return a new bearer token answer; a refresh token only with ``offline_access``."""
        del grant_type, client, user
        answer: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": tokens.new_token(),
            "expires_in": expires_in or int(ACCESS_LIFETIME.total_seconds()),
            "scope": scope or "",
        }
        if include_refresh_token and "offline_access" in (scope or "").split():
            answer["refresh_token"] = tokens.new_token()
        return answer

    def save(self, answer: dict[str, Any], request: Any) -> None:
        """Keep the digests of a token answer's tokens, in the grant they continue."""
        before: IssuedCode | IssuedToken | None = request.authorization_code or getattr(
            request, "refresh_token", None
        )
        if before is None:
            raise LookupError("a token saved without the code or refresh token it came from")
        end_user: EndUser = request.user
        auth = end_user.authentication
        refresh = answer.get("refresh_token")
        with self.store.tx.write():
            self.store.grants.add_token(
                OidcToken(
                    client_row=request.client.row,
                    user_id=end_user.user.id,
                    family=before.record.family,
                    scope=answer["scope"],
                    access_digest=tokens.digest(answer["access_token"]),
                    access_expires_at=self.now + timedelta(seconds=answer["expires_in"]),
                    refresh_digest=None if refresh is None else tokens.digest(refresh),
                    refresh_expires_at=None if refresh is None else self.now + REFRESH_LIFETIME,
                    auth_time=auth.at,
                    amr=" ".join(auth.amr),
                    acr=auth.acr,
                    created_at=self.now,
                )
            )

    def rotate(self, refresh_token: str, client: RegisteredClient) -> IssuedToken | None:
        """Take a live refresh token of ``client`` for its one use; None if it cannot be.

        A refresh token used (or revoked) before ends its whole grant: the thief's use or the
        owner's, whichever came second, finds every token of the grant dead.
        """
        record = self.store.grants.by_refresh(tokens.digest(refresh_token))
        if record is None or record.client_row != client.row:
            return None
        found = IssuedToken(record, "refresh_token", self.now)
        with self.store.tx.write():
            if found.is_expired():
                return None
            if self.store.grants.revoke(record.id, self.now):
                return found
            self.store.grants.revoke_family(record.family, self.now)
        return None

    def find(self, token: str, hint: str | None = None) -> IssuedToken | None:
        """Return the token an app presents, access or refresh, live or not, or None."""
        digest = tokens.digest(token)
        kinds = (
            ("refresh_token", "access_token")
            if hint == "refresh_token"
            else (
                "access_token",
                "refresh_token",
            )
        )
        for kind in kinds:
            if kind == "access_token":
                record = self.store.grants.by_access(digest)
            else:
                record = self.store.grants.by_refresh(digest)
            if record is not None:
                return IssuedToken(record, kind, self.now)
        return None

    def revoke_grant(self, token: IssuedToken) -> None:
        """End the grant the token belongs to: every access and refresh token of it."""
        with self.store.tx.write():
            self.store.grants.revoke_family(token.record.family, self.now)

    def live_access(self, access_token: str) -> IssuedToken | None:
        """Return the live access token an app presents (to the userinfo endpoint), or None."""
        record = self.store.grants.by_access(tokens.digest(access_token))
        if record is None:
            return None
        found = IssuedToken(record, "access_token", self.now)
        return None if found.is_expired() or found.is_revoked() else found
