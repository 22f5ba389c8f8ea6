"""Use email in Chromium against a live server: a stranger's sign-in stopped from the inbox.

The live `yupnope serve` sends through a real mail server in this process (tests/smtp_server.py:
STARTTLS and a login), trusting its certificate as a deployment trusts its mail server's. The
notice of a sign-in from a new browser arrives; its "this wasn't me" link, opened in the owner's
browser, ends the intruder's browser session and API token. Every email page passes axe-core in
every look.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
import requests

import test_browser
from helpers import GOOD_PASSWORD, NEW_PASSWORD, TIMEOUT, LiveServer, free_port, run_yupnope
from smtp_server import SmtpServer, make_certificate
from test_browser import SERVER_SETTINGS, BrowserContext, Look, Page, check_every_look, expect

pytestmark = pytest.mark.live

# test_browser.py's fixtures, used here by name: pytest finds a fixture among a module's names.
browser = test_browser.browser
open_context = test_browser.open_context
page = test_browser.page

#: The label of the login form's first field once accounts have addresses.
NAME_OR_EMAIL = "Name or email address"


@pytest.fixture(scope="module")
def mail_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    """Run the mail server the live server sends through."""
    server = SmtpServer(make_certificate(tmp_path_factory.mktemp("tls"))).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, mail_server: SmtpServer
) -> Iterator[LiveServer]:
    """Start a live server with email on; its links name its own address as the public URL."""
    port = free_port()
    settings = {
        **SERVER_SETTINGS,
        "email": "optional",
        "smtp_url": mail_server.url(),
        "mail_from": "yupnope <login@example.com>",
        "public_url": f"http://127.0.0.1:{port}",
    }
    trust = {"SSL_CERT_FILE": str(mail_server.certificate.authority)}
    started = LiveServer.started_in(
        tmp_path_factory.mktemp("email"), settings, port=port, extra_env=trust
    )
    yield started
    started.stop()


def link_in(mail_server: SmtpServer, count: int, kind: str) -> str:
    """Wait for the ``count``-th mail; return the path of the newest ``kind`` link received."""
    received = mail_server.inbox.wait_for(count)
    for found in reversed(received):
        body = found.message.get_body(preferencelist=("plain",))
        assert body is not None
        links = re.findall(rf"https?://[^/\s]+(/{kind}/[A-Za-z0-9_-]+)", body.get_content())
        if links:
            return str(links[-1])
    raise AssertionError(f"no {kind} link in {len(received)} mails")


def add_account(server: LiveServer, name: str) -> str:
    """Add an account with a verified address, as the operator does; return the address."""
    address = f"{name}@example.com"
    done = run_yupnope(
        server.instance,
        "users",
        "add",
        name,
        "--email",
        address,
        "--password-stdin",
        input=GOOD_PASSWORD + "\n",
    )
    assert done.returncode == 0, done.stderr
    return address


def log_in(page: Page, server: LiveServer, name: str, password: str = GOOD_PASSWORD) -> None:
    page.goto(server.url + "/")
    page.get_by_label(NAME_OR_EMAIL).fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in", exact=True).click()


def test_this_wasnt_me_from_the_inbox_ends_the_intruders_browser_and_token(
    open_context: Callable[..., BrowserContext], server: LiveServer, mail_server: SmtpServer
) -> None:
    address = add_account(server, "ada")
    before = len(mail_server.inbox.received)
    intruder = open_context().new_page()
    # The verified address logs in as the name does.
    log_in(intruder, server, address)
    expect(intruder).to_have_url(server.url + "/yup")
    api = requests.post(
        server.url + "/api/v1/sessions",
        json={"username": "ada", "password": GOOD_PASSWORD},
        timeout=TIMEOUT,
    )
    token = {"Authorization": f"Bearer {api.json()['token']}"}
    assert requests.get(server.url + "/api/v1/me", headers=token, timeout=TIMEOUT).ok
    # One notice for the new browser, one for the program without a device value.
    link = link_in(mail_server, before + 2, "not-me")
    notice = mail_server.inbox.received[before].message
    assert notice["Subject"] == "A new sign-in to your account" and notice["To"] == address

    owner = open_context().new_page()
    owner.goto(server.url + link)
    expect(owner.get_by_role("heading", level=1)).to_have_text("This wasn't me")
    owner.get_by_role("button", name="End everything and lock the password").click()
    expect(owner.get_by_role("heading", level=1)).to_have_text("Your account is safe again")

    intruder.goto(server.url + "/account")
    expect(intruder.get_by_text("Log in to see that page.")).to_be_visible()
    assert (
        requests.get(server.url + "/api/v1/me", headers=token, timeout=TIMEOUT).status_code == 401
    )
    log_in(intruder, server, "ada")
    expect(intruder).to_have_url(re.compile(r"/nope"))

    owner.get_by_role("link", name="Send me a reset link").click()
    owner.get_by_label("Email address").fill(address)
    sent = len(mail_server.inbox.received)
    owner.get_by_role("button", name="Send the link").click()
    expect(owner.get_by_role("status")).to_contain_text("is on its way")
    owner.goto(server.url + link_in(mail_server, sent + 1, "reset"))
    owner.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    owner.get_by_role("button", name="Set the new password").click()
    expect(owner.get_by_text("Your new password is set: log in with it.")).to_be_visible()
    log_in(owner, server, "ada", NEW_PASSWORD)
    expect(owner).to_have_url(server.url + "/yup")


def visit_email_pages(
    page: Page, server: LiveServer, mail_server: SmtpServer, name: str
) -> Iterator[str]:
    """Show each email page in turn, yielding its name while it is shown."""
    address = add_account(server, name)
    page.goto(server.url + "/forgot")
    yield "forgot"
    page.get_by_label("Email address").fill(address)
    count = len(mail_server.inbox.received)
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("status")).to_contain_text("is on its way")
    yield "forgot-sent"
    page.goto(server.url + link_in(mail_server, count + 1, "reset"))
    yield "reset"
    page.get_by_label("New password", exact=True).fill("password")
    page.get_by_role("button", name="Set the new password").click()
    expect(page.get_by_role("alert")).to_be_visible()
    yield "reset-refused"
    count = len(mail_server.inbox.received)
    log_in(page, server, name)
    expect(page).to_have_url(server.url + "/yup")
    page.goto(server.url + "/account")
    yield "account-with-email"
    page.get_by_label("New address").fill(f"{name}@new.example")
    page.get_by_role("button", name="Change address").click()
    expect(page.get_by_text("A link to confirm the address is on its way")).to_be_visible()
    # The new browser's notice, the link to the new address, the change told to the old one.
    page.goto(server.url + link_in(mail_server, count + 3, "verify-email"))
    yield "verify-email"
    page.get_by_role("button", name="Confirm the address").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Address confirmed")
    yield "verify-email-done"
    page.goto(server.url + link_in(mail_server, count + 3, "not-me"))
    yield "not-me"


def test_every_email_page_passes_axe_in_every_look(
    open_context: Callable[..., BrowserContext], server: LiveServer, mail_server: SmtpServer
) -> None:
    def visit(page: Page, look: Look) -> Iterator[str]:
        return visit_email_pages(page, server, mail_server, f"axe-{look.name}")

    check_every_look(open_context, visit, pages=8)
