"""Teach authlib's grants where yupnope keeps codes and tokens: authlib does the protocol.

authlib checks the requests (RFC 6749, PKCE's RFC 7636, OpenID Connect Core 3.1) and builds the
answers; these subclasses only read and write rows through the provider (provider.py), with
each single use made exact by one conditional statement.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from authlib.oauth2.rfc6749 import InvalidRequestError, grants
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import OpenIDCode
from authlib.oidc.rpinitiated import EndSessionEndpoint
from joserfc.jwk import KeySet

from .claims import Authentication, EndUser, user_claims
from .clients import RegisteredClient
from .keys import ID_TOKEN_LIFETIME, Key, KeyRing
from .tokens import Codes, IssuedCode, IssuedToken, Tokens


class Provider(Protocol):
    """Name what the grants ask of the server they run in (provider.Provider)."""

    issuer: str
    now: datetime
    codes: Codes
    tokens: Tokens
    keys: KeyRing

    def end_user(self, user_id: int, auth: Authentication) -> EndUser | None: ...

    def describe(self, token: IssuedToken) -> dict[str, Any]: ...

    def signing_key(self, alg: str) -> Key: ...


def _provider(grant: Any) -> Provider:
    found: Provider = grant.server
    return found


class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    """Hand out codes and redeem them once, for confidential and public clients alike."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def save_authorization_code(self, code: str, request: Any) -> None:
        _provider(self).codes.save(code, request.client, request.user, request)

    def query_authorization_code(self, code: str, client: RegisteredClient) -> IssuedCode | None:
        return _provider(self).codes.redeem(code, client)

    def delete_authorization_code(self, authorization_code: IssuedCode) -> None:
        # Marked used by its redemption already; the row stays to recognise a replay.
        del authorization_code

    def authenticate_user(self, authorization_code: IssuedCode) -> EndUser | None:
        return _provider(self).end_user(authorization_code.user_id, authorization_code.auth)


class RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    """Rotate a refresh token at each use; a used one presented again ends its whole grant."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> IssuedToken | None:
        return _provider(self).tokens.rotate(refresh_token, self.request.client)

    def authenticate_user(self, refresh_token: IssuedToken) -> EndUser | None:
        return _provider(self).end_user(refresh_token.record.user_id, refresh_token.auth)

    def revoke_old_credential(self, refresh_token: IssuedToken) -> None:
        # Revoked by its rotation already, in the same statement that let it through.
        del refresh_token


class Pkce(CodeChallenge):  # type: ignore[misc]
    """Require PKCE of public clients, with S256 only (RFC 9700 2.1.1: plain is not allowed)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE's code_challenge_method must be S256.")
        client: RegisteredClient = grant.request.client
        if client.public and not data.get("code_challenge"):
            raise InvalidRequestError("A public client must send a PKCE code_challenge.")
        super().validate_code_challenge(grant, redirect_uri)


class IdTokens(OpenIDCode):  # type: ignore[misc]
    """Sign ID tokens with the key ring's key of the client's algorithm."""

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        # A nonce protects the app, which checks it against its own: the provider echoes it.
        del nonce, request
        return False

    def resolve_client_private_key(self, client: RegisteredClient) -> Any:
        return _provider_of(self).signing_key(client.id_token_alg)

    def get_client_algorithm(self, client: RegisteredClient) -> str:
        return client.id_token_alg

    def get_encode_header(self, client: RegisteredClient) -> dict[str, str]:
        key = _provider_of(self).signing_key(client.id_token_alg)
        return {"alg": client.id_token_alg, "kid": str(key.kid), "typ": "JWT"}

    def get_client_claims(self, client: RegisteredClient) -> dict[str, Any]:
        # One audience, as a string: RP-initiated logout finds the client from it.
        return {"iss": _provider_of(self).issuer, "aud": client.client_id}

    def get_compatible_claims(self, request: Any) -> dict[str, Any]:
        claims = self.get_client_claims(request.client)
        end_user: EndUser = request.user
        now = int(_provider_of(self).now.timestamp())
        auth = end_user.authentication
        claims.update(
            iat=now,
            exp=now + int(ID_TOKEN_LIFETIME.total_seconds()),
            auth_time=int(auth.at.timestamp()),
            amr=list(auth.amr),
            acr=auth.acr,
        )
        return claims

    def get_authorization_code_claims(self, authorization_code: IssuedCode) -> dict[str, Any]:
        return {"nonce": authorization_code.nonce} if authorization_code.nonce else {}

    def generate_user_info(self, user: EndUser, scope: str) -> dict[str, object]:
        return user_claims(user, scope)

    def __call__(self, grant: Any) -> None:
        self.server = grant.server
        super().__call__(grant)


class RefreshIdTokens(IdTokens):
    """Sign a fresh ID token at each refresh too (OpenID Connect Core 12.2)."""

    def __call__(self, grant: Any) -> None:
        # process_token adds an ID token only when the token's scope has openid.
        self.server = grant.server
        grant.register_hook("after_create_token_response", self.process_token)


def _provider_of(extension: IdTokens) -> Provider:
    found: Provider = extension.server
    return found


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    """Revoke a token (RFC 7009): its whole grant ends with it."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
        return _provider(self).tokens.find(token_string, token_type_hint)

    def revoke_token(self, token: IssuedToken, request: Any) -> None:
        del request
        _provider(self).tokens.revoke_grant(token)


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    """Say whether a token is active and for whom (RFC 7662), to the client it was issued to."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
        return _provider(self).tokens.find(token_string, token_type_hint)

    def check_permission(self, token: IssuedToken, client: RegisteredClient, request: Any) -> bool:
        del request
        return token.check_client(client)

    def introspect_token(self, token: IssuedToken) -> dict[str, Any]:
        return _provider(self).describe(token)


class EndSession(EndSessionEndpoint):  # type: ignore[misc]
    """Check an app's logout request (RP-Initiated Logout 1.0): its ID token, where to go next.

    The web layer ends the session itself (it holds the cookie), so ``end_session`` is not used.
    """

    def get_server_jwks(self) -> KeySet:
        provider = _provider(self)
        return KeySet.import_key_set(provider.keys.published(provider.now))  # type: ignore[arg-type]
