"""Decide what a group's name may be: a shape that travels safely in a header and in a rule.

A user's groups will reach reverse proxies as one comma-separated header (``Remote-Groups``)
and access rules will name them as ``group:NAME``, so a name holds nothing either would have
to quote or could misread: lower-case ASCII letters, digits, ``.``, ``_`` and ``-``, starting
with a letter or a digit (never ``-``, which a command line would take for an option). Unlike
a user's name, a group's is chosen by the operator, so no wider alphabet is needed, and no
look-alikes can arise. Capitals are taken as their lower-case letters, so ``Staff`` and
``staff`` name one group, as they would in a rule typed either way.
"""

from __future__ import annotations

import re

from .errors import InvalidGroupName

#: Most characters in a group's name.
MAX_LENGTH = 64

_SHAPE = re.compile(rf"[a-z0-9][a-z0-9._-]{{0,{MAX_LENGTH - 1}}}")


def parse(raw: str) -> str:
    """Return the group's name ``raw`` stands for (capitals lowered), or raise InvalidGroupName."""
    # Lowered only once known to be ASCII: str.lower() turns some other letters into ASCII
    # ones ("K", the Kelvin sign, into "k"), which would let a name in through a disguise.
    name = raw.lower() if raw.isascii() else raw
    if _SHAPE.fullmatch(name) is None:
        raise InvalidGroupName(
            f"The group name {raw!r} is not one: use 1 to {MAX_LENGTH} lower-case letters a-z, "
            "digits, '.', '_' or '-', starting with a letter or a digit."
        )
    return name
