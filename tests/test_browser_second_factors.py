"""Use the authenticator-app pages in a real browser: enrol, log in with a code, recover, remove.

Each journey runs against a real `yupnope serve` in Debian's Chromium, as tests/test_browser.py
does (its fixtures and helpers are imported from there, and so is its skip or failure when
Playwright or Chromium is missing). The codes are computed with pyotp from the secret the page
shows, as a person's phone would from the text they copied.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
import segno
from flask import Flask

import test_browser
from helpers import CHEAP_ARGON2, COOKIE, GOOD_PASSWORD, LiveServer
from test_browser import (
    LOOKS,
    SERVER_SETTINGS,
    BrowserContext,
    Page,
    assert_no_blocking_violations,
    expect,
    focused,
    greeting,
    log_in,
    log_out,
    sign_up,
)
from yupnope import create_app, wiring
from yupnope.models import SessionKind
from yupnope.security import tokens
from yupnope.sudo import WINDOW

pytestmark = pytest.mark.live

# test_browser.py's fixtures, used here by name: pytest finds a fixture among a module's names.
browser = test_browser.browser
open_context = test_browser.open_context
page = test_browser.page
server = test_browser.server
name = test_browser.name
screenshots = test_browser.screenshots

#: What the second step says to a code that is wrong or was used already.
WRONG_CODE = "That code is not right, or it was used already."

#: What the pages say to a user without a second factor when the server requires one.
REQUIRED = "This server asks every account for a second factor"

# Helpers that act as a person with an authenticator app does.


def app_from(page: Page) -> pyotp.TOTP:
    """Return the authenticator app a person sets up by typing the secret the page shows."""
    return pyotp.TOTP(page.locator("code.secret").inner_text())


def next_code(app: pyotp.TOTP) -> str:
    """Return the app's code for the step after the current one.

    Each step's code is taken once (the replay guard), and the step of the current code may
    have been taken a moment ago at enrolment; the server accepts one step either side.
    """
    return app.at(time.time() + app.interval)


def wrong_code(app: pyotp.TOTP) -> str:
    """Return six digits that are no code the server would take now."""
    near = {app.at(time.time() + step * app.interval) for step in range(-2, 3)}
    return next(code for code in ("123456", "654321", "111111") if code not in near)


def tab_to(page: Page, wanted: str, most: int = 30) -> None:
    """Press Tab until ``wanted`` has the focus (see test_browser.focused for what it names)."""
    seen = []
    for _ in range(most):
        page.keyboard.press("Tab")
        seen.append(focused(page))
        if seen[-1] == wanted:
            return
    raise AssertionError(f"Tab never reached {wanted!r}: {seen}")


def assert_qr_holds(page: Page, app: pyotp.TOTP, account: str) -> None:
    """Check the QR code is an inline SVG drawing the same secret as the text beside it.

    segno draws a given text the same way every time, so the drawing of the URI an app would
    read from that secret must be the page's.
    """
    figure = page.get_by_role("img", name="QR code holding the secret below")
    expect(figure).to_be_visible()
    expect(figure.locator("svg")).to_be_visible()
    uri = app.provisioning_uri(name=account, issuer_name="yupnope")
    drawn = segno.make(uri, error="m").svg_inline(unit=None)
    expected = re.search(r'class="qrline"[^>]* d="([^"]+)"', drawn)
    assert expected is not None
    expect(figure.locator("path.qrline")).to_have_attribute("d", expected[1])


def recovery_codes(page: Page) -> list[str]:
    """Return the recovery codes the page shows, after checking there are ten."""
    expect(page.get_by_role("heading", level=1)).to_have_text("Your recovery codes")
    items = page.get_by_role("list", name="Recovery codes").get_by_role("listitem")
    expect(items).to_have_count(10)
    return [text.strip() for text in items.all_inner_texts()]


def enrol(page: Page, server: LiveServer) -> tuple[pyotp.TOTP, list[str]]:
    """Set up an authenticator app from the account page; return it and the recovery codes.

    The session must be in sudo mode (a login or sign-up a moment ago is).
    """
    page.goto(server.url + "/account")
    page.get_by_role("link", name="Set up an authenticator app").click()
    page.get_by_role("button", name="Set up an authenticator app").click()
    app = app_from(page)
    page.get_by_label("Code the app shows now").fill(app.now())
    page.get_by_role("button", name="Turn on").click()
    return app, recovery_codes(page)


def give_code(page: Page, code: str) -> None:
    """Type ``code`` at the login's second step and send it."""
    expect(page.get_by_role("heading", level=1)).to_have_text("One more step")
    page.get_by_label("Code", exact=True).fill(code)
    page.get_by_role("button", name="Continue").click()


@contextmanager
def server_app(server: LiveServer) -> Iterator[Flask]:
    """Yield an app, in its context, on the live server's own instance folder and database."""
    app = create_app({"instance_path": str(server.instance), **CHEAP_ARGON2})
    try:
        with app.app_context():
            yield app
    finally:
        wiring.get(app).engine.dispose()


def let_sudo_lapse(context: BrowserContext, server: LiveServer) -> None:
    """Move this browser's last password check back past sudo mode's window, as time would."""
    token = next(c["value"] for c in context.cookies(server.url) if c["name"] == COOKIE)
    with server_app(server):
        store = wiring.store()
        found = store.credentials.session(tokens.digest(token), SessionKind.BROWSER.value)
        assert found is not None
        with store.tx.write():
            lapsed = datetime.now(UTC) - WINDOW - timedelta(minutes=1)
            store.sessions.authenticate(found[0].id, lapsed)


# The journeys


def test_enrol_with_the_keyboard_alone(page: Page, server: LiveServer, name: str) -> None:
    sign_up(page, server, name)
    let_sudo_lapse(page.context, server)
    page.goto(server.url + "/account")
    tab_to(page, "Set up an authenticator app")
    page.keyboard.press("Enter")
    expect(page).to_have_url(server.url + "/account/totp")
    tab_to(page, "Set up an authenticator app")
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(re.escape(server.url + "/account/confirm?next=")))
    password = page.get_by_label("Password", exact=True)
    expect(password).to_be_focused()
    page.keyboard.type(GOOD_PASSWORD)
    page.keyboard.press("Enter")
    # The check passed, and the change it was asked for is made: the secret is shown.
    expect(page).to_have_url(server.url + "/account/totp")

    app = app_from(page)
    assert re.fullmatch(r"[A-Z2-7]{32}", app.secret), app.secret
    assert_qr_holds(page, app, name)
    tab_to(page, "code")
    page.keyboard.type(app.now())
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text(re.compile("Your authenticator app is on"))
    codes = recovery_codes(page)
    assert all(re.fullmatch(r"[A-Z2-9]{4}(-[A-Z2-9]{4}){3}", code) for code in codes), codes
    assert len(set(codes)) == 10
    tab_to(page, "I have kept them: back to your account")
    page.keyboard.press("Enter")
    expect(page).to_have_url(server.url + "/account")
    expect(page.get_by_text("On: every login asks for the app's code")).to_be_visible()


def test_log_in_with_the_apps_code(page: Page, server: LiveServer, name: str) -> None:
    sign_up(page, server, name)
    app, _ = enrol(page, server)
    page.goto(server.url + "/yup")
    log_out(page, server)
    log_in(page, server, name)
    expect(page).to_have_url(server.url + "/login/second-factor")
    field = page.get_by_label("Code", exact=True)
    expect(field).to_be_focused()
    expect(field).to_have_attribute("autocomplete", "one-time-code")

    give_code(page, wrong_code(app))
    expect(page).to_have_url(server.url + "/login/second-factor")
    expect(page).to_have_title("Error: Second step · yupnope")
    field = page.get_by_label("Code", exact=True)
    expect(field).to_be_focused()
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("alert")).to_have_text(WRONG_CODE)
    expect(field).to_have_accessible_description(re.compile("^" + re.escape(WRONG_CODE)))

    give_code(page, next_code(app))
    expect(page).to_have_url(server.url + "/yup")
    expect(page.get_by_role("heading", level=1)).to_have_text(greeting(name))


def test_recover_with_a_recovery_code_once(page: Page, server: LiveServer, name: str) -> None:
    sign_up(page, server, name)
    app, codes = enrol(page, server)
    page.goto(server.url + "/yup")
    log_out(page, server)
    log_in(page, server, name)
    give_code(page, codes[0])
    expect(page).to_have_url(server.url + "/yup")
    log_out(page, server)

    log_in(page, server, name)
    give_code(page, codes[0])
    expect(page).to_have_url(server.url + "/login/second-factor")
    expect(page.get_by_label("Code", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("alert")).to_have_text(WRONG_CODE)
    give_code(page, next_code(app))
    expect(page).to_have_url(server.url + "/yup")

    page.goto(server.url + "/account")
    expect(page.get_by_text("9 recovery codes left.")).to_be_visible()


def test_remove_the_app_after_the_password_again(page: Page, server: LiveServer, name: str) -> None:
    sign_up(page, server, name)
    enrol(page, server)
    let_sudo_lapse(page.context, server)
    page.goto(server.url + "/account")
    page.get_by_role("button", name="Remove the app").click()
    expect(page).to_have_url(
        server.url + "/account/confirm?next=/account&then=/account/totp/delete"
    )
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your password")

    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Confirm").click()
    password = page.get_by_label("Password", exact=True)
    expect(password).to_be_focused()
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(password).to_have_accessible_description("The password is not right.")
    expect(page).to_have_title("Error: Confirm your password · yupnope")

    password.fill(GOOD_PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    # The check passed, and the removal it was asked for is made.
    expect(page).to_have_url(server.url + "/account?done=totp-removed")
    expect(page.get_by_role("status")).to_have_text(
        "Your authenticator app was removed. Logins ask for your password alone."
    )
    expect(page.get_by_text("Off: a login asks for your password alone.")).to_be_visible()

    log_out(page, server)
    log_in(page, server, name)
    expect(page).to_have_url(server.url + "/yup")


def test_a_required_second_factor_leads_to_enrolment(
    page: Page, live_server_factory: Callable[..., LiveServer], name: str
) -> None:
    server = live_server_factory(workers=2, **SERVER_SETTINGS, second_factor="required")
    page.goto(server.url + "/signup")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(GOOD_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(server.url + "/account/totp")
    expect(page.get_by_role("status")).to_have_text(re.compile(REQUIRED))
    page.goto(server.url + "/account")
    expect(page.get_by_role("status")).to_have_text(re.compile(REQUIRED))
    log_out(page, server)

    log_in(page, server, name)
    expect(page).to_have_url(server.url + "/account/totp")
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up an authenticator app")
    expect(page.get_by_role("status")).to_have_text(re.compile(REQUIRED))
    page.goto(server.url + "/yup")
    expect(page).to_have_url(server.url + "/account/totp")
    expect(page.get_by_role("status")).to_have_text(re.compile(REQUIRED))
    assert_no_blocking_violations(page, "totp-required", LOOKS[2])

    page.get_by_role("button", name="Set up an authenticator app").click()
    app = app_from(page)
    page.get_by_label("Code the app shows now").fill(app.now())
    page.get_by_role("button", name="Turn on").click()
    recovery_codes(page)
    page.goto(server.url + "/yup")
    expect(page.get_by_role("heading", level=1)).to_have_text(greeting(name))

    log_out(page, server)
    log_in(page, server, name)
    give_code(page, next_code(app))
    expect(page).to_have_url(server.url + "/yup")


# Every new page: axe-core, and screenshots at a phone's and a desktop's width, light and dark


def visit_every_page(page: Page, server: LiveServer, name: str) -> Iterator[str]:
    """Bring ``page`` through each second-factor page and state in turn, yielding a name."""
    url = server.url
    page.goto(url + "/account/totp")
    yield "totp-start"
    page.get_by_role("button", name="Set up an authenticator app").click()
    app = app_from(page)
    yield "totp-qr-code"
    page.get_by_label("Code the app shows now").fill(wrong_code(app))
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("alert")).to_be_visible()
    yield "totp-wrong-code"
    page.get_by_label("Code the app shows now").fill(app.now())
    page.get_by_role("button", name="Turn on").click()
    recovery_codes(page)
    yield "recovery-codes"
    page.goto(url + "/account")
    yield "account-app-on"
    page.goto(url + "/account/confirm?next=/account")
    yield "confirm"
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Confirm").click()
    yield "confirm-wrong-password"
    page.goto(url + "/account")
    log_out(page, server)
    log_in(page, server, name)
    yield "second-factor"
    give_code(page, wrong_code(app))
    yield "second-factor-wrong-code"


def test_every_second_factor_page_passes_axe_in_every_look(
    open_context: Callable[..., BrowserContext],
    server: LiveServer,
    screenshots: Path,
) -> None:
    seen: dict[str, list[str]] = {}
    # Every violation, blocking or not, for a person to read: <screenshots>/axe-second-factors.json.
    report: dict[str, list[str]] = {}
    for look in LOOKS:
        context = open_context(
            viewport=look.viewport, color_scheme=look.scheme, device_scale_factor=look.scale
        )
        page = context.new_page()
        name = f"grace-{look.name}"
        sign_up(page, server, name)
        for shown in visit_every_page(page, server, name):
            found = assert_no_blocking_violations(page, shown, look)
            report[f"{shown} ({look.name})"] = found
            (screenshots / "axe-second-factors.json").write_text(json.dumps(report, indent=2))
            page.screenshot(path=screenshots / f"{shown}-{look.name}.png", full_page=True)
            seen.setdefault(shown, []).append(look.name)
        context.close()
    assert all(len(looks) == len(LOOKS) for looks in seen.values()), seen
    assert len(seen) == 9
    # Not even a minor one on these pages, which are new.
    assert {shown: lines for shown, lines in report.items() if lines} == {}
