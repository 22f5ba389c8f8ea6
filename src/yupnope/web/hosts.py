"""Answer for the public host alone, and never build a redirect from the client's Host.

Werkzeug's URL map answers a path with doubled slashes (``//yup``) with a 308 whose Location
it builds from the request's Host header, so a forged Host came back in an absolute redirect
for a cache or a proxy to keep (host header injection, OWASP WSTG-INPV-17). That redirect is
answered here instead: on ``YUPNOPE_PUBLIC_URL`` when it is set, else with a relative path
(RFC 9110 10.2.2); every other redirect of the app is a relative path already.

With a public URL, a request for another host is refused (400) before anything else runs,
which also stops DNS rebinding against a server on a private address. Not Flask 3.1's
TRUSTED_HOSTS: it refuses while Flask builds the request's URL adapter, so the error page has
none to build its links with and the refusal ends as a 500.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, abort, redirect, request
from werkzeug.routing import RequestRedirect
from werkzeug.wrappers.response import Response

from .. import wiring
from .answers import CHECK_PREFIX


def init_app(app: Flask) -> None:
    """Refuse other hosts when there is a public URL, and answer the URL map's redirects."""
    settings = wiring.get(app).settings
    if settings.public_url:
        # The public host is read from the settings once, not at every request.
        app.before_request(functools.partial(refuse_other_hosts, hostname(settings.public_origin)))
    app.before_request(answer_routing_redirect)


def hostname(host_or_url: str) -> str | None:
    """Return the host name in a Host header's value or a URL, lower case, without port."""
    return urlsplit(host_or_url if "//" in host_or_url else f"//{host_or_url}").hostname


#: The health checks, which a monitor on the machine asks by address.
HEALTH = frozenset({"/healthz", "/healthz/live", "/healthz/ready"})


def refuse_other_hosts(public: str | None) -> None:
    """Refuse a request whose Host is not the public URL's host, ``public`` (400), but health.

    The port is not compared, as TRUSTED_HOSTS does not: a proxy may add or drop it. Werkzeug
    has already made a Host with characters no host name has into "", which matches nothing.
    """
    if request.path in HEALTH or request.path.startswith(CHECK_PREFIX):
        # A monitor on the machine asks by address; the answer tells only "ok" or not. A
        # proxy's check comes with the Host of the app it asks about.
        return
    if hostname(request.host) != public:
        abort(400, f"This server answers for {public} only.")


def answer_routing_redirect() -> Response | None:
    """Answer a redirect the URL map asks for (merged slashes) without the client's Host."""
    wanted = request.routing_exception
    if not isinstance(wanted, RequestRedirect):
        return None
    parts = urlsplit(wanted.new_url)
    # One leading slash only: "//host/path" is read as another host (RFC 3986 4.2).
    target = urlunsplit(("", "", "/" + parts.path.lstrip("/"), parts.query, ""))
    return redirect(wiring.get().settings.public_origin + target, wanted.code)
