"""Use passkeys in a real browser: Debian's Chromium with the DevTools protocol's authenticator.

Chrome's virtual authenticator (the Chrome DevTools Protocol's ``WebAuthn`` domain) stands in
for a phone or a security key: a CTAP2 platform authenticator with resident keys and user
verification that touches itself (``automaticPresenceSimulation``). Everything else is real: a
`yupnope serve` process, the pages, static/passkeys.js and py_webauthn's checks. The pages are
visited at ``localhost``, since WebAuthn takes a domain, not an address, as its RP ID.

Skips with test_browser.py's reasons, and fails instead under YUPNOPE_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from helpers import CHROMIUM, CHROMIUM_ARGS, LiveServer, free_port, run_yupnope

# Imported from test_browser.py, which skips (or fails) first when Playwright or Chromium is
# missing; Playwright's names come through it for that reason.
from test_browser import (
    LOOKS,
    SERVER_SETTINGS,
    Browser,
    BrowserContext,
    Page,
    assert_no_blocking_violations,
    expect,
    focused,
    greeting,
    log_in,
    log_out,
    sign_up,
    sync_playwright,
)

if TYPE_CHECKING:
    from playwright.sync_api import CDPSession, Request

pytestmark = pytest.mark.live

#: A platform authenticator as a phone or laptop has: CTAP2, built in, with resident keys and
#: user verification (a fingerprint or PIN it always accepts), touched automatically.
PLATFORM = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


@dataclass(frozen=True)
class Site:
    """The live server as the browser visits it: at ``localhost``, a domain WebAuthn accepts."""

    server: LiveServer

    @property
    def url(self) -> str:
        return f"http://localhost:{self.server.port}"

    @property
    def instance(self) -> Path:
        return self.server.instance


#: How long a DevTools command may take, in milliseconds. The WebAuthn domain answers at once;
#: Playwright's own default is to wait forever, which would hang the whole run instead.
CDP_TIMEOUT = 10_000


def send(cdp: CDPSession, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """Send one DevTools command and return its answer, failing after ``CDP_TIMEOUT``."""
    answer: dict[str, Any] = cdp.send(method, params, timeout=CDP_TIMEOUT)
    return answer


@dataclass
class Authenticator:
    """A virtual authenticator attached to one page, and the DevTools session that drives it."""

    cdp: CDPSession
    id: str

    def credentials(self) -> list[dict[str, Any]]:
        """Return the credentials the authenticator holds (with their private keys)."""
        found: list[dict[str, Any]] = send(
            self.cdp, "WebAuthn.getCredentials", {"authenticatorId": self.id}
        )["credentials"]
        return found

    def replace(self, credential: dict[str, Any]) -> None:
        """Put ``credential`` in place of the one with its id (a counter set back, say)."""
        send(
            self.cdp,
            "WebAuthn.removeCredential",
            {"authenticatorId": self.id, "credentialId": credential["credentialId"]},
        )
        send(
            self.cdp,
            "WebAuthn.addCredential",
            {"authenticatorId": self.id, "credential": credential},
        )

    def detach(self) -> list[dict[str, Any]]:
        """Remove the authenticator from its page; return the credentials it held."""
        held = self.credentials()
        send(self.cdp, "WebAuthn.removeVirtualAuthenticator", {"authenticatorId": self.id})
        return held


def attach(
    page: Page, credentials: list[dict[str, Any]] | None = None, **options: Any
) -> Authenticator:
    """Attach a virtual platform authenticator to ``page``, holding ``credentials``."""
    cdp = page.context.new_cdp_session(page)
    send(cdp, "WebAuthn.enable", {"enableUI": False})
    added = send(cdp, "WebAuthn.addVirtualAuthenticator", {"options": {**PLATFORM, **options}})
    found = Authenticator(cdp, added["authenticatorId"])
    for credential in credentials or []:
        send(cdp, "WebAuthn.addCredential", {"authenticatorId": found.id, "credential": credential})
    return found


def log_in_with_password(
    page: Page, site: Site, name: str, authenticator: Authenticator
) -> Authenticator:
    """Log in with the password, the authenticator detached meanwhile (see below)."""
    held = authenticator.detach()
    log_in(page, site, name)  # type: ignore[arg-type]
    return attach(page, held)


def log_out_without_autofill(page: Page, site: Site, authenticator: Authenticator) -> Authenticator:
    """Log out with no authenticator attached, then attach one with the same passkeys.

    The virtual authenticator answers the login form's autofill (conditional mediation) at
    once, as a person picking their passkey would. The form asks only if the browser says
    autofill is available, as it does while an authenticator is attached; so it comes back
    once the page has been told no. Asked again after the load event (the form's script has
    run), the browser answers after it answered the form, and the same.
    """
    held = authenticator.detach()
    log_out(page, site)  # type: ignore[arg-type]
    page.wait_for_load_state()
    available = page.evaluate("() => PublicKeyCredential.isConditionalMediationAvailable()")
    assert available is False, "passkey autofill is offered with no authenticator attached"
    return attach(page, held)


def log_out_into_autofill(
    page: Page, site: Site, authenticator: Authenticator, credentials: list[dict[str, Any]]
) -> tuple[Authenticator, int]:
    """Log out with ``credentials`` attached, for the login form's autofill to answer at once.

    Return the new authenticator and the status of the passkey login the autofill posted.
    Attached before the login form loads, the authenticator answers its autofill request
    for sure, where one attached after the form loaded may or may not.
    """
    authenticator.detach()
    answering = attach(page, credentials)
    with page.expect_response(
        lambda answer: answer.url == site.url + "/login/passkey" and answer.request.method == "POST"
    ) as answered:
        page.get_by_role("button", name="Log out", exact=True).click()
    return answering, answered.value.status


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Launch Debian's headless Chromium once for the module."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Start one live server for the module, with cheap hashing and room for every sign-up."""
    started = LiveServer.started_in(tmp_path_factory.mktemp("passkeys"), SERVER_SETTINGS)
    yield Site(started)
    started.stop()


@pytest.fixture
def open_context(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """Return a function that opens a fresh browser context; a script error fails the test."""
    opened: list[BrowserContext] = []
    complaints: list[str] = []

    def open_(**options: Any) -> BrowserContext:
        context = browser.new_context(**{"viewport": {"width": 1280, "height": 800}, **options})
        context.set_default_timeout(10_000)
        context.on("weberror", lambda error: complaints.append(str(error.error)))
        opened.append(context)
        return context

    yield open_
    for context in opened:
        context.close()
    assert complaints == []


@pytest.fixture
def page(open_context: Callable[..., BrowserContext]) -> Page:
    """Return a page in a fresh desktop-sized context."""
    return open_context().new_page()


_names = iter(range(1, 10_000))


@pytest.fixture
def name() -> str:
    """Return an account name no other test of the module uses."""
    return f"grace{next(_names)}"


def add_passkey(page: Page, site: Site, label: str = "Laptop") -> None:
    """Add a passkey named ``label`` from the account page, in sudo mode already."""
    page.goto(site.url + "/account")
    page.get_by_label("Name of the new passkey").fill(label)
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_text("Your passkey was added.")).to_be_visible()


def events_of(site: Site, name: str) -> list[str]:
    """Return the kinds of event the audit log holds for ``name``, oldest first."""
    done = run_yupnope(site.instance, "audit", "--user", name)
    assert done.returncode == 0, done.stderr
    return [line.split()[2] for line in done.stdout.splitlines()[1:]]


# The flows


def test_add_a_passkey_then_log_in_with_it_alone(page: Page, site: Site, name: str) -> None:
    authenticator = attach(page)
    sign_up(page, site, name)  # type: ignore[arg-type]
    add_passkey(page, site, "My laptop")
    [held] = authenticator.credentials()
    assert held["isResidentCredential"] is True
    expect(page.get_by_label("Name", exact=True)).to_have_value("My laptop")
    expect(page.get_by_text("not used yet")).to_be_visible()

    log_out_without_autofill(page, site, authenticator)
    page.get_by_role("button", name="Log in with a passkey").click()
    expect(page).to_have_url(site.url + "/yup")
    expect(page.get_by_role("heading", level=1)).to_have_text(greeting(name))
    assert events_of(site, name)[-2:] == ["passkey_used", "login"]

    page.goto(site.url + "/account")
    expect(page.get_by_text("last used")).to_be_visible()


def test_passkeys_work_with_the_keyboard_alone(page: Page, site: Site, name: str) -> None:
    authenticator = attach(page)
    sign_up(page, site, name)  # type: ignore[arg-type]
    page.goto(site.url + "/account")
    page.get_by_label("Name of the new passkey").focus()
    page.keyboard.type("Keyboard")
    page.keyboard.press("Tab")
    assert focused(page) == "Add a passkey"
    page.keyboard.press("Enter")
    expect(page.get_by_text("Your passkey was added.")).to_be_visible()

    authenticator = log_out_without_autofill(page, site, authenticator)
    order = []
    for _ in range(6):
        page.keyboard.press("Tab")
        order.append(focused(page))
    assert order[-1] == "Log in with a passkey", order
    page.keyboard.press("Enter")
    expect(page).to_have_url(site.url + "/yup")


def test_the_name_fields_autofill_offers_the_passkey(page: Page, site: Site, name: str) -> None:
    authenticator = attach(page)
    sign_up(page, site, name)  # type: ignore[arg-type]
    add_passkey(page, site)
    authenticator = log_out_without_autofill(page, site, authenticator)
    expect(page.get_by_label("Name", exact=True)).to_have_attribute(
        "autocomplete", "username webauthn"
    )
    # The virtual authenticator picks its passkey from the autofill as soon as it is asked,
    # with nothing clicked: the form's conditional request logs in.
    page.reload()
    expect(page).to_have_url(site.url + "/yup")
    assert events_of(site, name)[-2:] == ["passkey_used", "login"]


def test_a_passkey_is_the_second_step_after_the_password(page: Page, site: Site, name: str) -> None:
    authenticator = attach(page)
    sign_up(page, site, name)  # type: ignore[arg-type]
    add_passkey(page, site)
    authenticator = log_out_without_autofill(page, site, authenticator)
    log_in_with_password(page, site, name, authenticator)
    expect(page).to_have_url(site.url + "/login/second-factor")
    expect(page.get_by_text("Now use one of your passkeys.")).to_be_visible()
    expect(page.get_by_label("Code")).to_have_count(0)
    # With the keyboard alone.
    for _ in range(4):
        page.keyboard.press("Tab")
        if focused(page) == "Use a passkey":
            break
    assert focused(page) == "Use a passkey"
    page.keyboard.press("Enter")
    expect(page).to_have_url(site.url + "/yup")
    assert events_of(site, name)[-2:] == ["passkey_used", "login"]


def test_removing_a_passkey_asks_who_you_are_and_a_passkey_answers(
    page: Page, site: Site, name: str
) -> None:
    authenticator = attach(page)
    sign_up(page, site, name)  # type: ignore[arg-type]
    add_passkey(page, site, "Old phone")
    age_sessions_of(site, name)
    page.goto(site.url + "/account")
    page.get_by_role("button", name="Remove passkey Old phone").click()
    expect(page).to_have_url(
        re.compile(
            re.escape(
                site.url + "/account/confirm?next=/account%23passkeys&then=/account/passkeys/"
            )
        )
    )
    page.get_by_role("button", name="Use a passkey").click()
    # The check passed, and the removal it was asked for is made.
    expect(page.get_by_text("Your passkey was removed.")).to_be_visible()
    expect(page.get_by_text("You have no passkeys yet.")).to_be_visible()
    assert "passkey_removed" in events_of(site, name)

    # With no passkey left, the password alone logs in again.
    authenticator.detach()
    log_out(page, site)  # type: ignore[arg-type]
    log_in(page, site, name)  # type: ignore[arg-type]
    expect(page).to_have_url(site.url + "/yup")


def test_a_passkey_can_be_renamed(page: Page, site: Site, name: str) -> None:
    attach(page)
    sign_up(page, site, name)  # type: ignore[arg-type]
    add_passkey(page, site, "Phone")
    page.get_by_label("Name", exact=True).fill("Work phone")
    page.get_by_role("button", name="Rename passkey Phone").click()
    expect(page.get_by_text("Your passkey was renamed.")).to_be_visible()
    expect(page.get_by_label("Name", exact=True)).to_have_value("Work phone")


def test_an_answer_made_for_another_origin_is_refused(
    page: Page, site: Site, name: str, phishing_site: str
) -> None:
    authenticator = attach(page)
    sign_up(page, site, name)  # type: ignore[arg-type]
    add_passkey(page, site)
    authenticator = log_out_without_autofill(page, site, authenticator)
    options = page.evaluate(
        "fetch('/login/passkey/options', {method: 'POST'}).then((answer) => answer.json())"
    )
    # Another site on the same host may ask for an answer for the RP ID "localhost", with the
    # server's own challenge; the browser then signs that site's origin into it.
    page.goto(phishing_site)
    credential = page.evaluate(
        """async (options) => {
            const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
            const made = await navigator.credentials.get({publicKey});
            return JSON.stringify(made.toJSON());
        }""",
        options,
    )
    assert phishing_site.rstrip("/") in credential_origin(credential)
    page.goto(site.url + "/signup")
    answer = page.request.post(site.url + "/login/passkey", form={"credential": credential})
    assert answer.status == 401
    assert "That passkey was not accepted." in answer.text()
    assert events_of(site, name)[-1] == "passkey_failed"


def test_a_replayed_answer_is_refused(page: Page, site: Site, name: str) -> None:
    authenticator = attach(page)
    sign_up(page, site, name)  # type: ignore[arg-type]
    add_passkey(page, site)
    authenticator = log_out_without_autofill(page, site, authenticator)
    sent: list[tuple[str, str]] = []

    def record(request: Request) -> None:
        if request.method == "POST" and request.url == site.url + "/login/passkey":
            sent.append((request.post_data or "", request.all_headers().get("cookie", "")))

    page.on("request", record)
    page.get_by_role("button", name="Log in with a passkey").click()
    expect(page).to_have_url(site.url + "/yup")
    [(body, cookies)] = sent
    assert "yupnope_passkey=" in cookies
    # The same answer, with the same cookies (the same browser, the same session), again.
    again = requests.post(
        site.url + "/login/passkey",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookies},
        allow_redirects=False,
        timeout=10,
    )
    assert again.status_code == 401
    assert "That passkey was not accepted." in again.text
    assert (
        "Set-Cookie" not in again.headers or "yupnope_session=" not in again.headers["Set-Cookie"]
    )


def test_a_counter_that_goes_back_is_refused_and_reported(
    page: Page, site: Site, name: str
) -> None:
    authenticator = attach(page)
    sign_up(page, site, name)  # type: ignore[arg-type]
    add_passkey(page, site)
    [held] = authenticator.credentials()
    # The passkey as one that has signed a thousand times, logging in: the server keeps its
    # counter. Chromium's virtual authenticator moves a counter on by a step of its choosing,
    # so the two counters are far apart.
    authenticator, status = log_out_into_autofill(
        page, site, authenticator, [{**held, "signCount": 1000}]
    )
    assert status == 303
    expect(page).to_have_url(site.url + "/yup")
    # A copy of it that has signed ten times: a clone, or the original after its copy.
    clone, status = log_out_into_autofill(page, site, authenticator, [{**held, "signCount": 10}])
    assert status == 401
    expect(page.get_by_text("That passkey was not accepted.")).to_be_visible()
    # The refusal shows the login form again, whose autofill the copy answers again, and so on
    # until the throttle refuses: detached, it answers no more. The page is left still, for a
    # browser context closed in the middle of a navigation may never finish closing.
    clone.detach()
    page.wait_for_load_state("networkidle")
    kinds = events_of(site, name)
    suspected = len(kinds) - 1 - kinds[::-1].index("passkey_clone_suspected")
    assert kinds[suspected - 1] == "passkey_failed"
    # No session came of it.
    assert "login" not in kinds[suspected:]


def test_every_passkey_page_passes_axe_in_every_look(
    open_context: Callable[..., BrowserContext], site: Site
) -> None:
    seen: dict[str, list[str]] = {}
    for look in LOOKS:
        context = open_context(
            viewport=look.viewport, color_scheme=look.scheme, device_scale_factor=look.scale
        )
        page = context.new_page()
        authenticator = attach(page)
        name = f"ada-passkeys-{look.name}"
        sign_up(page, site, name)  # type: ignore[arg-type]
        add_passkey(page, site, "Laptop")
        for shown in visit_passkey_pages(page, site, name, authenticator):
            assert_no_blocking_violations(page, shown, look)
            width = page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= look.viewport["width"], f"{shown} is {width}px wide"
            seen.setdefault(shown, []).append(look.name)
        context.close()
    assert all(len(looks) == len(LOOKS) for looks in seen.values()), seen
    assert len(seen) == 6


def visit_passkey_pages(
    page: Page, site: Site, name: str, authenticator: Authenticator
) -> Iterator[str]:
    """Show each page with a passkey's part, and yield its name while it is shown."""
    expect(page.get_by_text("Your passkey was added.")).to_be_visible()
    yield "account-passkey-added"
    page.goto(site.url + "/account/confirm?next=/account")
    expect(page.get_by_role("button", name="Use a passkey")).to_be_visible()
    yield "confirm-with-passkey"
    page.goto(site.url + "/account")
    page.get_by_label("Name", exact=True).fill("")
    page.get_by_role("button", name="Rename passkey Laptop").click()
    yield "account-passkey-name-refused"
    authenticator = log_out_without_autofill(page, site, authenticator)
    expect(page.get_by_role("button", name="Log in with a passkey")).to_be_visible()
    yield "login-with-passkey"
    authenticator = log_in_with_password(page, site, name, authenticator)
    expect(page.get_by_role("button", name="Use a passkey")).to_be_visible()
    yield "second-step-passkey"
    held = authenticator.detach()
    attach(page, [{**held[0], "signCount": 0}])
    page.get_by_role("button", name="Use a passkey").click()
    expect(page.get_by_text("That passkey was not accepted")).to_be_visible()
    yield "second-step-passkey-refused"


# Helpers


def age_sessions_of(site: Site, name: str) -> None:
    """Make the user's sessions' last proof an hour old: out of sudo mode, as time would."""
    database = sqlite3.connect(site.instance / "yupnope.db")
    try:
        with database:
            database.execute(
                "UPDATE sessions SET authenticated_at = datetime('now', '-1 hour') "
                "WHERE user_id = (SELECT id FROM users WHERE username = ?)",
                (name,),
            )
    finally:
        database.close()


def credential_origin(credential: str) -> str:
    """Return the origin a browser signed into an answer's clientDataJSON."""
    data = json.loads(credential)["response"]["clientDataJSON"]
    padded = data + "=" * (-len(data) % 4)
    origin: str = json.loads(base64.urlsafe_b64decode(padded))["origin"]
    return origin


@pytest.fixture
def phishing_site() -> Iterator[str]:
    """Serve an empty page at another origin on the same host, ``localhost``, and return it."""
    body = b"<!doctype html><title>Not yupnope</title><p>Nothing to see."

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://localhost:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
