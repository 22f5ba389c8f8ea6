"""Decide what counts as a user name, and the folded key under which two names are the same."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from .errors import InvalidUsername

#: Most characters in a user name, after NFKC normalisation.
MAX_LENGTH = 64

# Letters and symbols that render as nothing although Unicode does not class them as format
# characters: Hangul fillers, the braille blank, the combining grapheme joiner, and kin.
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5\u180e")


@dataclass(frozen=True)
class Username:
    """Carry a valid name as it is shown (NFKC, as typed) and its key (NFKC of the case fold)."""

    display: str
    key: str


def parse(raw: str) -> Username:
    """Return the name in ``raw`` with its key, or raise InvalidUsername saying what is wrong.

    Surrounding spaces are dropped; inside, only the plain space is allowed among white space, and
    control, format, private-use and unassigned characters are refused, so that two names that
    look alike cannot be two accounts.
    """
    name = unicodedata.normalize("NFKC", raw[: MAX_LENGTH * 4]).strip()
    if not name:
        raise InvalidUsername("Choose a name.")
    if len(raw) > MAX_LENGTH * 4 or len(name) > MAX_LENGTH:
        raise InvalidUsername(f"Use at most {MAX_LENGTH} characters for the name.")
    for char in name:
        category = unicodedata.category(char)
        hidden = category[0] == "C" or category in ("Zl", "Zp") or char in _INVISIBLE
        if hidden or (char.isspace() and char != " "):
            raise InvalidUsername(
                "The name may not contain control, invisible or special space characters."
            )
    if "  " in name:
        raise InvalidUsername("The name may not contain two spaces in a row.")
    return Username(display=name, key=unicodedata.normalize("NFKC", name.casefold()))
