"""Sign in to yupnope's OpenID provider with two relying parties that nobody here wrote.

openid-client (Node) and pyoidc's ``oic``, both certified by the OpenID Foundation, each discover
a live `yupnope serve`, sign a person in with the code flow and PKCE, validate the ID token, ask
userinfo, refresh, and log out; and each refuses an ID token whose payload was changed, before
and after `yupnope oidc rotate-keys`. Both kinds of client: confidential and public.

openid-client runs from tests/relying_party (`make test` runs `npm ci` there). Without node or
its node_modules those tests skip; YUPNOPE_REQUIRE_NODE=1 (set by .ci/run) makes that a failure.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from jwkest import BadSignature
from oic.oic.message import AccessTokenResponse, TokenErrorResponse

from helpers import (
    CHEAP_ARGON2,
    COOKIE,
    GOOD_PASSWORD,
    TIMEOUT,
    LiveServer,
    free_port,
    path_of,
    run_yupnope,
    skip_unless_required,
)
from relying_parties import App, NodeRP, OicRP, Person, kid_of, missing_node, tampered

pytestmark = pytest.mark.live

USER = "ada"

#: What an attacker between the app and the provider would change in an ID token.
FORGED = {"preferred_username": "mallory"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Start one live server for the module, with cheap hashing and one user."""
    started = LiveServer.started_in(tmp_path_factory.mktemp("relying-parties"), CHEAP_ARGON2)
    added = run_yupnope(
        started.instance, "users", "add", USER, "--password-stdin", input=GOOD_PASSWORD + "\n"
    )
    assert added.returncode == 0, added.stderr
    yield started
    started.stop()


@pytest.fixture(scope="module", params=["confidential", "public"])
def app(server: LiveServer, request: pytest.FixtureRequest) -> App:
    """Register an app of each kind, receiving its sign-ins where nothing listens.

    Nothing needs to: the person's browser is told to go there, and the test reads where.
    """
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    public = ["--public"] if request.param == "public" else []
    done = run_yupnope(
        server.instance,
        "oidc",
        "clients",
        "add",
        f"{request.param} app",
        "--redirect-uri",
        redirect_uri,
        *public,
        "--json",
    )
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)
    return App(made["client_id"], made.get("client_secret"), redirect_uri)


@pytest.fixture
def node_rp(server: LiveServer, app: App) -> NodeRP:
    """Return openid-client registered as ``app``, or skip when Node or it is missing."""
    missing = missing_node()
    if missing is not None:
        skip_unless_required(missing, "YUPNOPE_REQUIRE_NODE")
    return NodeRP(server.url, app)


def rotate_keys(server: LiveServer) -> None:
    done = run_yupnope(server.instance, "oidc", "rotate-keys")
    assert done.returncode == 0, done.stderr


def node_sign_in(rp: NodeRP, person: Person, **values: Any) -> dict[str, Any]:
    """Sign ``person`` in to openid-client; return its answer and the nonce it sent."""
    started = rp.run("authorize")
    callback_url = person.sign_in(started["url"])
    checks = {key: started[key] for key in ("code_verifier", "state", "nonce")}
    finished = rp.run("callback", callback_url=callback_url, **checks, **values)
    return {**finished, "nonce": started["nonce"]}


def oic_sign_in(rp: OicRP, person: Person) -> tuple[AccessTokenResponse, str, str]:
    """Sign ``person`` in to oic; return the tokens, the state and the nonce it sent."""
    url, state, nonce = rp.authorize()
    return rp.callback(person.sign_in(url)), state, nonce


def assert_logs_out(server: LiveServer, person: Person, end_session_url: str, app: App) -> None:
    """Follow the app's logout URL: back to the app with its state, and the session over."""
    held = person.http.cookies.get(COOKIE)
    assert held is not None and person.signed_in()
    answer = person.go(end_session_url)
    assert answer.status_code == 302, (answer.status_code, answer.text[:300])
    back = urlsplit(answer.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == app.front_page
    assert parse_qs(back.query) == {"state": ["bye"]}
    assert not person.signed_in()
    # Over at the server too, not only forgotten by the browser.
    stale = requests.get(
        server.url + "/account", cookies={COOKIE: held}, allow_redirects=False, timeout=TIMEOUT
    )
    assert path_of(stale) == "/"


def test_openid_client_signs_in_refreshes_and_logs_out(
    server: LiveServer, app: App, node_rp: NodeRP
) -> None:
    person = Person(server, USER)
    signed = node_sign_in(node_rp, person)
    assert "refused" not in signed, signed
    claims = signed["claims"]
    assert claims["iss"] == server.url
    assert claims["aud"] == app.client_id
    assert claims["preferred_username"] == USER
    # openid-client compared it with the one it sent; the provider echoed it.
    assert claims["nonce"] == signed["nonce"]
    assert signed["userinfo"]["sub"] == claims["sub"]
    assert signed["userinfo"]["preferred_username"] == USER
    again = node_sign_in(node_rp, Person(server, USER))
    assert again["claims"]["sub"] == claims["sub"]

    refreshed = node_rp.run("refresh", refresh_token=signed["refresh_token"])
    assert "refused" not in refreshed, refreshed
    assert refreshed["refresh_token"] not in (None, signed["refresh_token"])
    assert refreshed["claims"]["sub"] == claims["sub"]
    replayed = node_rp.run("refresh", refresh_token=signed["refresh_token"])
    assert replayed["refused"]["error"] == "invalid_grant"
    # A used refresh token presented again ends its grant: the one it was rotated into too.
    ended = node_rp.run("refresh", refresh_token=refreshed["refresh_token"])
    assert ended["refused"]["error"] == "invalid_grant"

    logout = node_rp.run(
        "logout",
        id_token=signed["id_token"],
        post_logout_redirect_uri=app.front_page,
        state="bye",
    )
    assert_logs_out(server, person, logout["url"], app)


def test_oic_signs_in_refreshes_and_logs_out(server: LiveServer, app: App) -> None:
    rp = OicRP(server.url, app)
    person = Person(server, USER)
    tokens, state, nonce = oic_sign_in(rp, person)
    id_token = tokens["id_token"]
    assert id_token["iss"] == server.url
    assert id_token["preferred_username"] == USER
    assert id_token["nonce"] == nonce
    userinfo = rp.client.do_user_info_request(state=state, method="GET")
    assert userinfo["sub"] == id_token["sub"]
    assert userinfo["preferred_username"] == USER
    again, _, _ = oic_sign_in(rp, Person(server, USER))
    assert again["id_token"]["sub"] == id_token["sub"]

    refreshed = rp.refresh(tokens["refresh_token"])
    assert isinstance(refreshed, AccessTokenResponse), refreshed.to_dict()
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    assert refreshed["id_token"]["sub"] == id_token["sub"]
    replayed = rp.refresh(tokens["refresh_token"])
    assert isinstance(replayed, TokenErrorResponse)
    assert replayed["error"] == "invalid_grant"
    ended = rp.refresh(refreshed["refresh_token"])
    assert isinstance(ended, TokenErrorResponse)
    assert ended["error"] == "invalid_grant"

    assert_logs_out(server, person, rp.logout_url(tokens["id_token_jwt"], "bye"), app)


def test_openid_client_refuses_a_tampered_id_token_across_a_key_rotation(
    server: LiveServer, node_rp: NodeRP
) -> None:
    person = Person(server, USER)
    before = node_sign_in(node_rp, person)
    assert "refused" not in before, before
    forged = node_sign_in(node_rp, person, tamper=FORGED)
    assert forged["refused"]["code"] == "OAUTH_INVALID_RESPONSE", forged
    assert "signature" in forged["refused"]["cause"], forged

    rotate_keys(server)
    after = node_sign_in(node_rp, person)
    assert "refused" not in after, after
    assert kid_of(after["id_token"]) != kid_of(before["id_token"])
    assert after["claims"]["sub"] == before["claims"]["sub"]
    forged = node_sign_in(node_rp, person, tamper=FORGED)
    assert forged["refused"]["code"] == "OAUTH_INVALID_RESPONSE", forged
    assert "signature" in forged["refused"]["cause"], forged


def test_oic_refuses_a_tampered_id_token_across_a_key_rotation(
    server: LiveServer, app: App
) -> None:
    rp = OicRP(server.url, app)
    person = Person(server, USER)
    before, _, _ = oic_sign_in(rp, person)
    old = before["id_token_jwt"]
    answer = {"access_token": before["access_token"], "token_type": "Bearer"}
    assert rp.validate({**answer, "id_token": old})["id_token"]["preferred_username"] == USER
    with pytest.raises(BadSignature):
        rp.validate({**answer, "id_token": tampered(old, **FORGED)})

    rotate_keys(server)
    # The same client, whose key jar holds the set from before: oic fetches it again when a
    # token names a key it does not know.
    after, _, _ = oic_sign_in(rp, person)
    new = after["id_token_jwt"]
    assert kid_of(new) != kid_of(old)
    assert after["id_token"]["sub"] == before["id_token"]["sub"]
    with pytest.raises(BadSignature):
        rp.validate({**answer, "id_token": tampered(new, **FORGED)})
    # The retired key stays published until its ID tokens expire (OpenID Connect Core 10.1.1).
    assert rp.validate({**answer, "id_token": old})["id_token"]["sub"] == before["id_token"]["sub"]
