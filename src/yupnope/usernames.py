"""Decide what counts as a user name, and the folded key under which two names are the same."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from .errors import InvalidUsername

#: Most characters in a user name, after NFKC normalisation.
MAX_LENGTH = 64

# Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt): characters that
# render as nothing, such as variation selectors and Hangul fillers, many of them not in a
# format category. The braille blank (U+2800) is added: it is not ignorable, but shows nothing.
_INVISIBLE_RANGES = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x2800, 0x2800),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


def _invisible(char: str) -> bool:
    point = ord(char)
    return any(low <= point <= high for low, high in _INVISIBLE_RANGES)


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
        hidden = category[0] == "C" or category in ("Zl", "Zp") or _invisible(char)
        if hidden or (char.isspace() and char != " "):
            raise InvalidUsername(
                "The name may not contain control, invisible or special space characters."
            )
    if "  " in name:
        raise InvalidUsername("The name may not contain two spaces in a row.")
    return Username(display=name, key=unicodedata.normalize("NFKC", name.casefold()))
