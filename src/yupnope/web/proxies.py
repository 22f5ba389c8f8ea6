"""Find the client's address behind reverse proxies, believing only the proxies we were told of.

``X-Forwarded-For`` is read only when ``YUPNOPE_TRUSTED_PROXIES`` says so: a count of proxies in
front (Werkzeug's ProxyFix takes that many entries from the right), or the CIDRs of the proxies
(entries are walked from the right while they belong to a trusted proxy). Without it, the header
is ignored and a warning is logged once, since a spoofed header must move no throttle.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .. import wiring
from ..addresses import Network
from ..config import Settings, env_name

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Wrap the WSGI app in the middleware the TRUSTED_PROXIES setting asks for."""
    settings = wiring.get(app).settings
    count = settings.proxy_count
    if count is not None:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)  # type: ignore[method-assign]
    elif settings.proxy_networks:
        app.wsgi_app = _TrustedNetworks(app.wsgi_app, settings.proxy_networks)  # type: ignore[method-assign]
    else:
        app.wsgi_app = _IgnoreForwarded(app.wsgi_app)  # type: ignore[method-assign]


def through_trusted_proxy(settings: Settings, peer: str) -> bool:
    """Return whether a request from ``peer`` (the connection's own address) is a proxy's.

    With a count of proxies, every request comes through them; with their networks, the
    ones from those networks do; with neither, none does.
    """
    if settings.proxy_count is not None:
        return settings.proxy_count > 0
    return among(peer, settings.proxy_networks)


def among(address: str, networks: tuple[Network, ...]) -> bool:
    """Return whether ``address`` belongs to one of ``networks``."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    forms: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        # A server listening on [::] sees an IPv4 proxy as ::ffff:a.b.c.d, which no IPv4
        # network contains; its IPv4 form is checked as well.
        forms.append(ip.ipv4_mapped)
    return any(form in network for form in forms for network in networks)


class _IgnoreForwarded:
    """Pass requests through untouched, warning once that a forwarded header was ignored."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.warned = False

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if not self.warned and "HTTP_X_FORWARDED_FOR" in environ:
            self.warned = True
            log.warning(
                "requests carry X-Forwarded-For, but %s is empty: the header is "
                "ignored and every client looks like the proxy; set it to the number or the "
                "CIDRs of the proxies in front",
                env_name("trusted_proxies"),
            )
        result: Iterable[bytes] = self.app(environ, start_response)
        return result


class _TrustedNetworks:
    """Take the client from X-Forwarded-For, skipping entries that are trusted proxies."""

    def __init__(self, app: Any, networks: tuple[Network, ...]) -> None:
        self.app = app
        self.networks = networks

    def trusted(self, address: str) -> bool:
        """Return whether ``address`` belongs to one of the trusted proxies."""
        return among(address, self.networks)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if self.trusted(environ.get("REMOTE_ADDR", "")):
            hops = [h.strip() for h in environ.get("HTTP_X_FORWARDED_FOR", "").split(",")]
            hops = [h for h in hops if h]
            while hops and self.trusted(hops[-1]):
                hops.pop()
            if hops:
                environ["REMOTE_ADDR"] = hops[-1]
            scheme = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[-1].strip().lower()
            if scheme in ("http", "https"):
                environ["wsgi.url_scheme"] = scheme
        result: Iterable[bytes] = self.app(environ, start_response)
        return result
