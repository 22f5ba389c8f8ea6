"""Speak OpenID Connect to apps: discovery, keys, tokens, userinfo, revocation, introspection.

authlib's server (oidc/provider.py) runs each exchange; this module hands it Flask's request
and turns its answers into responses. Apps call these from their servers (or, for a public
client, from a page): none of them reads a cookie, so the cross-origin guard lets them through
(guards.BACK_CHANNEL). The pages a person sees (sign in, consent, logout) are web/oidc_pages.py.
"""

from __future__ import annotations

import json
from typing import Any

from authlib.integrations.flask_oauth2.requests import FlaskJsonRequest, FlaskOAuth2Request
from flask import Blueprint, Response, request, url_for

from .. import wiring
from ..oidc.claims import user_claims
from ..oidc.provider import Provider
from . import guards

bp = Blueprint("oidc", __name__)

#: The JWK Set may be cached this long: a new key is published before it signs anything that
#: an app could not fetch again (apps fetch the set again on an unknown ``kid``).
JWKS_MAX_AGE = 300

#: The challenge of a refused userinfo request (RFC 6750 3.1).
INVALID_TOKEN = 'Bearer realm="yupnope", error="invalid_token"'  # noqa: S105 (a challenge)


class WebProvider(Provider):
    """Run the provider on Flask's request; answer with Flask's responses."""

    def create_oauth2_request(self, request_: Any) -> FlaskOAuth2Request:
        del request_
        return FlaskOAuth2Request(request)

    def create_json_request(self, request_: Any) -> FlaskJsonRequest:
        del request_
        return FlaskJsonRequest(request)

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        if isinstance(body, dict):
            body = json.dumps(body)
        return Response(body, status=status, headers=headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Send nothing: authlib's signals are for apps that listen, and none does here."""
        del name, args, kwargs


def provider() -> WebProvider:
    """Return the provider for this request."""
    shared = wiring.store()
    return WebProvider(
        shared,
        wiring.get().key_sealer,
        wiring.new_throttle(shared),
        issuer(),
        guards.client(),
        guards.now(),
    )


def _root() -> str:
    """Return the scheme and host this server is known at: the public URL's, else the request's."""
    return wiring.get().settings.public_origin or request.host_url.rstrip("/")


def issuer() -> str:
    """Return the issuer: the public URL (with the path the server is mounted at, if any)."""
    return _root() + request.script_root


def endpoint_url(endpoint: str) -> str:
    """Return the absolute URL of one of this server's views, on the issuer's origin."""
    return _root() + url_for(endpoint)


#: The views a public client's page may call from its own origin: none reads a cookie, so any
#: origin may (the Fetch standard's CORS without credentials).
OPEN_TO_PAGES = guards.BACK_CHANNEL | {"oidc.discovery", "oidc.jwks"}


@bp.after_request
def _open_to_pages(response: Response) -> Response:
    """Let a browser app call the back channel, and ask first (a preflight) where it must."""
    if request.endpoint in OPEN_TO_PAGES:
        response.headers["Access-Control-Allow-Origin"] = "*"
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = "GET, POST"
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            response.headers["Access-Control-Max-Age"] = "600"
    return response


@bp.get("/.well-known/openid-configuration")
def discovery() -> Response:
    """Describe the provider (OpenID Connect Discovery 1.0 4): what an app configures from."""
    document = provider().metadata(
        {
            "authorization_endpoint": endpoint_url("oidc_pages.authorize"),
            "token_endpoint": endpoint_url("oidc.token"),
            "userinfo_endpoint": endpoint_url("oidc.userinfo"),
            "jwks_uri": endpoint_url("oidc.jwks"),
            "revocation_endpoint": endpoint_url("oidc.revoke"),
            "introspection_endpoint": endpoint_url("oidc.introspect"),
            "end_session_endpoint": endpoint_url("oidc_pages.end_session"),
        }
    )
    return Response(json.dumps(document), mimetype="application/json")


@bp.get("/oidc/jwks")
def jwks() -> Response:
    """Publish the keys that sign ID tokens, retired ones until their tokens expire."""
    found = wiring.key_ring().published(guards.now())
    response = Response(json.dumps(found), mimetype="application/jwk-set+json")
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE}"
    return response


@bp.post("/oidc/token")
def token() -> Response:
    """Exchange a code (with its PKCE verifier) or a refresh token for tokens."""
    answer: Response = provider().create_token_response()
    return answer


@bp.post("/oidc/revoke")
def revoke() -> Response:
    """Revoke a token, and with it its grant (RFC 7009)."""
    answer: Response = provider().create_endpoint_response("revocation")
    return answer


@bp.post("/oidc/introspect")
def introspect() -> Response:
    """Say whether a token is active, to the client it was issued to (RFC 7662)."""
    answer: Response = provider().create_endpoint_response("introspection")
    return answer


@bp.route("/oidc/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    """Answer the claims an access token's scope allows (OpenID Connect Core 5.3)."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return _refused("The request carries no bearer token.")
    serving = provider()
    found = serving.tokens.live_access(value.strip())
    if found is None or "openid" not in found.record.scope.split():
        return _refused("The access token is not valid.")
    end_user = serving.end_user(found.record.user_id, found.auth)
    if end_user is None:
        return _refused("The access token's account is gone or disabled.")
    response = Response(json.dumps(user_claims(end_user, found.record.scope)))
    response.mimetype = "application/json"
    response.headers["Cache-Control"] = "no-store"
    return response


def _refused(message: str) -> Response:
    body = json.dumps({"error": "invalid_token", "error_description": message})
    response = Response(body, status=401, mimetype="application/json")
    response.headers["WWW-Authenticate"] = INVALID_TOKEN
    return response
