"""Harden every response: a strict Content-Security-Policy and the headers that go with it."""

from __future__ import annotations

import functools

from flask import Flask, Response, request

from .. import wiring

#: Every response's headers but the Content-Security-Policy, as (name, value) pairs.
_OTHERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)

#: Every response's headers' names in lower case, as a response's own are compared with them.
_ALWAYS_NAMES = frozenset(name.lower() for name, _ in (("Content-Security-Policy", ""), *_OTHERS))


#: Every response's security headers, as (name, value) pairs ready to append.
Always = tuple[tuple[str, str], ...]


def init_app(app: Flask) -> None:
    """Add the security headers to every response."""
    # Made once from the settings, rather than at every response.
    app.after_request(functools.partial(_harden, always(wiring.get(app).settings.cookie_domain)))


def always(cookie_domain: str) -> Always:
    """Return the headers every response carries, for a server whose cookie domain this is."""
    return (("Content-Security-Policy", content_security_policy(cookie_domain)), *_OTHERS)


def content_security_policy(cookie_domain: str, redirects: tuple[str, ...] = ()) -> str:
    """Return the policy: no inline script or style, nothing from elsewhere, no framing.

    OWASP Secure Headers Project. Forms post to this server alone, but a login or logout
    that returns to an app (``rd``, under ``cookie_domain``) redirects its form's POST there,
    and Chromium holds every redirect of a form's submission to ``form-action`` as well: the
    hosts ``rd`` may name (web/returns.py: the domain and below, http(s), any port) are let in.
    The passkeys' script fetches its ceremonies' options from this server alone (connect-src).
    ``redirects`` are the sources an app's sign-in or logout page sends its form on to: the
    app's own origin or scheme (web/oidc_pages.py).
    """
    forms = " ".join(("'self'", *redirects))
    if cookie_domain:
        forms += "".join(
            f" {scheme}://{host}:*"
            for scheme in ("https", "http")
            for host in (cookie_domain, f"*.{cookie_domain}")
        )
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; "
        f"form-action {forms}; frame-ancestors 'none'; base-uri 'none'"
    )


def _harden(always: Always, response: Response) -> Response:
    return harden(response, always, request.is_secure, request.blueprint is not None)


def harden(response: Response, always: Always, https: bool, from_view: bool) -> Response:
    """Add ``always`` to ``response``, HSTS over ``https``, and no-store where it must not stay.

    ``from_view`` says the answer came from a blueprint's view. Flask's hook for its requests,
    and web/checkpoint.py's for the checks it answers before Flask runs.
    """
    headers = response.headers
    # One pass over the response's few headers, then one append: a setdefault per header
    # scanned them all five times, the most time any one hook took on a signed-in page.
    if _ALWAYS_NAMES.isdisjoint(name.lower() for name, _ in headers.items()):
        headers.extend(always)
    else:
        for name, value in always:
            headers.setdefault(name, value)
    if https:
        # Only over HTTPS: a browser ignores HSTS sent over plain HTTP (RFC 6797 8.1).
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    # Not on a 304: it revalidates a static file, and its headers replace the cached copy's
    # (RFC 9111 4.3.4), so no-store there would throw the stylesheet away at every revalidation.
    redirect_or_error = response.status_code >= 300 and response.status_code != 304
    if from_view or redirect_or_error:
        # Pages may show account data, and the back button must not bring it back after
        # logout; only the stylesheet and pictures may be cached.
        response.headers["Cache-Control"] = "no-store"
    return response
