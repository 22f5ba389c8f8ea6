"""Use the pages in a real browser: Debian's Chromium, driven by Playwright, checked by axe-core.

Each flow of the contract is clicked through as a person would: by label and role, with the
keyboard alone, and with JavaScript off. Every page is checked by axe-core and photographed at a
phone's and a desktop's width, light and dark. Without Playwright or /usr/bin/chromium the module
skips with a reason; YUPNOPE_REQUIRE_BROWSER=1 (set by .ci/run) makes that a failure.

Playwright cannot download its own browser here, so it drives Debian's (`apt-get install
chromium`). Set YUPNOPE_README_SCREENSHOTS=1 to also write the README's pictures into
docs/screenshots/.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from helpers import (
    CHEAP_ARGON2,
    CHROMIUM,
    CHROMIUM_ARGS,
    GOOD_PASSWORD,
    NEW_PASSWORD,
    LiveServer,
    free_port,
    run_yupnope,
)

try:
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        ConsoleMessage,
        Page,
        expect,
        sync_playwright,
    )
except ImportError as exc:
    _IMPORT_ERROR: str | None = f"{exc.name} is not installed (pip install -e '.[test]')"
else:
    _IMPORT_ERROR = None

#: Read at import: the whole module skips, or fails, as it is collected.
REQUIRE_BROWSER = os.environ.get("YUPNOPE_REQUIRE_BROWSER") == "1"
README_SCREENSHOTS = os.environ.get("YUPNOPE_README_SCREENSHOTS") == "1"

REPOSITORY = Path(__file__).resolve().parent.parent
README_PICTURES = REPOSITORY / "docs" / "screenshots"

PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
#: Cheap hashing keeps the suite fast; sign-ups are many, all from one address.
SERVER_SETTINGS: dict[str, Any] = {**CHEAP_ARGON2, "throttle_signup_limit": 1000}
#: Serious enough to fail the build (axe's impact levels: minor, moderate, serious, critical).
BLOCKING_IMPACTS = {"serious", "critical"}


def _missing_browser() -> str | None:
    """Say what is missing to run the browser tests, or None when everything is there."""
    if _IMPORT_ERROR is not None:
        return _IMPORT_ERROR
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (apt-get install chromium chromium-driver)"
    return None


_MISSING = _missing_browser()
if _MISSING is not None:
    if REQUIRE_BROWSER:
        pytest.fail(f"{_MISSING} (YUPNOPE_REQUIRE_BROWSER=1)", pytrace=False)
    pytest.skip(_MISSING, allow_module_level=True)

pytestmark = pytest.mark.live


@dataclass(frozen=True)
class Look:
    """A width and a colour scheme to show every page in."""

    name: str
    viewport: dict[str, int]
    scheme: str
    scale: int


LOOKS = [
    Look("phone-light", PHONE, "light", 2),
    Look("phone-dark", PHONE, "dark", 2),
    Look("desktop-light", DESKTOP, "light", 1),
    Look("desktop-dark", DESKTOP, "dark", 1),
]


#: axe-core's own script, read once (it ships inside axe-playwright-python: no download).
AXE = Axe()


def assert_no_blocking_violations(page: Page, shown: str, look: Look) -> list[str]:
    """Fail on a serious or critical axe-core violation; return every one, a line each.

    The page is checked once it has loaded with its stylesheet: a form's answer may still be
    arriving when the click that sent it returns, and unstyled its colours are not its own.
    """
    page.wait_for_load_state("load")
    violations = AXE.run(page).response["violations"]
    lines = [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(node["target"]) for node in v["nodes"])
        for v in violations
    ]
    blocking = [
        line for v, line in zip(violations, lines, strict=True) if v["impact"] in BLOCKING_IMPACTS
    ]
    assert blocking == [], f"{shown} ({look.name}): {blocking}"
    return lines


def check_every_look(
    open_context: Callable[..., BrowserContext],
    visit: Callable[[Page, Look], Iterator[str]],
    pages: int,
) -> None:
    """Show the ``pages`` pages ``visit`` yields in every look: axe-core, and no sideways scroll."""
    seen: dict[str, list[str]] = {}
    for look in LOOKS:
        context = open_context(
            viewport=look.viewport, color_scheme=look.scheme, device_scale_factor=look.scale
        )
        page = context.new_page()
        for shown in visit(page, look):
            assert_no_blocking_violations(page, shown, look)
            width = page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= look.viewport["width"], f"{shown} is {width}px wide"
            seen.setdefault(shown, []).append(look.name)
        context.close()
    assert len(seen) == pages and all(len(looks) == len(LOOKS) for looks in seen.values()), seen


# Fixtures: one browser for the module, fresh contexts and live servers for each test.


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Launch Debian's headless Chromium once for the module."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def open_context(
    browser: Browser, live_server_factory: Callable[..., LiveServer]
) -> Iterator[Callable[..., BrowserContext]]:
    """Return a function that opens a browser context (a fresh profile: no cookies).

    Each context records what the console complains of; a script or style the
    Content-Security-Policy blocked, or a script error, fails the test. The contexts close
    before the test's live servers stop (hence ``live_server_factory``), so no kept-alive
    connection holds a server's graceful shutdown.
    """
    opened: list[BrowserContext] = []
    complaints: list[str] = []

    def complain(message: ConsoleMessage) -> None:
        # An error status is part of what the tests ask for; the console reports each one.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            complaints.append(message.text)

    def open_(**options: Any) -> BrowserContext:
        context = browser.new_context(**{"viewport": DESKTOP, **options})
        context.set_default_timeout(10_000)
        context.on("console", complain)
        context.on("weberror", lambda error: complaints.append(str(error.error)))
        opened.append(context)
        return context

    yield open_
    for context in opened:
        context.close()
    assert complaints == []


@pytest.fixture
def page(open_context: Callable[..., BrowserContext]) -> Page:
    """Return a page in a fresh desktop-sized context with JavaScript on."""
    return open_context().new_page()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Start one live server for the flows, with cheap hashing and room for every sign-up.

    One server for the module saves a start and a stop per test; each test uses a name of its
    own (the ``name`` fixture), and a test that needs other settings starts its own server.
    """
    started = LiveServer.started_in(tmp_path_factory.mktemp("browser"), SERVER_SETTINGS)
    yield started
    started.stop()


_names = itertools.count(1)


@pytest.fixture
def name() -> str:
    """Return an account name no other test of the module uses."""
    return f"ada{next(_names)}"


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the folder every screenshot of the module goes into."""
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def other_site() -> Iterator[Callable[[str], str]]:
    """Return a function that serves an HTML page from another site, and returns its address.

    The page is served on ``localhost`` while yupnope is at ``127.0.0.1``: different hosts, so
    Chromium sends the form with ``Sec-Fetch-Site: cross-site``, as from an attacker's site.
    """
    servers: list[ThreadingHTTPServer] = []

    def serve(html: str) -> str:
        body = html.encode()

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
        servers.append(httpd)
        return f"http://localhost:{httpd.server_address[1]}/"

    yield serve
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def outage(instance: Path) -> Iterator[str]:
    """Serve, in this process, an app whose database refuses every connection; return its URL.

    A `yupnope serve` process would not start without its database (it migrates first), so
    this one server is Werkzeug's, on a PostgreSQL address where nothing listens.
    """
    from werkzeug.serving import make_server

    from yupnope import create_app, wiring

    app = create_app(
        {
            "instance_path": str(instance),
            "database_url": f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/gone",
            "database_timeout_seconds": 1,
            **CHEAP_ARGON2,
        }
    )
    httpd = make_server("127.0.0.1", free_port(), app, threaded=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()
    wiring.get(app).engine.dispose()


# Helpers that act as a person does: by what the page says, not by its markup.


def sign_up(page: Page, server: LiveServer, name: str, password: str = GOOD_PASSWORD) -> None:
    """Create an account through the sign-up form and land on /yup."""
    page.goto(server.url + "/signup")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(server.url + "/yup")


def log_in(page: Page, server: LiveServer, name: str, password: str = GOOD_PASSWORD) -> None:
    """Fill in and send the login form (wherever it lands)."""
    page.goto(server.url + "/")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_load_state()


def log_out(page: Page, server: LiveServer) -> None:
    """Press the logout button and land on the login form."""
    page.get_by_role("button", name="Log out", exact=True).click()
    expect(page).to_have_url(server.url + "/")


def greeting(name: str) -> str:
    """Return the heading /yup greets ``name`` with."""
    return f"Yup, you are in, {name}!"


def assert_logged_out(page: Page, server: LiveServer) -> None:
    """Check that /yup sends this browser back to the login form."""
    page.goto(server.url + "/yup")
    expect(page).to_have_url(server.url + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")


def focused(page: Page) -> str:
    """Return the focused element: its id, else its accessible label, else its text."""
    found: str = page.evaluate(
        """() => {
            const e = document.activeElement;
            return e.id || e.getAttribute('aria-label') || e.textContent.trim();
        }"""
    )
    return found


def import_users(server: LiveServer, tmp_path: Path, users: dict[str, Any]) -> None:
    """Import users in the tutorial's shape with the real hashing, as an operator would."""
    path = tmp_path / "users.json"
    path.write_text(json.dumps(users))
    done = run_yupnope(server.instance, "users", "import", str(path), cheap=False)
    assert done.returncode == 0, done.stderr


# The flows


def test_sign_up_log_out_and_log_in_again(page: Page, server: LiveServer, name: str) -> None:
    sign_up(page, server, name)
    expect(page.get_by_role("heading", level=1)).to_have_text(greeting(name))
    expect(page.get_by_role("img", name="A smiling face with a green check mark")).to_be_visible()
    log_out(page, server)
    assert_logged_out(page, server)
    log_in(page, server, name.upper())
    expect(page).to_have_url(server.url + "/yup")
    expect(page.get_by_role("heading", level=1)).to_have_text(greeting(name))


def test_a_wrong_password_goes_to_nope_and_back(page: Page, server: LiveServer, name: str) -> None:
    sign_up(page, server, name)
    log_out(page, server)
    log_in(page, server, name, "not the password at all")
    expect(page).to_have_url(server.url + "/nope")
    expect(page.get_by_role("heading", level=1)).to_have_text("Nope, that did not work.")
    expect(page.get_by_text("The name or the password was not right.")).to_be_visible()
    expect(page.get_by_role("img", name="A sad face with a red cross")).to_be_visible()
    page.get_by_role("link", name="Back to the login form").click()
    expect(page).to_have_url(server.url + "/")
    log_in(page, server, name)
    expect(page).to_have_url(server.url + "/yup")


def test_a_throttled_login_says_how_long_to_wait(
    page: Page, live_server_factory: Callable[..., LiveServer]
) -> None:
    server = live_server_factory(
        workers=2,
        **CHEAP_ARGON2,
        throttle_free_failures=1,
        throttle_base_delay_seconds=120,
        throttle_max_delay_seconds=900,
    )
    for _ in range(4):
        log_in(page, server, "nobody-here", "a guess that is wrong")
        if "wait=" in page.url:
            break
    match = re.fullmatch(re.escape(server.url) + r"/nope\?wait=(\d+)", page.url)
    assert match, page.url
    wait = int(match[1])
    minutes = -(-wait // 60)
    expected = f"{wait} seconds" if wait < 60 else f"{minutes} minute{'s' * (minutes != 1)}"
    expect(page.get_by_role("alert")).to_have_text(f"Too many attempts. Try again in {expected}.")
    expect(page.get_by_text("each new try has to wait")).to_be_visible()
    page.get_by_role("link", name="Back to the login form").click()
    expect(page).to_have_url(server.url + "/")


def test_change_password_shows_why_and_ends_the_other_sessions(
    open_context: Callable[..., BrowserContext], server: LiveServer, name: str
) -> None:
    here, there = open_context().new_page(), open_context().new_page()
    sign_up(here, server, name)
    log_in(there, server, name)
    expect(there).to_have_url(server.url + "/yup")

    here.get_by_role("link", name="Your account").click()
    expect(here).to_have_url(server.url + "/account")
    current = here.get_by_label("Current password", exact=True)
    new = here.get_by_label("New password", exact=True)

    current.fill("not the password")
    new.fill(NEW_PASSWORD)
    here.get_by_role("button", name="Change password").click()
    current = here.get_by_label("Current password", exact=True)
    expect(current).to_be_focused()
    expect(current).to_have_attribute("aria-invalid", "true")
    expect(current).to_have_accessible_description("The current password is not right.")

    current.fill(GOOD_PASSWORD)
    here.get_by_label("New password", exact=True).fill("password1")
    here.get_by_role("button", name="Change password").click()
    new = here.get_by_label("New password", exact=True)
    expect(new).to_be_focused()
    expect(new).to_have_attribute("aria-invalid", "true")
    expect(new).to_have_accessible_description(re.compile("among the most common ones"))
    expect(here.get_by_label("Current password", exact=True)).not_to_have_attribute(
        "aria-invalid", "true"
    )

    here.get_by_label("Current password", exact=True).fill(GOOD_PASSWORD)
    new.fill(NEW_PASSWORD)
    here.get_by_role("button", name="Change password").click()
    expect(here).to_have_url(server.url + "/account?done=password")
    expect(here.get_by_role("status")).to_have_text(re.compile("Your password was changed."))

    assert_logged_out(there, server)
    log_in(there, server, name)
    expect(there).to_have_url(server.url + "/nope")
    log_in(there, server, name, NEW_PASSWORD)
    expect(there).to_have_url(server.url + "/yup")


def test_log_out_everywhere_ends_the_other_browsers_session(
    open_context: Callable[..., BrowserContext], server: LiveServer, name: str
) -> None:
    here, there = open_context().new_page(), open_context().new_page()
    sign_up(here, server, name)
    log_in(there, server, name)
    expect(there.get_by_role("heading", level=1)).to_have_text(greeting(name))
    here.goto(server.url + "/account")
    here.get_by_role("button", name="Log out everywhere").click()
    expect(here).to_have_url(server.url + "/")
    assert_logged_out(there, server)
    assert_logged_out(here, server)


def test_delete_account_asks_for_the_password(page: Page, server: LiveServer, name: str) -> None:
    sign_up(page, server, name)
    page.goto(server.url + "/account")
    delete_password = page.get_by_label("Password", exact=True)
    delete_password.fill("not the password")
    page.get_by_role("button", name="Delete my account").click()
    delete_password = page.get_by_label("Password", exact=True)
    expect(delete_password).to_be_focused()
    expect(delete_password).to_have_accessible_description(
        "The password is not right; the account was kept."
    )
    delete_password.fill(GOOD_PASSWORD)
    page.get_by_role("button", name="Delete my account").click()
    expect(page).to_have_url(server.url + "/?done=deleted")
    expect(page.get_by_role("status")).to_have_text("Your account was deleted.")
    log_in(page, server, name)
    expect(page).to_have_url(server.url + "/nope")


def test_an_imported_weak_password_must_be_changed_first(
    page: Page, server: LiveServer, tmp_path: Path
) -> None:
    import_users(server, tmp_path, {"david": {"password": "Baldy1"}})
    log_in(page, server, "david", "Baldy1")
    expect(page).to_have_url(server.url + "/account")
    expect(page.get_by_role("status")).to_have_text(re.compile("Choose a new one to continue"))
    expect(page.get_by_role("button", name="Log out everywhere")).to_have_count(0)
    expect(page.get_by_label("Current password", exact=True)).to_be_focused()
    page.goto(server.url + "/yup")
    expect(page).to_have_url(server.url + "/account")

    page.get_by_label("Current password", exact=True).fill("Baldy1")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page).to_have_url(server.url + "/account?done=password")
    page.get_by_role("link", name="Back").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(greeting("david"))


def test_a_cross_site_form_post_is_refused(
    page: Page, server: LiveServer, other_site: Callable[[str], str]
) -> None:
    attacker = other_site(
        f"""<!doctype html><html lang="en"><title>Another site</title>
        <form method="post" action="{server.url}/login">
          <input name="username" value="ada"><input name="password" value="{GOOD_PASSWORD}">
          <button>Win a prize</button>
        </form></html>"""
    )
    page.goto(attacker)
    with page.expect_response(server.url + "/login") as answer:
        page.get_by_role("button", name="Win a prize").click()
    response = answer.value
    assert response.request.header_value("sec-fetch-site") == "cross-site"
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect(page.get_by_text("sent from another site")).to_be_visible()


def test_an_outage_says_what_to_do(
    open_context: Callable[..., BrowserContext], outage: str, screenshots: Path
) -> None:
    for look in (LOOKS[0], LOOKS[3]):
        page = open_context(
            viewport=look.viewport, color_scheme=look.scheme, device_scale_factor=look.scale
        ).new_page()
        shown = page.goto(outage + "/")
        assert shown is not None
        # The form itself may still show (it needs no database); sending it cannot work.
        if shown.status == 200:
            page.get_by_label("Name", exact=True).fill("ada")
            page.get_by_label("Password", exact=True).fill(GOOD_PASSWORD)
            with page.expect_response(outage + "/login") as sent:
                page.get_by_role("button", name="Log in", exact=True).click()
            shown = sent.value
        assert shown.status == 503
        assert shown.headers["retry-after"].isdigit()
        expect(page.get_by_role("heading", level=1)).to_have_text("Service unavailable")
        expect(page.get_by_text("Nothing was changed; try again in a minute.")).to_be_visible()
        expect(page.get_by_text("If this keeps happening")).to_be_visible()
        assert_no_blocking_violations(page, "outage", look)
        page.screenshot(path=screenshots / f"outage-{look.name}.png", full_page=True)


# Keyboard, password managers, no JavaScript


def test_the_login_works_with_the_keyboard_alone(page: Page, server: LiveServer, name: str) -> None:
    sign_up(page, server, name)
    log_out(page, server)
    page.goto(server.url + "/")
    order = []
    for _ in range(7):
        page.keyboard.press("Tab")
        order.append(focused(page))
    assert order == [
        "yupnope",
        "username",
        "password",
        "Show password",
        "Log in",
        "Log in with a passkey",
        "Sign up",
    ]

    page.goto(server.url + "/")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid", "the focused field must show where the focus is"
    page.keyboard.type(name)
    page.keyboard.press("Tab")
    page.keyboard.type(GOOD_PASSWORD)
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_label("Password", exact=True)).to_have_attribute("type", "text")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    expect(page).to_have_url(server.url + "/yup")

    for _ in range(3):
        page.keyboard.press("Tab")
    assert focused(page) == "Log out"
    page.keyboard.press("Enter")
    expect(page).to_have_url(server.url + "/")


def test_fields_say_what_password_managers_should_fill(
    page: Page, server: LiveServer, name: str
) -> None:
    page.goto(server.url + "/")
    # "webauthn": the browser's autofill offers passkeys there too (conditional mediation).
    expect(page.get_by_label("Name", exact=True)).to_have_attribute(
        "autocomplete", "username webauthn"
    )
    expect(page.get_by_label("Password", exact=True)).to_have_attribute(
        "autocomplete", "current-password"
    )
    page.goto(server.url + "/signup")
    expect(page.get_by_label("Name", exact=True)).to_have_attribute("autocomplete", "username")
    expect(page.get_by_label("Password", exact=True)).to_have_attribute(
        "autocomplete", "new-password"
    )
    sign_up(page, server, name)
    page.goto(server.url + "/account")
    expect(page.get_by_label("Current password", exact=True)).to_have_attribute(
        "autocomplete", "current-password"
    )
    expect(page.get_by_label("New password", exact=True)).to_have_attribute(
        "autocomplete", "new-password"
    )
    expect(page.get_by_label("Password", exact=True)).to_have_attribute(
        "autocomplete", "current-password"
    )
    # Each password form names its account for the manager, without showing a field for it.
    names = page.locator('input[autocomplete="username"]')
    expect(names).to_have_count(2)
    for index in range(2):
        expect(names.nth(index)).to_have_value(name)
        expect(names.nth(index)).to_be_hidden()


def test_the_show_password_button(page: Page, server: LiveServer, name: str) -> None:
    page.goto(server.url + "/")
    password = page.get_by_label("Password", exact=True)
    toggle = page.get_by_role("button", name="Show password", exact=True)
    expect(toggle).to_have_attribute("type", "button")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    expect(toggle).to_have_attribute("aria-controls", "password")
    password.fill("secret words")
    toggle.click()
    expect(password).to_have_attribute("type", "text")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(page).to_have_url(server.url + "/")
    toggle.click()
    expect(password).to_have_attribute("type", "password")
    expect(toggle).to_have_attribute("aria-pressed", "false")

    # Shown or not, the password is a password field again when the form goes, so a password
    # manager still sees it. The test's listener runs after the page's and stops the sending.
    toggle.click()
    page.evaluate(
        """() => document.querySelector('form').addEventListener('submit', (event) => {
            window.typeWhenSent = document.getElementById('password').type;
            event.preventDefault();
        })"""
    )
    page.get_by_label("Name", exact=True).fill(name)
    password.press("Enter")
    assert page.evaluate("() => window.typeWhenSent") == "password"
    expect(toggle).to_have_attribute("aria-pressed", "false")

    page.goto(server.url + "/signup")
    expect(page.get_by_role("button", name="Show password", exact=True)).to_have_count(1)
    sign_up(page, server, name)
    page.goto(server.url + "/account")
    for label in ("Current password", "New password", "Password"):
        field = page.get_by_label(label, exact=True)
        toggle = page.get_by_role("button", name=f"Show {label.lower()}", exact=True)
        expect(toggle).to_have_attribute("aria-controls", str(field.get_attribute("id")))
        toggle.click()
        expect(field).to_have_attribute("type", "text")


def test_every_form_works_without_javascript(
    open_context: Callable[..., BrowserContext], server: LiveServer, name: str
) -> None:
    page = open_context(java_script_enabled=False).new_page()
    page.goto(server.url + "/")
    expect(page.get_by_role("button", name="Show password")).to_have_count(0)
    # The passkey's button waits hidden for its script.
    expect(page.get_by_role("button")).to_have_count(1)
    sign_up(page, server, name)
    log_out(page, server)
    log_in(page, server, name)
    expect(page).to_have_url(server.url + "/yup")
    page.get_by_role("link", name="Your account").click()
    expect(page.get_by_role("button", name=re.compile("^Show"))).to_have_count(0)
    page.get_by_label("Current password", exact=True).fill(GOOD_PASSWORD)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page).to_have_url(server.url + "/account?done=password")
    page.get_by_role("button", name="Log out everywhere").click()
    assert_logged_out(page, server)
    log_in(page, server, name, NEW_PASSWORD)
    expect(page).to_have_url(server.url + "/yup")


def test_sign_up_errors_sit_on_their_field_and_take_the_focus(
    page: Page, server: LiveServer, name: str
) -> None:
    sign_up(page, server, name)
    log_out(page, server)
    page.goto(server.url + "/signup")
    page.get_by_label("Name", exact=True).fill(name.upper())
    page.get_by_label("Password", exact=True).fill(GOOD_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    field = page.get_by_label("Name", exact=True)
    expect(field).to_be_focused()
    expect(field).to_have_value(name.upper())
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_accessible_description(f"The name {name.upper()!r} is taken.")
    expect(page).to_have_title("Error: Sign up · yupnope")

    other = name + "-other"
    field.fill(other)
    page.get_by_label("Password", exact=True).fill("password1")
    page.get_by_role("button", name="Create account").click()
    password = page.get_by_label("Password", exact=True)
    expect(password).to_be_focused()
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Name", exact=True)).not_to_have_attribute("aria-invalid", "true")
    expect(password).to_have_accessible_description(
        "That password is among the most common ones, so it is guessed first. "
        "At least 8 characters; a few words you will remember make a good one."
    )
    password.fill(GOOD_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(greeting(other))


# Every page: axe-core, and screenshots at a phone's and a desktop's width, light and dark


def visit_every_page(page: Page, server: LiveServer, name: str) -> Iterator[str]:
    """Bring ``page`` to each page and state in turn, yielding a name for each."""
    url = server.url
    page.goto(url + "/")
    yield "login"
    page.goto(url + "/?done=deleted")
    yield "login-account-deleted"
    page.goto(url + "/account")
    yield "login-to-continue"
    page.goto(url + "/signup")
    yield "signup"
    page.get_by_label("Name", exact=True).fill("david")
    page.get_by_label("Password", exact=True).fill(GOOD_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    yield "signup-name-taken"
    page.get_by_label("Name", exact=True).fill(name + "-new")
    page.get_by_label("Password", exact=True).fill("password1")
    page.get_by_role("button", name="Create account").click()
    yield "signup-weak-password"
    log_in(page, server, name, "a wrong password")
    yield "nope"
    page.goto(url + "/nope?wait=125")
    yield "nope-throttled"
    page.goto(url + "/no-such-page")
    yield "error-404"
    page.goto(url + "/account/delete")
    yield "error-405"
    log_in(page, server, name)
    expect(page).to_have_url(url + "/yup")
    yield "yup"
    page.goto(url + "/logout")
    yield "logout"
    page.goto(url + "/account")
    page.get_by_role("button", name="Show current password").click()
    yield "account"
    page.get_by_label("Current password", exact=True).fill("a wrong password")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    yield "account-wrong-password"
    log_out(page, server)
    log_in(page, server, "david", "Baldy1")
    expect(page).to_have_url(url + "/account")
    yield "account-must-change-password"


def test_every_page_passes_axe_in_every_look(
    open_context: Callable[..., BrowserContext],
    live_server_factory: Callable[..., LiveServer],
    tmp_path: Path,
    screenshots: Path,
) -> None:
    server = live_server_factory(workers=2, **SERVER_SETTINGS)
    import_users(server, tmp_path, {"david": {"password": "Baldy1"}})
    seen: dict[str, list[str]] = {}
    # Every violation, blocking or not, for a person to read: <screenshots>/axe.json.
    report: dict[str, list[str]] = {}
    for look in LOOKS:
        context = open_context(
            viewport=look.viewport, color_scheme=look.scheme, device_scale_factor=look.scale
        )
        page = context.new_page()
        name = "alice" if look.name == "phone-light" else f"alice-{look.name}"
        sign_up(page, server, name)
        log_out(page, server)
        for shown in visit_every_page(page, server, name):
            report[f"{shown} ({look.name})"] = assert_no_blocking_violations(page, shown, look)
            (screenshots / "axe.json").write_text(json.dumps(report, indent=2))
            seen.setdefault(shown, []).append(look.name)
            page.screenshot(path=screenshots / f"{shown}-{look.name}.png", full_page=True)
        context.close()
    assert all(len(looks) == len(LOOKS) for looks in seen.values()), seen
    assert len(seen) == 15

    if README_SCREENSHOTS:
        README_PICTURES.mkdir(parents=True, exist_ok=True)
        for shown in ("login", "yup", "nope"):
            shutil.copyfile(
                screenshots / f"{shown}-phone-light.png", README_PICTURES / f"{shown}.png"
            )


def test_pages_fit_a_phone_without_sideways_scrolling(
    open_context: Callable[..., BrowserContext], server: LiveServer
) -> None:
    page = open_context(viewport=PHONE).new_page()
    sign_up(page, server, "Bartholomew" * 5)
    for path in ("/yup", "/account", "/nope?wait=3600", "/signup", "/"):
        page.goto(server.url + path)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width}px wide"
