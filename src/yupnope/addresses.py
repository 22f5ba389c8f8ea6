"""Parse the network addresses and web origins that settings name, as the web layer uses them.

Each function raises ValueError with a message that names the setting, ``where``.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from .access import targets

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(setting: str, where: str) -> tuple[Network, ...]:
    """Return the CIDRs in a comma-separated list, or raise ValueError naming the bad one."""
    found = []
    for part in setting.split(","):
        try:
            found.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"{where} must be a count or CIDRs, and {part.strip()!r} is neither"
            ) from None
    return tuple(found)


def origins(setting: str, where: str) -> frozenset[str]:
    """Return the origins in a comma-separated list, each as browsers write it."""
    parts = (part.strip() for part in setting.split(","))
    return frozenset(origin(part, where) for part in parts if part)


def origin(text: str, where: str) -> str:
    """Return ``text`` (a scheme, a host, a port) as browsers write it in ``Origin``."""
    try:
        parts = urlsplit(text)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 (reading it raises ValueError for a bad port)
    except ValueError:
        valid = False
    if not valid or parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(
            f"{where} takes origins like https://app.example.com, and {text!r} is not one"
        )
    # Browsers leave the scheme's default port out of Origin (RFC 6454 6.1).
    default = {"http": 80, "https": 443}[parts.scheme]
    port = "" if parts.port in (None, default) else f":{parts.port}"
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    return f"{parts.scheme}://{host}{port}"


def domain(text: str, where: str) -> str:
    """Return a DNS domain (``example.com``, ``.example.com``) as browsers send host names.

    Lower case, beyond ASCII in punycode (access/targets.host_name, as the access rules compare
    hosts), and a leading dot dropped, as browsers drop it from a cookie's Domain (RFC 6265
    5.2.3). An address is no domain: a cookie cannot cover the hosts "under" one, nor can one
    label (``localhost``), which browsers refuse as a cookie's Domain.
    """
    try:
        name = targets.host_name(text.strip().removeprefix("."))
    except ValueError:
        name = ""
    labels = name.split(".")
    if len(labels) < 2 or all(label.isdigit() for label in labels):
        raise ValueError(f"{where} takes a domain like example.com, and {text!r} is not one")
    return name


def within(host: str, parent: str) -> bool:
    """Return whether the host name ``host`` is ``parent`` or a name under it (both lower case)."""
    return host == parent or host.endswith("." + parent)


def check_covered(public_origin: str, domain: str, where: str, public_where: str) -> None:
    """Refuse a cookie ``domain`` that does not cover the public URL's host, which it must reach.

    ``where`` and ``public_where`` name the two settings in the error.
    """
    host = urlsplit(public_origin).hostname if public_origin else None
    if host is not None and not within(host, domain):
        raise ValueError(f"{where} must cover {public_where}'s host {host}, and {domain} does not")
