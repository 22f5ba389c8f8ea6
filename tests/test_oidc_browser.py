"""Sign in to an app with OpenID Connect in Chromium: login, consent, back to the app, logout.

The app is a page on another host (test_browser.other_site) whose address is the client's
redirect URI: the browser lands there with the code, as it would at a real app. Every page of
the journey passes axe-core in every look.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

import test_browser
from helpers import TIMEOUT, LiveServer, pkce, run_yupnope
from test_browser import BrowserContext, Look, Page, check_every_look, expect, sign_up

pytestmark = pytest.mark.live

# test_browser.py's fixtures, used here by name: pytest finds a fixture among a module's names.
browser = test_browser.browser
open_context = test_browser.open_context
page = test_browser.page
server = test_browser.server
name = test_browser.name
other_site = test_browser.other_site


@pytest.fixture
def app_url(other_site: Callable[[str], str]) -> str:
    """Return the address of an app's page on another host: its redirect URI."""
    return other_site("<!doctype html><html lang=en><title>Notes</title><h1>Notes</h1></html>")


def register(server: LiveServer, redirect_uri: str, *options: str) -> str:
    """Register a public client (PKCE) with the CLI, as an operator would; return its id."""
    done = run_yupnope(
        server.instance,
        "oidc",
        "clients",
        "add",
        "Notes",
        "--redirect-uri",
        redirect_uri,
        "--public",
        *options,
        "--json",
    )
    assert done.returncode == 0, done.stderr
    client_id: str = json.loads(done.stdout)["client_id"]
    return client_id


def authorize_url(server: LiveServer, client_id: str, redirect_uri: str) -> tuple[str, str]:
    """Return an authorization request's URL and its PKCE verifier."""
    verifier, challenge = pkce()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid profile groups",
        "state": "st4te",
        "nonce": "n0nce",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return f"{server.url}/oidc/authorize?{urlencode(query)}", verifier


def visit_app_pages(page: Page, server: LiveServer, name: str, app_url: str) -> Iterator[str]:
    """Walk the journey: login asked, consent, the app, the account's apps (signing out of it),
    a refusal, logout; yield each page."""
    client_id = register(server, app_url)
    url, verifier = authorize_url(server, client_id, app_url)
    page.goto(url)
    expect(page.get_by_text("Log in to see that page.")).to_be_visible()
    yield "app-login"
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(test_browser.GOOD_PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to Notes?")
    yield "app-consent"
    page.get_by_role("button", name="Allow").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Notes")
    landed = urlsplit(page.url)
    answer = {key: values[0] for key, values in parse_qs(landed.query).items()}
    assert answer["state"] == "st4te"
    tokens = requests.post(
        server.url + "/oidc/token",
        data={
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": app_url,
            "client_id": client_id,
            "code_verifier": verifier,
        },
        timeout=TIMEOUT,
    )
    assert tokens.status_code == 200, tokens.text
    assert "id_token" in tokens.json()
    page.goto(server.url + "/account#apps")
    expect(page.get_by_role("heading", name="Apps you signed in to")).to_be_visible()
    yield "account-apps"
    page.get_by_role("button", name=re.compile("^Sign out of Notes")).click()
    expect(page.get_by_text("You were signed out of that app.")).to_be_visible()
    closed = register(server, app_url, "--groups", "admins")
    page.goto(authorize_url(server, closed, app_url)[0])
    expect(page.get_by_text("not among those allowed to use Notes")).to_be_visible()
    yield "app-refused"
    page.goto(server.url + "/oidc/logout?" + urlencode({"client_id": client_id}))
    expect(page.get_by_text("Notes asks to log you out.")).to_be_visible()
    yield "app-logout"
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")


def test_sign_in_to_an_app_through_the_consent_page(
    page: Page, server: LiveServer, name: str, app_url: str
) -> None:
    sign_up(page, server, name)
    page.context.clear_cookies()
    for _ in visit_app_pages(page, server, name, app_url):
        pass
    # Logged out of yupnope too: the app's next sign-in asks for the password again.
    page.goto(server.url + "/account")
    expect(page.get_by_text("Log in to see that page.")).to_be_visible()


def test_every_app_page_passes_axe_in_every_look(
    open_context: Callable[..., BrowserContext], server: LiveServer, app_url: str
) -> None:
    def visit(page: Page, look: Look) -> Iterator[str]:
        name = f"ada-apps-{look.name}"
        sign_up(page, server, name)
        page.context.clear_cookies()
        return visit_app_pages(page, server, name, app_url)

    check_every_look(open_context, visit, pages=5)
