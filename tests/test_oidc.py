"""Test the OpenID Connect provider through its HTTP endpoints, on SQLite and PostgreSQL.

The flows an app runs (code with PKCE, refresh, revocation, introspection, logout) and the
negative cases of the OpenID Connect Basic OP conformance profile. The ID tokens are checked
with joserfc against the published JWK Set; tests/test_oidc_relying_parties.py runs two
independent relying parties against a live server.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import update

from helpers import GOOD_PASSWORD, SAME_ORIGIN, add_user, login, pkce
from yupnope import wiring
from yupnope.oidc.clients import NewClient
from yupnope.provider_tables import AuthorizationCode

BOTH_DATABASES = True

APP = "https://app.example/callback"


@dataclass
class Flow:
    """One app's sign-in under way: its client, its PKCE verifier, the request it sends."""

    client: NewClient
    verifier: str
    query: dict[str, str]

    @property
    def auth(self) -> tuple[str, str] | None:
        secret = self.client.client_secret
        return None if secret is None else (self.client.client_id, secret)


def register(app: Flask, **options: Any) -> NewClient:
    """Register a client of ``APP`` with ``options`` (Clients.add's)."""
    with app.app_context():
        return wiring.oidc_clients().add("Notes", [APP], datetime.now(UTC), **options)


def start(client: NewClient, **extra: str) -> Flow:
    """Return a new authorization request with PKCE, state and nonce."""
    verifier, challenge = pkce()
    query = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": APP,
        "scope": "openid profile groups offline_access",
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return Flow(client, verifier, query)


def answer_of(location: str) -> dict[str, str]:
    """Return the parameters of a redirect to the app."""
    assert location.startswith(APP + "?"), location
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def code_for(browser: FlaskClient, flow: Flow) -> str:
    """Walk the request through the consent page; return the code the app receives."""
    shown = browser.get("/oidc/authorize", query_string=flow.query)
    if shown.status_code == 200:
        assert b"Allow" in shown.data
        shown = browser.post(
            "/oidc/authorize",
            query_string=flow.query,
            data={"decision": "allow"},
            headers=SAME_ORIGIN,
        )
    assert shown.status_code == 302, shown.data
    answer = answer_of(shown.headers["Location"])
    assert answer["state"] == flow.query["state"]
    return answer["code"]


def redeem(app_client: FlaskClient, flow: Flow, code: str, **changes: str) -> Any:
    """Post the code to the token endpoint as the app does."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": APP,
        "code_verifier": flow.verifier,
        **changes,
    }
    if flow.auth is None:
        data["client_id"] = flow.client.client_id
    return app_client.post("/oidc/token", data=data, auth=flow.auth)


def claims_of(client: FlaskClient, id_token: str) -> dict[str, Any]:
    """Return an ID token's claims once its signature checks against the published keys."""
    keys = KeySet.import_key_set(client.get("/oidc/jwks").json)  # type: ignore[arg-type]
    return dict(jwt.decode(id_token, keys, algorithms=["RS256", "ES256"]).claims)


@pytest.fixture
def browser(app: Flask) -> FlaskClient:
    """Return a browser logged in as ada."""
    add_user(app, "ada")
    found = app.test_client()
    assert login(found, "ada").status_code == 303
    return found


def signed_in(app: Flask, browser: FlaskClient, **options: Any) -> tuple[Flow, dict[str, Any]]:
    """Run one whole sign-in; return the flow and the token answer."""
    flow = start(register(app, **options))
    tokens = redeem(app.test_client(), flow, code_for(browser, flow))
    assert tokens.status_code == 200, tokens.json
    return flow, tokens.json


def test_discovery_names_every_endpoint_under_the_issuer(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(public_url="https://login.example.com")
    found = (
        app.test_client()
        .get("/.well-known/openid-configuration", base_url="https://login.example.com")
        .json
    )
    assert found["issuer"] == "https://login.example.com"
    for name in ("authorization", "token", "userinfo", "revocation", "introspection"):
        assert found[f"{name}_endpoint"].startswith("https://login.example.com/oidc/")
    assert found["end_session_endpoint"] == "https://login.example.com/oidc/logout"
    assert found["code_challenge_methods_supported"] == ["S256"]
    assert set(found["id_token_signing_alg_values_supported"]) == {"RS256", "ES256"}


def test_a_sign_in_gives_a_signed_id_token_and_userinfo(app: Flask, browser: FlaskClient) -> None:
    flow, tokens = signed_in(app, browser)
    claims = claims_of(browser, tokens["id_token"])
    assert claims["iss"] == "http://localhost"
    assert claims["aud"] == flow.client.client_id
    assert claims["nonce"] == flow.query["nonce"]
    assert claims["preferred_username"] == "ada"
    assert claims["amr"] == ["pwd"] and claims["acr"] == "1fa"
    assert abs(claims["auth_time"] - datetime.now(UTC).timestamp()) < 60
    info = browser.get(
        "/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert info.json == {
        "sub": claims["sub"],
        "preferred_username": "ada",
        "name": "ada",
        "groups": [],
    }
    # The subject is random (128 bits, kept for the account), never the name or the row's id,
    # and the same at the next sign-in. Its hex may hold "ada" by chance: a, d are hex digits.
    with app.app_context():
        ada = wiring.operator().find("ada").id
        assert claims["sub"] == wiring.store().apps.subject_of(ada)
    assert re.fullmatch(r"[0-9a-f]{32}", claims["sub"])
    assert claims["sub"] not in ("ada", str(ada))
    _, again = signed_in(app, browser)
    assert claims_of(browser, again["id_token"])["sub"] == claims["sub"]


def test_es256_clients_get_es256_tokens(app: Flask, browser: FlaskClient) -> None:
    _, tokens = signed_in(app, browser, id_token_alg="ES256")
    header = jwt.decode(tokens["id_token"], KeySet.import_key_set(browser.get("/oidc/jwks").json))
    assert header.header["alg"] == "ES256"  # type: ignore[union-attr]


def test_consent_is_asked_once_per_scope_set(app: Flask, browser: FlaskClient) -> None:
    flow = start(register(app))
    assert browser.get("/oidc/authorize", query_string=flow.query).status_code == 200
    code_for(browser, flow)
    again = start(flow.client)
    assert browser.get("/oidc/authorize", query_string=again.query).status_code == 302
    more = start(flow.client, prompt="consent")
    assert browser.get("/oidc/authorize", query_string=more.query).status_code == 200


def test_a_denied_consent_goes_back_as_access_denied(app: Flask, browser: FlaskClient) -> None:
    flow = start(register(app))
    denied = browser.post(
        "/oidc/authorize", query_string=flow.query, data={"decision": "deny"}, headers=SAME_ORIGIN
    )
    assert answer_of(denied.headers["Location"])["error"] == "access_denied"


def test_the_consent_form_refuses_other_sites(app: Flask, browser: FlaskClient) -> None:
    flow = start(register(app))
    forged = browser.post(
        "/oidc/authorize",
        query_string=flow.query,
        data={"decision": "allow"},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert forged.status_code == 403


def test_no_consent_page_for_a_client_registered_without_one(
    app: Flask, browser: FlaskClient
) -> None:
    flow = start(register(app, consent=False))
    assert browser.get("/oidc/authorize", query_string=flow.query).status_code == 302


def test_an_anonymous_visitor_logs_in_first_and_comes_back(app: Flask) -> None:
    add_user(app, "ada")
    flow = start(register(app), login_hint="ada")
    visitor = app.test_client()
    sent = visitor.get("/oidc/authorize", query_string=flow.query)
    target = urlsplit(sent.headers["Location"])
    assert target.path == "/"
    params = parse_qs(target.query)
    assert params["login_hint"] == ["ada"]
    assert b'value="ada"' in visitor.get(sent.headers["Location"]).data
    back = visitor.post(
        "/login",
        data={
            "username": "ada",
            "password": "correct horse battery staple",
            "next": params["next"][0],
        },
        headers=SAME_ORIGIN,
    )
    assert back.headers["Location"].startswith("/oidc/authorize?")
    assert code_for(visitor, flow)


def test_prompt_login_and_max_age_ask_for_a_fresh_login(app: Flask, browser: FlaskClient) -> None:
    client = register(app)
    for extra in ({"prompt": "login"}, {"max_age": "0"}):
        flow = start(client, **extra)
        with app.app_context():
            sent = browser.get("/oidc/authorize", query_string=flow.query)
        assert urlsplit(sent.headers["Location"]).path == "/", extra
        next_url = parse_qs(urlsplit(sent.headers["Location"]).query)["next"][0]
        assert "prompt=login" not in next_url


@pytest.mark.parametrize("max_age", ["\u00b2", "9" * 5000, "-1", "1e3"])
def test_a_max_age_that_is_no_number_is_ignored(
    app: Flask, browser: FlaskClient, max_age: str
) -> None:
    flow = start(register(app), max_age=max_age)
    assert (
        answer_of(
            browser.post(
                "/oidc/authorize",
                query_string=flow.query,
                data={"decision": "allow"},
                headers=SAME_ORIGIN,
            ).headers["Location"]
        )["state"]
        == flow.query["state"]
    )


def test_prompt_none_answers_without_a_page(app: Flask, browser: FlaskClient) -> None:
    client = register(app)
    anonymous = app.test_client().get(
        "/oidc/authorize", query_string=start(client, prompt="none").query
    )
    assert answer_of(anonymous.headers["Location"])["error"] == "login_required"
    unconsented = browser.get("/oidc/authorize", query_string=start(client, prompt="none").query)
    assert answer_of(unconsented.headers["Location"])["error"] == "consent_required"


def test_a_user_outside_the_clients_groups_is_told_so(app: Flask, browser: FlaskClient) -> None:
    with app.app_context():
        wiring.operator().add_group("family", datetime.now(UTC))
    flow = start(register(app, groups=["family"]))
    refused = browser.get("/oidc/authorize", query_string=flow.query)
    assert refused.status_code == 403
    assert b"not among those allowed to use Notes" in refused.data


def test_a_redirect_uri_not_registered_is_shown_never_followed(
    app: Flask, browser: FlaskClient
) -> None:
    flow = start(register(app), redirect_uri="https://evil.example/callback")
    refused = browser.get("/oidc/authorize", query_string=flow.query)
    assert refused.status_code == 400
    assert "Location" not in refused.headers


def test_a_code_is_redeemed_once_and_a_replay_revokes_its_tokens(
    app: Flask, browser: FlaskClient
) -> None:
    flow = start(register(app))
    code = code_for(browser, flow)
    first = redeem(app.test_client(), flow, code)
    assert first.status_code == 200
    replay = redeem(app.test_client(), flow, code)
    assert replay.status_code == 400 and replay.json["error"] == "invalid_grant"
    bearer = {"Authorization": f"Bearer {first.json['access_token']}"}
    assert browser.get("/oidc/userinfo", headers=bearer).status_code == 401


@pytest.mark.parametrize(
    "changes",
    [
        {"code_verifier": secrets.token_urlsafe(48)},
        {"code_verifier": ""},
        {"redirect_uri": APP + "x"},
    ],
)
def test_a_wrong_verifier_or_redirect_uri_gets_no_tokens(
    app: Flask, browser: FlaskClient, changes: dict[str, str]
) -> None:
    flow = start(register(app))
    refused = redeem(app.test_client(), flow, code_for(browser, flow), **changes)
    assert refused.status_code == 400
    assert refused.json["error"] in ("invalid_grant", "invalid_request")


def test_an_expired_code_gets_no_tokens(app: Flask, browser: FlaskClient) -> None:
    flow = start(register(app))
    code = code_for(browser, flow)
    with app.app_context():
        session = wiring.orm_session()
        session.execute(
            update(AuthorizationCode).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        session.commit()
    assert redeem(app.test_client(), flow, code).json["error"] == "invalid_grant"


def test_a_public_client_must_use_pkce(app: Flask, browser: FlaskClient) -> None:
    flow = start(register(app, public=True))
    del flow.query["code_challenge"], flow.query["code_challenge_method"]
    refused = browser.get("/oidc/authorize", query_string=flow.query)
    assert answer_of(refused.headers["Location"])["error"] == "invalid_request"
    plain = start(flow.client, code_challenge_method="plain")
    refused = browser.get("/oidc/authorize", query_string=plain.query)
    assert answer_of(refused.headers["Location"])["error"] == "invalid_request"
    flow = start(flow.client)
    assert redeem(app.test_client(), flow, code_for(browser, flow)).status_code == 200


def test_a_wrong_secret_is_refused_and_throttled(app: Flask, browser: FlaskClient) -> None:
    flow = start(register(app))
    code = code_for(browser, flow)
    wrong = (flow.client.client_id, "not-the-secret")
    answers = [
        app.test_client().post(
            "/oidc/token", data={"grant_type": "authorization_code", "code": code}, auth=wrong
        )
        for _ in range(8)
    ]
    assert answers[0].status_code == 401 and answers[0].json["error"] == "invalid_client"
    assert answers[-1].status_code == 429 and "Retry-After" in answers[-1].headers


def test_a_refresh_token_rotates_and_its_reuse_ends_the_grant(
    app: Flask, browser: FlaskClient
) -> None:
    flow, tokens = signed_in(app, browser)
    app_client = app.test_client()
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    renewed = app_client.post("/oidc/token", data=refresh, auth=flow.auth).json
    assert renewed["refresh_token"] != tokens["refresh_token"]
    assert claims_of(browser, renewed["id_token"])["preferred_username"] == "ada"
    assert app_client.post("/oidc/token", data=refresh, auth=flow.auth).status_code == 400
    bearer = {"Authorization": f"Bearer {renewed['access_token']}"}
    assert browser.get("/oidc/userinfo", headers=bearer).status_code == 401


def test_no_refresh_token_without_offline_access(app: Flask, browser: FlaskClient) -> None:
    flow = start(register(app), scope="openid profile")
    tokens = redeem(app.test_client(), flow, code_for(browser, flow)).json
    assert "refresh_token" not in tokens and "id_token" in tokens


def test_revocation_and_introspection(app: Flask, browser: FlaskClient) -> None:
    flow, tokens = signed_in(app, browser)
    app_client = app.test_client()
    looked = app_client.post(
        "/oidc/introspect", data={"token": tokens["access_token"]}, auth=flow.auth
    )
    assert looked.json["active"] is True and looked.json["username"] == "ada"
    other = register(app)
    assert other.client_secret is not None
    foreign = app_client.post(
        "/oidc/introspect",
        data={"token": tokens["access_token"]},
        auth=(other.client_id, other.client_secret),
    )
    assert foreign.json == {"active": False}
    revoked = app_client.post(
        "/oidc/revoke", data={"token": tokens["refresh_token"]}, auth=flow.auth
    )
    assert revoked.status_code == 200
    looked = app_client.post(
        "/oidc/introspect", data={"token": tokens["access_token"]}, auth=flow.auth
    )
    assert looked.json == {"active": False}


def test_a_person_sees_their_apps_and_signs_out_of_one(app: Flask, browser: FlaskClient) -> None:
    flow, tokens = signed_in(app, browser)
    with app.app_context():
        (connection,) = wiring.connections().alive()
    page = browser.get("/account").get_data(as_text=True)
    assert "Apps you signed in to" in page
    assert "<strong>Notes</strong>: stays signed in, sharing openid, profile, groups" in page
    assert f"/account/apps/{connection.grant}/sign-out" in page

    add_user(app, "bob")
    bob = app.test_client()
    assert login(bob, "bob").status_code == 303
    assert "Apps you signed in to" not in bob.get("/account").get_data(as_text=True)
    others = (connection.grant, "nothing", "a%00b", "x" * 300)
    for path in (f"/account/apps/{grant}/sign-out" for grant in others):
        assert bob.post(path, headers=SAME_ORIGIN).status_code == 404
    cross_site = {"Sec-Fetch-Site": "cross-site"}
    sign_out = f"/account/apps/{connection.grant}/sign-out"
    assert browser.post(sign_out, headers=cross_site).status_code == 403

    out = browser.post(sign_out, headers=SAME_ORIGIN)
    assert out.status_code == 303
    assert out.headers["Location"] == "/account?done=app-signed-out#apps"
    page = browser.get("/account?done=app-signed-out").get_data(as_text=True)
    assert "You were signed out of that app." in page
    assert "Apps you signed in to" not in page
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert browser.get("/oidc/userinfo", headers=bearer).status_code == 401
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert app.test_client().post("/oidc/token", data=refresh, auth=flow.auth).status_code == 400
    # Its consent is forgotten: the next sign-in asks again.
    again = browser.get("/oidc/authorize", query_string=start(flow.client).query)
    assert again.status_code == 200 and b"Allow" in again.data
    with app.app_context():
        events = [(e.kind, e.username, e.app_name) for e, _ in wiring.operator().events(None, None)]
    assert ("app_signed_in", "ada", "Notes") in events
    assert events[-1] == ("app_signed_out", "ada", "Notes")


def test_the_api_lists_the_apps_and_signs_out_of_one(app: Flask, browser: FlaskClient) -> None:
    flow, tokens = signed_in(app, browser)
    api = app.test_client()
    session = api.post("/api/v1/sessions", json={"username": "ada", "password": GOOD_PASSWORD})
    bearer = {"Authorization": f"Bearer {session.json['token']}"}
    listed = api.get("/api/v1/me/apps", headers=bearer)
    assert listed.status_code == 200
    (only,) = listed.json["apps"]
    assert only["name"] == "Notes" and only["client_id"] == flow.client.client_id
    assert only["scope"] == "openid profile groups offline_access" and only["offline"] is True

    for grant in ("no-such-grant", "a%00b", "a%20b"):
        assert api.delete(f"/api/v1/me/apps/{grant}", headers=bearer).status_code == 404
    assert api.delete(f"/api/v1/me/apps/{'x' * 65}", headers=bearer).status_code == 422
    out = api.delete(f"/api/v1/me/apps/{only['grant']}", headers=bearer)
    assert out.status_code == 204
    assert api.get("/api/v1/me/apps", headers=bearer).json == {"apps": []}
    app_bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert api.get("/oidc/userinfo", headers=app_bearer).status_code == 401
    again = api.delete(f"/api/v1/me/apps/{only['grant']}", headers=bearer)
    assert again.status_code == 404 and again.json["code"] == "not_found"


def test_tokens_end_with_the_users_other_credentials(app: Flask, browser: FlaskClient) -> None:
    _, tokens = signed_in(app, browser)
    with app.app_context():
        operator = wiring.operator()
        operator.set_password(operator.find("ada"), "a brand new pass phrase", datetime.now(UTC))
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert app.test_client().get("/oidc/userinfo", headers=bearer).status_code == 401


def test_logout_with_the_id_token_ends_the_session_and_goes_back(
    app: Flask, browser: FlaskClient
) -> None:
    _, tokens = signed_in(app, browser)
    query = {
        "id_token_hint": tokens["id_token"],
        "post_logout_redirect_uri": "https://app.example/",
        "state": "bye",
    }
    left = browser.get("/oidc/logout", query_string=query)
    assert left.headers["Location"] == "https://app.example/?state=bye"
    assert browser.get("/account").status_code == 302


def test_logout_with_another_persons_id_token_asks_first(app: Flask, browser: FlaskClient) -> None:
    _, tokens = signed_in(app, browser)
    add_user(app, "bob")
    other = app.test_client()
    assert login(other, "bob").status_code == 303
    asked = other.get("/oidc/logout", query_string={"id_token_hint": tokens["id_token"]})
    assert asked.status_code == 200 and b"Log out?" in asked.data
    assert other.get("/account").status_code == 200


def test_logout_without_a_hint_asks_first(app: Flask, browser: FlaskClient) -> None:
    asked = browser.get("/oidc/logout")
    assert asked.status_code == 200 and b"Log out?" in asked.data
    assert browser.get("/account").status_code == 200
    done = browser.post("/oidc/logout", data={"decision": "logout"}, headers=SAME_ORIGIN)
    assert done.status_code == 303
    assert browser.get("/account").status_code == 302


def test_rotated_keys_sign_new_tokens_and_old_ones_stay_published(
    app: Flask, browser: FlaskClient
) -> None:
    _, before = signed_in(app, browser)
    with app.app_context():
        made = wiring.key_ring().rotate(datetime.now(UTC))
    _, after = signed_in(app, browser)
    published = {key["kid"] for key in browser.get("/oidc/jwks").json["keys"]}
    # The first sign-in made the RS256 key alone; it stays published beside the two new ones.
    assert set(made) < published and len(published) == 3
    claims_of(browser, before["id_token"])
    assert (
        jwt.decode(after["id_token"], KeySet.import_key_set(browser.get("/oidc/jwks").json)).header[
            "kid"
        ]
        in made
    )
    with app.app_context():
        later = datetime.now(UTC) + timedelta(hours=2)
        assert wiring.prune(later).keys == 1
        assert {key["kid"] for key in wiring.key_ring().published(later)["keys"]} == set(made)


def test_a_browser_app_may_call_the_back_channel_from_its_origin(
    app: Flask, browser: FlaskClient
) -> None:
    flow, tokens = signed_in(app, browser, public=True)
    origin = {"Origin": "https://app.example"}
    asked = app.test_client().options(
        "/oidc/userinfo",
        headers={**origin, "Access-Control-Request-Method": "GET"},
    )
    assert asked.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in asked.headers["Access-Control-Allow-Headers"]
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "client_id": flow.client.client_id,
    }
    renewed = app.test_client().post(
        "/oidc/token", data=refresh, headers={**origin, "Sec-Fetch-Site": "cross-site"}
    )
    assert renewed.status_code == 200 and renewed.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Origin" not in browser.get("/oidc/authorize").headers


def test_a_required_second_factor_is_set_up_before_any_app(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(second_factor="required")
    add_user(app, "ada")
    browser = app.test_client()
    login(browser, "ada")
    flow = start(register(app))
    sent = browser.get("/oidc/authorize", query_string=flow.query)
    assert sent.status_code == 303 and sent.headers["Location"] == "/account/totp"
    silent = browser.get("/oidc/authorize", query_string=start(flow.client, prompt="none").query)
    assert answer_of(silent.headers["Location"])["error"] == "login_required"


def test_the_email_scope_gives_the_verified_address(app: Flask, browser: FlaskClient) -> None:
    with app.app_context():
        user = wiring.operator().find("ada")
        wiring.addresses().set_by_operator(user, "ada@example.com", datetime.now(UTC))
    flow = start(register(app), scope="openid email")
    tokens = redeem(app.test_client(), flow, code_for(browser, flow)).json
    claims = claims_of(browser, tokens["id_token"])
    assert claims["email"] == "ada@example.com" and claims["email_verified"] is True
    assert "preferred_username" not in claims
