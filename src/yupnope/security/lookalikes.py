"""Tell strings that look alike, by Unicode's security mechanisms for identifiers (UTS #39).

Two tools: ``skeleton`` (UTS #39 section 4), the same for two strings a reader cannot tell apart,
and ``mixed_scripts`` (UTS #39 section 5.2, "Highly Restrictive"), the scripts a string mixes
when no reader would expect them together. The confusables are Unicode's own ``confusables.txt``
(17.0.0, gzipped beside this module; see ``NOTICE``): short of ICU's SpoofChecker, whose Python
binding (PyICU) must be compiled against a system ICU, no maintained library on PyPI gives the
prototype of each character, so this module applies the documented algorithm to the data. The
scripts come from fontTools, which keeps Unicode's Script_Extensions current.

A skeleton depends on the data: whoever ships a newer ``confusables.txt`` must recompute the
skeletons already stored, with a migration as ``0004_username_skeleton`` did.
"""

from __future__ import annotations

import gzip
import unicodedata
from functools import cache
from importlib import resources

from fontTools import unicodedata as scripts_data

#: Script_Extensions values that belong to every script: Common and Inherited (UTS #39 5.1).
_ANY_SCRIPT = frozenset({"Zyyy", "Zinh"})

# UTS #39 5.1: Han writes Chinese (Hanb with Bopomofo), Japanese (Jpan with kana) and Korean
# (Kore with Hangul), so each of those scripts also counts as the writing systems it belongs to.
_WRITING_SYSTEMS = {
    "Hani": frozenset({"Hanb", "Jpan", "Kore"}),
    "Hira": frozenset({"Jpan"}),
    "Kana": frozenset({"Jpan"}),
    "Hang": frozenset({"Kore"}),
    "Bopo": frozenset({"Hanb"}),
}

# UTS #39 5.2, Highly Restrictive: besides one script, Latin may join the scripts of Japanese,
# Chinese with Bopomofo, or Korean, as names in those languages do.
_ALLOWED_MIXES = (
    frozenset({"Latn", "Hani", "Hira", "Kana"}),
    frozenset({"Latn", "Hani", "Bopo"}),
    frozenset({"Latn", "Hani", "Hang"}),
)

# Unicode's Soft_Dotted property (PropList.txt, 17.0): letters whose dot an accent above replaces.
_SOFT_DOTTED_RANGES = (
    (0x0069, 0x006A), (0x012F, 0x012F), (0x0249, 0x0249), (0x0268, 0x0268), (0x029D, 0x029D),
    (0x02B2, 0x02B2), (0x03F3, 0x03F3), (0x0456, 0x0456), (0x0458, 0x0458), (0x1D62, 0x1D62),
    (0x1D96, 0x1D96), (0x1DA4, 0x1DA4), (0x1DA8, 0x1DA8), (0x1E2D, 0x1E2D), (0x1ECB, 0x1ECB),
    (0x2071, 0x2071), (0x2148, 0x2149), (0x2C7C, 0x2C7C), (0x1D422, 0x1D423), (0x1D456, 0x1D457),
    (0x1D48A, 0x1D48B), (0x1D4BE, 0x1D4BF), (0x1D4F2, 0x1D4F3), (0x1D526, 0x1D527),
    (0x1D55A, 0x1D55B), (0x1D58E, 0x1D58F), (0x1D5C2, 0x1D5C3), (0x1D5F6, 0x1D5F7),
    (0x1D62A, 0x1D62B), (0x1D65E, 0x1D65F), (0x1D692, 0x1D693), (0x1DF1A, 0x1DF1A),
    (0x1E04C, 0x1E04D), (0x1E068, 0x1E068),
)  # fmt: skip
_SOFT_DOTTED = frozenset(
    chr(point) for low, high in _SOFT_DOTTED_RANGES for point in range(low, high + 1)
)

_DOT_ABOVE = "\u0307"

#: The canonical combining class of marks above (ccc=230), which a dot above would stack on.
_ABOVE = 230


def skeleton(text: str) -> str:
    """Return the UTS #39 skeleton of ``text``: equal for two strings that look the same.

    UTS #39 section 4: NFD, each character replaced by its prototype from confusables.txt, NFD
    again. Then a dot above that a soft-dotted letter hides is dropped, the check UTS #39 5.4
    suggests for i + U+0307: the skeleton maps ı to i, and "i̇" and "ı̇" both show as "i".
    """
    prototypes = unicodedata.normalize("NFD", text).translate(_prototypes())
    return _without_hidden_dots(unicodedata.normalize("NFD", prototypes))


def _without_hidden_dots(text: str) -> str:
    """Drop each U+0307 that follows a soft-dotted letter with no other mark above between.

    The rule CLDR's Lithuanian case mapping uses (lt-Upper: remove U+0307 after Soft_Dotted,
    across marks of other combining classes than 0 and 230), for the same reason: the dot and
    the letter's own dot are one dot on the page.
    """
    kept: list[str] = []
    hides_dot = False
    for char in text:
        if char == _DOT_ABOVE and hides_dot:
            hides_dot = False
            continue
        combining = unicodedata.combining(char)
        if combining == 0:
            hides_dot = char in _SOFT_DOTTED
        elif combining == _ABOVE:
            hides_dot = False
        kept.append(char)
    return "".join(kept)


@cache
def _prototypes() -> dict[int, str]:
    """Return confusables.txt as a ``str.translate`` table: each code point to its prototype."""
    data = resources.files(__package__).joinpath("confusables.txt.gz").read_bytes()
    table: dict[int, str] = {}
    for line in gzip.decompress(data).decode("utf-8-sig").splitlines():
        fields = line.split("#", 1)[0].split(";")
        if len(fields) >= 2:
            table[int(fields[0], 16)] = "".join(chr(int(code, 16)) for code in fields[1].split())
    return table


def mixed_scripts(text: str) -> list[str]:
    """Return the names of the scripts ``text`` mixes, or an empty list when it mixes none.

    A string passes when its resolved script set is not empty (UTS #39 5.1: the scripts every
    character can be written in, Common and Inherited ones fitting any), or when it stays within
    one of the mixes Highly Restrictive allows (UTS #39 5.2), such as Latin with Japanese.
    """
    found = [_script_extensions(char) for char in text]
    sets = [scripts for scripts in found if not scripts <= _ANY_SCRIPT]
    resolved: frozenset[str] | None = None
    for scripts in sets:
        widened = scripts.union(*(_WRITING_SYSTEMS.get(script, ()) for script in scripts))
        resolved = widened if resolved is None else resolved & widened
    if resolved is None or resolved:
        return []
    if any(all(scripts & allowed for scripts in sets) for allowed in _ALLOWED_MIXES):
        return []
    names: list[str] = []
    for char, scripts in zip(text, found, strict=True):
        if scripts <= _ANY_SCRIPT:
            continue
        main = str(scripts_data.script(char))
        code = main if main in scripts else sorted(scripts)[0]
        name = str(scripts_data.script_name(code)).replace("_", " ")
        if name not in names:
            names.append(name)
    return names


def _script_extensions(char: str) -> frozenset[str]:
    """Return the Script_Extensions of ``char`` as ISO 15924 codes (``Latn``, ``Cyrl``…)."""
    return frozenset(str(code) for code in scripts_data.script_extension(char))
