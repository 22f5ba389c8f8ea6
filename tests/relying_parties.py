"""Two relying parties nobody here wrote, and the person who signs in to them.

openid-client (Node, certified by the OpenID Foundation) runs as tests/relying_party/rp.mjs, one
step per process; pyoidc's ``oic`` (certified too, and not authlib, which the server uses) runs
in-process. Both get the same calls: ``authorize`` gives the URL to send the person to,
``callback`` redeems what the provider sent back, ``refresh`` and ``logout_url`` do the rest.
``Person`` is the browser in between: it logs in and consents with its own cookies.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import requests
from oic import rndstr
from oic.oauth2.grant import Token
from oic.oic import Client
from oic.oic.message import (
    AccessTokenResponse,
    AuthorizationRequest,
    AuthorizationResponse,
    RegistrationResponse,
)
from oic.utils.authn.client import CLIENT_AUTHN_METHOD

from helpers import COOKIE, GOOD_PASSWORD, TIMEOUT, LiveServer

#: The Node project: package.json, its lock file, rp.mjs; `make test` runs `npm ci` there.
NODE_PROJECT = Path(__file__).resolve().parent / "relying_party"

#: What both relying parties ask for: offline_access, or there would be no refresh token.
SCOPE = "openid profile offline_access"

#: openid-client 6 needs Node.js 20 at least (its README's "Supported Runtimes").
NODE_MAJOR = 20


def missing_node() -> str | None:
    """Say what is missing to run openid-client, or None when everything is there."""
    if shutil.which("node") is None:
        return f"node is not installed (Node.js {NODE_MAJOR} or later)"
    version = subprocess.run(
        ["node", "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    if int(version.removeprefix("v").split(".")[0]) < NODE_MAJOR:
        return f"node is {version}; openid-client needs Node.js {NODE_MAJOR} or later"
    if not (NODE_PROJECT / "node_modules" / "openid-client").is_dir():
        return f"openid-client is not installed: run `npm ci` in {NODE_PROJECT} (make test does)"
    return None


@dataclass(frozen=True)
class App:
    """A client registered with ``yupnope oidc clients add``, and where it receives sign-ins."""

    client_id: str
    client_secret: str | None
    redirect_uri: str

    @property
    def front_page(self) -> str:
        """Return the root of the redirect URI's origin: where the app goes after a logout."""
        parts = urlsplit(self.redirect_uri)
        return f"{parts.scheme}://{parts.netloc}/"


def tampered(id_token: str, **claims: Any) -> str:
    """Return ``id_token`` with ``claims`` changed in its payload and its signature kept."""
    header, payload, signature = id_token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    altered = json.dumps({**decoded, **claims}).encode()
    return ".".join([header, base64.urlsafe_b64encode(altered).rstrip(b"=").decode(), signature])


def kid_of(id_token: str) -> str:
    """Return the id of the key that signed ``id_token``, from its header."""
    header = id_token.split(".")[0]
    kid: str = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    return kid


class NodeRP:
    """Run rp.mjs (openid-client) one step at a time; each step discovers the provider anew."""

    def __init__(self, issuer: str, app: App) -> None:
        self.ask = {
            "issuer": issuer,
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "redirect_uri": app.redirect_uri,
            "scope": SCOPE,
        }

    def run(self, step: str, **values: Any) -> dict[str, Any]:
        """Run ``step`` with ``values`` and return its JSON answer; fail if node fails."""
        done = subprocess.run(
            ["node", "rp.mjs"],
            cwd=NODE_PROJECT,
            input=json.dumps({**self.ask, "step": step, **values}),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        answer: dict[str, Any] = json.loads(done.stdout)
        return answer


@dataclass
class OicRP:
    """pyoidc's ``Client``, configured by discovery and registered statically with ``app``."""

    issuer: str
    app: App
    client: Client = field(init=False)
    #: The authorization requests sent, by state: what their answers are checked against.
    sent: dict[str, tuple[AuthorizationRequest, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.client = Client(client_authn_method=CLIENT_AUTHN_METHOD)
        self.client.provider_config(self.issuer)
        self.client.store_registration_info(
            RegistrationResponse(
                client_id=self.app.client_id,
                client_secret=self.app.client_secret,
                redirect_uris=[self.app.redirect_uri],
                token_endpoint_auth_method=self.auth_method,
            )
        )

    @property
    def auth_method(self) -> str:
        # oic has no "none" method: a public client sends no credentials but its client_id.
        return "client_secret_basic" if self.app.client_secret else ""

    def authorize(self) -> tuple[str, str, str]:
        """Return the authorization URL (PKCE S256, state, nonce), its state and its nonce."""
        pkce, verifier = self.client.add_code_challenge()
        state, nonce = rndstr(32), rndstr(32)
        # request_info, not construct_AuthorizationRequest: it records the state's nonce, which
        # do_access_token_request then compares with the ID token's.
        url, _, _, request = self.client.request_info(
            AuthorizationRequest,
            method="GET",
            request_args={
                "response_type": "code",
                "scope": SCOPE,
                "state": state,
                "nonce": nonce,
                "redirect_uri": self.app.redirect_uri,
                "client_id": self.app.client_id,
                **pkce,
            },
        )
        self.sent[state] = (request, verifier)
        return url, state, nonce

    def callback(self, callback_url: str) -> AccessTokenResponse:
        """Redeem the code with its verifier; oic verifies the ID token against the JWKS."""
        answer = self.client.parse_response(
            AuthorizationResponse, info=callback_url, sformat="urlencoded"
        )
        request, verifier = self.sent[answer["state"]]
        extra = {} if self.app.client_secret else {"client_id": self.app.client_id}
        tokens = self.client.do_access_token_request(
            state=answer["state"],
            request_args={
                "code": answer["code"],
                "code_verifier": verifier,
                "redirect_uri": self.app.redirect_uri,
                **extra,
            },
            authn_method=self.auth_method,
        )
        assert isinstance(tokens, AccessTokenResponse), tokens.to_dict()
        # iss, aud, exp, the nonce sent: what oic checks of an ID token beyond its signature.
        self.client.verify_id_token(tokens["id_token"], request)
        return tokens

    def refresh(self, refresh_token: str) -> Any:
        """Refresh with ``refresh_token``: tokens, or the provider's error answer."""
        given = Token(AccessTokenResponse(refresh_token=refresh_token, token_type="Bearer"))
        extra = {} if self.app.client_secret else {"client_id": self.app.client_id}
        return self.client.do_access_token_refresh(
            token=given, request_args=extra, authn_method=self.auth_method
        )

    def validate(self, token_response: dict[str, Any]) -> AccessTokenResponse:
        """Validate a token endpoint's answer as do_access_token_request does, ID token too."""
        parsed: AccessTokenResponse = self.client.parse_response(
            AccessTokenResponse, info=json.dumps(token_response), sformat="json"
        )
        return parsed

    def logout_url(self, id_token: str, state: str) -> str:
        """Return the end-session URL the app sends the person to, with its ID token as hint."""
        request = self.client.construct_EndSessionRequest(
            request_args={
                "id_token_hint": id_token,
                "post_logout_redirect_uri": self.app.front_page,
                "state": state,
            }
        )
        url: str = request.request(self.client.end_session_endpoint)
        return url


class Person:
    """A browser, driven by requests: logs in, consents, follows the app's redirects."""

    def __init__(self, server: LiveServer, username: str, password: str = GOOD_PASSWORD) -> None:
        self.server = server
        self.username = username
        self.password = password
        self.http = server.session()

    def go(self, url: str, **form: str) -> requests.Response:
        """Open ``url`` (or post ``form`` to it) without following a redirect."""
        url = urljoin(self.server.url, url)
        if form:
            return self.http.post(url, data=form, allow_redirects=False, timeout=TIMEOUT)
        return self.http.get(url, allow_redirects=False, timeout=TIMEOUT)

    def sign_in(self, authorization_url: str) -> str:
        """Log in if asked, allow if asked, and return where the provider sends the browser."""
        answer = self.go(authorization_url)
        if answer.status_code == 303 and urlsplit(answer.headers["Location"]).path == "/":
            back = parse_qs(urlsplit(answer.headers["Location"]).query)["next"][0]
            logged_in = self.go("/login", username=self.username, password=self.password, next=back)
            assert logged_in.status_code == 303, logged_in.text[:300]
            answer = self.go(logged_in.headers["Location"])
        if answer.status_code == 200 and 'name="decision"' in answer.text:
            answer = self.go(answer.url, decision="allow")
        assert answer.status_code == 302, (answer.status_code, answer.text[:300])
        location: str = answer.headers["Location"]
        return location

    def signed_in(self) -> bool:
        """Say whether the account page opens, rather than sending to the login page."""
        if self.http.cookies.get(COOKIE) is None:
            return False
        return self.go("/account").status_code == 200
