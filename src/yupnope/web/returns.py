"""Decide where the portal may send a browser back to (``rd``): a page of an app it covers.

Behind a reverse proxy's forward-auth, an app sends an anonymous visitor to the login page with
the URL they wanted as ``rd``, and the login sends them back there. An open redirect would hand
a phishing page the portal's good name, so ``rd`` is followed only to a host under
``YUPNOPE_COOKIE_DOMAIN``, the hosts the session cookie reaches anyway, and only when nothing in
it can be read another way by a browser: no user part, no backslash, no control character or
space, no percent-encoding in the host, http(s) alone. Django's url_has_allowed_host_and_scheme
and the WHATWG URL parser's quirks are the yardstick.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from .. import addresses, wiring
from ..access import targets

#: Longest ``rd`` followed, as for ``next``: a URL longer than this is no app's page.
MAX_LENGTH = 2048


def safe_return_url(target: str | None) -> str | None:
    """Return ``target`` rewritten plainly when the portal may send a browser there, else None."""
    domain = wiring.get().settings.cookie_domain
    if not domain or not target or len(target) > MAX_LENGTH:
        return None
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in target) or "\\" in target:
        return None
    try:
        parts = urlsplit(target)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or "@" in parts.netloc or not parts.hostname:
        return None
    host = _ascii_host(parts.hostname)
    if host is None or not addresses.within(host, domain):
        return None
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, parts.fragment))


def _ascii_host(hostname: str) -> str | None:
    """Return ``hostname`` as browsers send it (lower case, punycode), or None if it is none."""
    try:
        return targets.host_name(hostname)
    except ValueError:
        return None
