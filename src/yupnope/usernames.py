"""Decide what counts as a user name, its key, and the skeleton under which look-alikes are one.

A new name is NFKC-normalised and checked word by word against the PRECIS UsernameCaseMapped
profile (RFC 8265 3.3), each space-separated word as one "userpart" as RFC 8265 3.5 describes,
since the names here may hold single spaces, which PRECIS usernames refuse. Its letters may come
from one script only (UTS #39 5.2, Highly Restrictive: Latin with Japanese, Chinese or Korean
allowed).

The key, under which an account is found and two names are one, stays NFKC of the Unicode
case fold, as it was before PRECIS: RFC 8265 3.3 maps case with toLower, which would key
"Straße" as "straße" where it has keyed as "strasse", so every stored key with such a letter
would need rewriting, and two accounts that are one today would split. The fold is the wider of
the two, so it only ever makes more names one account. What PRECIS adds here is the refusal of
what it disallows (symbols, non-ASCII punctuation, compatibility characters, bidi mix-ups).

The skeleton (UTS #39 section 4, of the key) is unique among accounts beside the key: a name
that merely looks like a taken one, such as "аlice" with a Cyrillic а, is taken too.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from precis_i18n import get_profile

from .errors import InvalidUsername
from .security import lookalikes

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


#: RFC 8265 3.3's profile, each word of a name enforced as one userpart (RFC 8265 3.5).
_PRECIS = get_profile("UsernameCaseMapped")

#: What PRECIS's refusals (precis-i18n's ``reason``) mean for a person; others name the character.
_PRECIS_REFUSALS = {
    "DISALLOWED/symbols": "The name may not contain symbols such as {char}.",
    "DISALLOWED/punctuation": "The name may contain only ASCII punctuation, not {char}.",
    "DISALLOWED/bidi_rule": (
        "A word with right-to-left letters or digits must begin with a right-to-left letter "
        "and may not also hold left-to-right letters (RFC 5893)."
    ),
}


@dataclass(frozen=True)
class Username:
    """Carry a valid new name as shown (NFKC, as typed), its key and its skeleton."""

    display: str
    key: str
    skeleton: str


def parse(raw: str) -> Username:
    """Return the new name in ``raw`` with its key and skeleton, or raise InvalidUsername why not.

    On top of the shape every name has (see ``lookup_key``), each word must pass PRECIS and the
    letters may not mix scripts, so that two names that look alike cannot be two accounts.
    """
    name = _shaped(raw)
    for word in name.split(" "):
        try:
            _PRECIS.enforce(word)
        except UnicodeEncodeError as exc:
            raise InvalidUsername(_refusal(exc)) from None
    scripts = lookalikes.mixed_scripts(name)
    if scripts:
        listed = " and ".join([", ".join(scripts[:-1]), scripts[-1]])
        raise InvalidUsername(f"The name mixes letters of several scripts ({listed}).")
    key = _folded(name)
    return Username(display=name, key=key, skeleton=skeleton(key))


def lookup_key(raw: str) -> str:
    """Return the key of the account ``raw`` would name, or raise InvalidUsername.

    Only the shape rules apply here, not PRECIS nor the scripts: an account made before those
    rules keeps the name it has, and a look-alike of a name is simply no account's key.
    """
    return _folded(_shaped(raw))


def skeleton(key: str) -> str:
    """Return the skeleton of a name's key: two names whose skeletons are equal look alike."""
    return lookalikes.skeleton(key)


def _shaped(raw: str) -> str:
    """Return ``raw`` NFKC-normalised and stripped, or raise InvalidUsername for what is no name.

    Inside, only the plain space is allowed among white space, never two in a row, and control,
    format, private-use and unassigned characters are refused.
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
    return name


def _folded(name: str) -> str:
    """Return the key of a shaped name: NFKC of its case fold (see the module's docstring)."""
    return unicodedata.normalize("NFKC", name.casefold())


def _refusal(exc: UnicodeEncodeError) -> str:
    """Return the message for a word PRECIS refused, naming the character when it is one."""
    template = _PRECIS_REFUSALS.get(exc.reason, "The name may not contain {char}.")
    if "{char}" not in template:
        return template
    if exc.end - exc.start != 1:
        # A refusal of the whole word (precis-i18n reports it so), with no one character to name.
        return "The name is not allowed as a user name (RFC 8265)."
    char = exc.object[exc.start]
    return template.format(char=f"{char!r} (U+{ord(char):04X})")
