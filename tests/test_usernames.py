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


# Look-alikes: PRECIS (RFC 8265 3.3), one script (UTS #39 5.2), the skeleton (UTS #39 4).

#: Names from the outside review that coexisted with "alice" and "inci" as separate accounts.
CYRILLIC_A_LICE = "\u0430lice"  # Cyrillic а, then Latin
DOTTED_INCI = "i\u0307nci"  # i + combining dot above: the dot hides in i's own
DOTLESS_DOTTED_ALICE = "al\u0131\u0307ce"  # dotless ı + combining dot above


@pytest.mark.parametrize(
    ("raw", "like"),
    [
        (DOTTED_INCI, "inci"),
        (DOTLESS_DOTTED_ALICE, "alice"),
        ("İnci", "inci"),  # Turkish capital İ folds to i + U+0307
        ("\u0456nci", "inci"),  # Cyrillic і, alone in a Latin name: refused, yet alike
        ("rnary", "mary"),
        ("bill1", "billl"),
        ("соре", "cope"),  # all Cyrillic: a whole-script confusable
    ],
)
def test_names_that_look_alike_have_one_skeleton(raw: str, like: str) -> None:
    assert usernames.skeleton(usernames.lookup_key(raw)) == usernames.parse(like).skeleton


@pytest.mark.parametrize("raw", [DOTTED_INCI, DOTLESS_DOTTED_ALICE, "İnci"])
def test_a_hidden_dot_leaves_the_name_valid_but_its_skeleton_plain(raw: str) -> None:
    name = usernames.parse(raw)
    assert name.key != name.skeleton
    assert name.skeleton in ("inci", "alice")


@pytest.mark.parametrize(
    ("raw", "scripts"),
    [
        (CYRILLIC_A_LICE, "Cyrillic and Latin"),
        ("alic\u0435", "Latin and Cyrillic"),
        ("p\u0430yp\u0430l", "Latin and Cyrillic"),
        ("\u03a1aul", "Greek and Latin"),
        ("b\u0585b", "Latin and Armenian"),
        ("\u13aalice", "Cherokee and Latin"),
        ("Ivan Смирнов", "Latin and Cyrillic"),
        ("Ὀδυσσεύς Одиссей", "Greek and Cyrillic"),
        ("a\u0430\u03b1", "Latin, Cyrillic and Greek"),
    ],
)
def test_names_mixing_scripts_are_refused_naming_them(raw: str, scripts: str) -> None:
    with pytest.raises(InvalidUsername) as refused:
        usernames.parse(raw)
    assert str(refused.value) == f"The name mixes letters of several scripts ({scripts})."


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("Алиса", "алиса"),
        ("ゆうこ", "ゆうこ"),
        ("김철수", "김철수"),
        ("Αλέξης", "αλέξησ"),
        ("שרה", "שרה"),
        ("山田 たろう", "山田 たろう"),  # Han with Hiragana: Japanese
        ("Tanaka 太郎", "tanaka 太郎"),  # Latin with Japanese: Highly Restrictive allows it
        ("박 Park", "박 park"),  # Latin with Korean
        ("user.name-1_x@example.com", "user.name-1_x@example.com"),  # ASCII punctuation
        ("l·l", "l·l"),  # PRECIS's one place for a middle dot: Catalan l·l
    ],
)
def test_a_name_in_one_script_alone_works(raw: str, key: str) -> None:
    name = usernames.parse(raw)
    assert (name.display, name.key, name.skeleton) == (raw, key, usernames.skeleton(key))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("bob♥", "may not contain symbols such as '♥' (U+2665)"),
        ("€uro", "may not contain symbols such as '€' (U+20AC)"),
        ("smile 😀", "may not contain symbols such as '😀' (U+1F600)"),
        ("O’Brien", "only ASCII punctuation, not '’' (U+2019)"),
        ("«bob»", "only ASCII punctuation, not '«' (U+00AB)"),
        ("שרהa", "right-to-left letters or digits must begin"),
        ("a·b", "may not contain '·' (U+00B7)"),
        ("\u1100\u1100", "may not contain 'ᄀ' (U+1100)"),
    ],
)
def test_what_precis_refuses_is_refused_saying_what(raw: str, message: str) -> None:
    with pytest.raises(InvalidUsername) as refused:
        usernames.parse(raw)
    assert message in str(refused.value)


@pytest.mark.parametrize("raw", ["bob♥", CYRILLIC_A_LICE, "O’Brien"])
def test_an_account_made_before_todays_rules_is_still_found_by_its_key(raw: str) -> None:
    with pytest.raises(InvalidUsername):
        usernames.parse(raw)
    assert usernames.lookup_key(f" {raw.upper()} ") == raw.lower()


@pytest.mark.parametrize("raw", ["", "tab\there", "zero\u200bwidth", "a" * 65])
def test_what_is_no_name_has_no_key_either(raw: str) -> None:
    with pytest.raises(InvalidUsername):
        usernames.lookup_key(raw)
