"""Parse the network addresses and web origins that settings name, as the web layer uses them.

Each function raises ValueError with a message that names the setting, ``where``.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

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
    """Return a DNS domain (``example.com``, ``.example.com``) lower-cased, in ASCII (IDNA).

    A leading dot is dropped, as browsers drop it from a cookie's Domain (RFC 6265 5.2.3). An
    address is no domain: a cookie cannot cover the hosts "under" one.
    """
    name = text.strip().removeprefix(".").rstrip(".")
    try:
        ascii_name = name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        ascii_name = ""
    labels = ascii_name.split(".")
    valid = (
        len(labels) >= 2
        and all(0 < len(label) <= 63 and label.replace("-", "").isalnum() for label in labels)
        and not all(label.isdigit() for label in labels)
        and not any(label.startswith("-") or label.endswith("-") for label in labels)
    )
    if not valid:
        raise ValueError(f"{where} takes a domain like example.com, and {text!r} is not one")
    return ascii_name


def within(host: str, parent: str) -> bool:
    """Return whether the host name ``host`` is ``parent`` or a name under it (both lower case)."""
    return host == parent or host.endswith("." + parent)
