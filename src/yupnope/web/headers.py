"""Harden every response: a strict Content-Security-Policy and the headers that go with it."""

from __future__ import annotations

from flask import Flask, Response, request

#: No inline script or style, nothing from elsewhere, no framing (OWASP Secure Headers Project).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

#: Every response's headers, as (name, value) pairs ready to append.
_ALWAYS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)

#: Their names in lower case, as a response's own names are compared with them.
_ALWAYS_NAMES = frozenset(name.lower() for name, _ in _ALWAYS)


def init_app(app: Flask) -> None:
    """Add the security headers to every response."""
    app.after_request(_harden)


def _harden(response: Response) -> Response:
    headers = response.headers
    # One pass over the response's few headers, then one append: a setdefault per header
    # scanned them all five times, the most time any one hook took on a signed-in page.
    if _ALWAYS_NAMES.isdisjoint(name.lower() for name, _ in headers.items()):
        headers.extend(_ALWAYS)
    else:
        for name, value in _ALWAYS:
            headers.setdefault(name, value)
    if request.is_secure:
        # Only over HTTPS: a browser ignores HSTS sent over plain HTTP (RFC 6797 8.1).
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    # Not on a 304: it revalidates a static file, and its headers replace the cached copy's
    # (RFC 9111 4.3.4), so no-store there would throw the stylesheet away at every revalidation.
    redirect_or_error = response.status_code >= 300 and response.status_code != 304
    if request.blueprint is not None or redirect_or_error:
        # Pages may show account data, and the back button must not bring it back after
        # logout; only the stylesheet and pictures may be cached.
        response.headers["Cache-Control"] = "no-store"
    return response
