"""Put what a request names, its host and its path, in the one form the access rules compare.

A host is compared as browsers send it: lower-case ASCII, a name beyond ASCII in IDNA's
punycode (``bücher.example`` is ``xn--bcher-kva.example``), without a port or a final dot.
A path is compared as the app behind the proxy will read it: percent-escapes decoded once and
repeated slashes merged, so that ``/%61dmin`` and ``//admin`` meet the rules written for
``/admin`` rather than slipping past them. A path apps may read otherwise (``ambiguity``) is
refused before any rule.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

import idna

#: One label of a host name (RFC 1123 2.1): letters, digits and inner hyphens, 1 to 63 of them.
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")

#: Most characters in a host name (RFC 1035 2.3.4, without the root's final dot).
MAX_HOST_LENGTH = 253

#: How a rule's domain starts when it stands for every name below one (``*.example.com``).
WILDCARD = "*."


def host_name(text: str) -> str:
    """Return the host name ``text`` as rules compare it, or raise ValueError if it is none.

    Letters beyond ASCII are converted as browsers convert them (UTS #46 processing of IDNA
    2008, not transitional), so a rule written in Unicode meets the host a browser sends.
    """
    name = text.removesuffix(".")
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise ValueError(f"not a host name ({exc})") from None
    name = name.lower()
    if len(name) > MAX_HOST_LENGTH or not all(_LABEL.fullmatch(part) for part in name.split(".")):
        raise ValueError("not a host name")
    return name


def domain(text: str) -> str:
    """Return a rule's domain, a host name or ``*.`` and one, normalised; or raise ValueError."""
    if text.startswith(WILDCARD):
        return WILDCARD + host_name(text[len(WILDCARD) :])
    return host_name(text)


def host_of(header: str) -> str | None:
    """Return the host a ``Host`` header names without its port, normalised; None if no name.

    An address in brackets (IPv6) or anything else that is no host name is None: it matches no
    rule's domain, so the default policy decides.
    """
    name, colon, port = header.strip().rpartition(":")
    if not colon:
        name = port
    elif port and not port.isdigit():
        return None
    try:
        return host_name(name)
    except ValueError:
        return None


def covers(pattern: str, host: str) -> bool:
    """Return whether a rule's domain covers ``host``: the same name, or any name below a ``*.``.

    ``*.example.com`` covers ``a.example.com`` and ``a.b.example.com``, never ``example.com``.
    """
    if pattern.startswith(WILDCARD):
        return host.endswith(pattern[1:])
    return host == pattern


def ambiguity(raw: str) -> str:
    """Return why apps may read the path ``raw`` otherwise than the rules would, or "".

    A dot segment (``..``, ``.``, escaped or not), an escaped slash or backslash, a backslash,
    or a ``;`` parameter in a segment: servers resolve, decode or cut these differently (nginx
    passes ``..`` on as sent; Tomcat reads ``..;``), so a rule could be judged on another path
    than the one the app serves. Browsers never send them: they resolve dot segments first.
    """
    path = raw.split("?", 1)[0].split("#", 1)[0]
    lowered = path.lower()
    if "%2f" in lowered or "%5c" in lowered or "\\" in path:
        return "the path holds an escaped slash or a backslash"
    segments = unquote(path).split("/")
    if any(segment in (".", "..") or segment.startswith("..;") for segment in segments):
        return "the path holds a dot segment"
    if any(";" in segment for segment in segments):
        return "the path holds a ; parameter"
    return ""


def path_of(raw: str) -> str:
    """Return the path rules match in a request's path as sent: no query, decoded, resolved.

    A query or fragment left on it is cut. Percent-escapes are decoded exactly once, as the
    app will (decoding twice would let ``%2561`` reach a rule as ``a`` while the app reads
    ``%61``); then the dot segments are resolved as RFC 3986 5.2.4 does and empty segments
    dropped. A trailing slash is kept: ``/admin/`` and ``/admin`` may be two pages.
    """
    decoded = unquote(raw.split("?", 1)[0].split("#", 1)[0])
    kept: list[str] = []
    for segment in decoded.split("/"):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment not in ("", "."):
            kept.append(segment)
    last = decoded.rsplit("/", 1)[-1]
    trailing = bool(kept) and (decoded.endswith("/") or last in (".", ".."))
    return "/" + "/".join(kept) + ("/" if trailing else "")
