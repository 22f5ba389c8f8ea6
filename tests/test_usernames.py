"""Test what counts as a user name and when two names are the same."""

from __future__ import annotations

import pytest

from yupnope import usernames
from yupnope.errors import InvalidUsername


@pytest.mark.parametrize(
    ("raw", "display", "key"),
    [
        ("alice", "alice", "alice"),
        ("  Alice ", "Alice", "alice"),
        ("Straße", "Straße", "strasse"),
        ("ＡＬＩＣＥ", "ALICE", "alice"),
        ("ﬁona", "fiona", "fiona"),
        ("José María", "José María", "josé maría"),
        ("e\u0301mile", "émile", "émile"),
        ("李小龙", "李小龙", "李小龙"),
        ("a" * 64, "a" * 64, "a" * 64),
        # NFKC maps the no-break and ideographic spaces to a plain one.
        ("nbsp\u00a0space", "nbsp space", "nbsp space"),
        ("wide\u3000space", "wide space", "wide space"),
    ],
)
def test_names_are_normalised_and_folded(raw: str, display: str, key: str) -> None:
    name = usernames.parse(raw)
    assert (name.display, name.key) == (display, key)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "a" * 65,
        "a" * 100_000,
        "bell\x07",
        "new\nline",
        "tab\there",
        "zero\u200bwidth",
        "joiner\u200dname",
        "rtl\u202eoverride",
        "bom\ufeff",
        "hangul\u3164filler",
        "braille\u2800blank",
        "alice\ufe0f",
        "alice\U000e0100",
        "mongolian\u180bselector",
        "soft\u00adhyphen",
        "line\u2028sep",
        "private\ue000use",
        "two  spaces",
        "nul\x00",
    ],
)
def test_hidden_and_overlong_names_are_refused(raw: str) -> None:
    with pytest.raises(InvalidUsername):
        usernames.parse(raw)


def test_the_message_says_what_is_wrong() -> None:
    with pytest.raises(InvalidUsername, match="at most 64"):
        usernames.parse("b" * 65)
    with pytest.raises(InvalidUsername, match="Choose a name"):
        usernames.parse("")
