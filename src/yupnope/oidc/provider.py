"""Be the OpenID Connect provider for one request: authlib's server over yupnope's rows.

authlib's ``AuthorizationServer`` holds the grants and endpoints and runs the protocol; this
subclass answers its questions (which client, where tokens go) from the store, and counts each
client authentication that carries a secret on the throttle first, as a login is counted.
Made per request, like the other rules: the grants registered are a few list appends.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from authlib.oauth2 import AuthorizationServer, OAuth2Error
from authlib.oauth2.rfc6749.util import extract_basic_authorization

from ..client import Client
from ..errors import Throttled
from ..security.sealing import Sealer
from ..snapshots import UserSnapshot
from ..store import Store
from ..throttle import Throttle
from .claims import ACR_VALUES, Authentication, EndUser, subject_of
from .clients import SCOPES, Clients, RegisteredClient
from .grants import (
    CodeGrant,
    EndSession,
    IdTokens,
    Introspection,
    Pkce,
    RefreshGrant,
    RefreshIdTokens,
    Revocation,
)
from .keys import ALGORITHMS, Key, KeyRing
from .tokens import Codes, IssuedToken, Tokens


class ClientThrottled(OAuth2Error):  # type: ignore[misc]
    """Refuse a client authentication while its failures wait out the throttle (429)."""

    error = "invalid_client"
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many failed client authentications: try again in {retry_after} seconds."
        )
        self.retry_after = retry_after

    def get_headers(self) -> list[tuple[str, str]]:
        return [*super().get_headers(), ("Retry-After", str(self.retry_after))]


class Provider(AuthorizationServer):  # type: ignore[misc]
    """Answer authlib's questions from the store, for one request at ``now``."""

    def __init__(
        self,
        store: Store,
        sealer: Sealer,
        throttle: Throttle,
        issuer: str,
        client: Client,
        now: datetime,
    ) -> None:
        super().__init__()
        self.scopes_supported = list(SCOPES)
        self.store = store
        self.throttle = throttle
        self.issuer = issuer
        self.caller = client
        self.now = now
        self.clients = Clients(store)
        self.codes = Codes(store, client, now)
        self.tokens = Tokens(store, now)
        self.keys = KeyRing(store, sealer)
        self.register_token_generator("default", self.tokens.generate)
        self.register_grant(CodeGrant, [Pkce(required=True), IdTokens(require_nonce=False)])
        self.register_grant(RefreshGrant, [RefreshIdTokens()])
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)
        self.register_endpoint(EndSession)
        self.signing_key = cache(self._signing_key)

    def query_client(self, client_id: str) -> RegisteredClient | None:
        return self.clients.find(client_id)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        self.tokens.save(token, request)

    def authenticate_client(self, request: Any, methods: list[str], endpoint: str = "token") -> Any:
        """Authenticate the client as authlib does, counting each secret tried on the throttle.

        Counted on the client's own counter at this address, with a progressive delay, and on
        the address's budget of failures; a success takes the attempt back.
        """
        client_id, secret = _credentials(request)
        if not client_id or secret is None:
            return super().authenticate_client(request, methods, endpoint)
        try:
            counted = self.throttle.admit_client(client_id, self.caller.address, self.now)
        except Throttled as exc:
            raise ClientThrottled(exc.retry_after) from exc
        found = super().authenticate_client(request, methods, endpoint)
        self.throttle.succeeded(counted)
        return found

    def end_user(self, user_id: int, auth: Authentication) -> EndUser | None:
        """Return the user a grant is for, as it is now; None once removed or disabled."""
        user = self.store.users.by_id(user_id)
        if user is None or user.disabled:
            return None
        snapshot = UserSnapshot(
            id=user.id,
            username=user.username,
            username_key=user.username_key,
            password_hash=user.password_hash,
            disabled=user.disabled,
            must_change_password=user.must_change_password,
            created_at=user.created_at,
            last_login_at=user.last_login_at,
            groups=tuple(sorted(self.store.groups.of_user(user.id))),
        )
        address = self.store.mail.address_of(user.id)
        email = address.address if address is not None and address.verified_at else None
        return EndUser(snapshot, subject_of(self.store, user.id), auth, email)

    def describe(self, token: IssuedToken) -> dict[str, Any]:
        """Return what introspection says of an active token (RFC 7662 2.2)."""
        record = token.record
        client = self.store.apps.client_by_row(record.client_row)
        user = self.store.users.by_id(record.user_id)
        return {
            "active": user is not None and not user.disabled,
            "scope": record.scope,
            "client_id": client.client_id if client else None,
            "username": user.username if user else None,
            "token_type": "Bearer" if token.kind == "access_token" else "refresh_token",
            "exp": int(token.expires_at().timestamp()),
            "iat": int(record.created_at.timestamp()),
            "sub": subject_of(self.store, record.user_id) if user else None,
            "aud": client.client_id if client else None,
            "iss": self.issuer,
        }

    def _signing_key(self, alg: str) -> Key:
        return self.keys.signing_key(alg, self.now)

    def metadata(self, endpoints: dict[str, str]) -> dict[str, Any]:
        """Return the discovery document (OpenID Connect Discovery 1.0 3), given the URLs."""
        return {
            "issuer": self.issuer,
            **endpoints,
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": list(ALGORITHMS),
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "revocation_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "introspection_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
            ],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "acr",
                "amr",
                "preferred_username",
                "name",
                "email",
                "email_verified",
                "groups",
            ],
            "acr_values_supported": list(ACR_VALUES),
            "prompt_values_supported": ["none", "login", "consent"],
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
        }


def _credentials(request: Any) -> tuple[str | None, str | None]:
    """Return the client id and secret a token request carries (Basic or the body), if any."""
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("basic "):
        client_id, secret = extract_basic_authorization(request.headers)
        return client_id, secret
    form = request.form
    return form.get("client_id"), form.get("client_secret")
