"""Read the ``[access]`` table of yupnope.toml into rules: checked, compiled and frozen once.

Each refusal is a ValueError whose one line names the place of the mistake, such as
``access.rules[4].resources[1]``: rules and the items of their lists are counted from 1, as
``yupnope rules explain`` numbers the rules, so "rule 4" is ``access.rules[4]``. ``config``
adds the file's name and raises it as a ConfigError.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, TypeVar

from .. import groupnames, usernames
from ..errors import InvalidGroupName, InvalidUsername
from . import targets

T = TypeVar("T")


class Policy(StrEnum):
    """Name what a rule, or the default, does with the requests it matches."""

    #: Anyone passes, signed in or not.
    BYPASS = "bypass"
    #: A signed-in user passes; an anonymous visitor is asked to sign in.
    SIGNED_IN = "signed_in"
    #: A user signed in with a second factor passes; anyone else is asked to sign in with one.
    TWO_FACTOR = "two_factor"
    #: No one passes.
    DENY = "deny"


#: The methods a rule may name: RFC 9110's, PATCH (RFC 5789) and WebDAV's (RFC 4918).
METHODS = (
    *("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"),
    *("PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK"),
)


#: The keys of a rule, in the order a rule is described.
RULE_KEYS = ("domain", "resources", "methods", "subject", "policy")


@dataclass(frozen=True)
class Subject:
    """Name whom a rule is for: one user, by the key the login finds them under, or a group."""

    #: As written in the rule, ``user:Alice`` or ``group:staff``.
    text: str
    kind: Literal["user", "group"]
    #: A user's ``usernames.lookup_key``, so case and look-alikes count as at the login; or
    #: the group's name.
    key: str


@dataclass(frozen=True)
class Rule:
    """Carry one ``[[access.rules]]`` entry, checked and compiled.

    Every list that is empty matches everything: no resources, every path; no methods, every
    method; no subjects, everyone. ``domains`` is never empty.
    """

    #: Where the rule stands in the file, counted from 1.
    number: int
    policy: Policy
    domains: tuple[str, ...]
    resources: tuple[re.Pattern[str], ...] = ()
    methods: tuple[str, ...] = ()
    subjects: tuple[Subject, ...] = ()

    def describe(self) -> str:
        """Return the rule on one line, as ``rule 2 (signed_in: app.example.com; GET)``."""
        parts = [
            ", ".join(self.domains),
            ", ".join(pattern.pattern for pattern in self.resources),
            ", ".join(self.methods),
            ", ".join(subject.text for subject in self.subjects),
        ]
        return f"rule {self.number} ({self.policy}: {'; '.join(part for part in parts if part)})"


@dataclass(frozen=True)
class AccessRules:
    """Carry the rules in the order written, and the policy for a request none of them matches."""

    rules: tuple[Rule, ...] = ()
    default_policy: Policy = Policy.DENY


def parse(table: object) -> AccessRules:
    """Return the rules the ``[access]`` table holds, or raise ValueError naming the mistake."""
    if not isinstance(table, Mapping):
        raise ValueError(f"access must be a table ([access]), not {shown(table)}")
    _refuse_unknown(table, "access", ("default_policy", "rules"))
    default = _policy(table.get("default_policy", Policy.DENY.value), "access.default_policy")
    entries = table.get("rules", [])
    if not isinstance(entries, list) or not all(isinstance(item, Mapping) for item in entries):
        raise ValueError("access.rules must be a list of tables ([[access.rules]])")
    return AccessRules(tuple(_rule(item, n) for n, item in enumerate(entries, 1)), default)


def method(text: str) -> str:
    """Return an HTTP method in upper case, or raise ValueError if it is none of ``METHODS``."""
    name = text.upper()
    if name not in METHODS:
        raise ValueError(f"{shown(text)} is not an HTTP method: one of {', '.join(METHODS)}")
    return name


def shown(value: object) -> str:
    """Return ``value`` on one line as TOML writes it: a string in double quotes, escaped."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except TypeError:
        text = repr(value)
    # JSON leaves alone the line breaks beyond ASCII (U+2028, NEL) that would split the line.
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _rule(entry: Mapping[str, object], number: int) -> Rule:
    """Return the rule in ``entry``, the ``number``-th, or raise ValueError naming the mistake."""
    where = f"access.rules[{number}]"
    _refuse_unknown(entry, where, RULE_KEYS)
    for key in ("domain", "policy"):
        if key not in entry:
            raise ValueError(f"{where}: {key} is missing")
    policy = _policy(entry["policy"], f"{where}.policy")
    subjects = _items(entry, "subject", where, _subject)
    if policy is Policy.BYPASS and subjects:
        # As Authelia refuses it: a bypass never asks who the visitor is, so it cannot tell.
        raise ValueError(
            f"{where}: a bypass rule lets anyone through without signing in, so it cannot "
            "have a subject; use signed_in"
        )
    return Rule(
        number=number,
        policy=policy,
        domains=_items(entry, "domain", where, _domain),
        resources=_items(entry, "resources", where, _resource),
        methods=_items(entry, "methods", where, method),
        subjects=subjects,
    )


def _refuse_unknown(table: Mapping[str, object], where: str, known: tuple[str, ...]) -> None:
    """Raise ValueError for the first key of ``table`` that is not ``known``."""
    for key in table:
        if key not in known:
            raise ValueError(f"{where}: unknown key {shown(key)}; it takes {', '.join(known)}")


def _policy(value: object, where: str) -> Policy:
    """Return the policy ``value`` names, or raise ValueError naming ``where``."""
    choices = [policy.value for policy in Policy]
    if isinstance(value, str) and value in choices:
        return Policy(value)
    raise ValueError(f"{where}: {shown(value)} is not a policy: one of {', '.join(choices)}")


def _items(
    entry: Mapping[str, object], key: str, where: str, read: Callable[[str], T]
) -> tuple[T, ...]:
    """Return each string of ``entry[key]`` (one string, or a list of them) read by ``read``.

    None when the key is absent; an empty list is refused, since leaving the key out says
    "any" and an empty list would say "none", a rule that never matches.
    """
    if key not in entry:
        return ()
    value = entry[key]
    if isinstance(value, str):
        items, places = [value], [f"{where}.{key}"]
    elif isinstance(value, list) and value:
        items, places = value, [f"{where}.{key}[{n}]" for n in range(1, len(value) + 1)]
    elif isinstance(value, list):
        raise ValueError(f"{where}.{key} is an empty list; leave it out to match any")
    else:
        raise ValueError(f"{where}.{key} must be a string or a list of strings, not {shown(value)}")
    read_items: list[T] = []
    for item, place in zip(items, places, strict=True):
        if not isinstance(item, str):
            raise ValueError(f"{place} must be a string, not {shown(item)}")
        try:
            read_items.append(read(item))
        except ValueError as exc:
            raise ValueError(f"{place}: {exc}") from None
    return tuple(read_items)


def _domain(text: str) -> str:
    """Return a rule's domain normalised, or raise ValueError showing it."""
    try:
        return targets.domain(text)
    except ValueError as exc:
        raise ValueError(f"{shown(text)} is {exc}, nor *. and one") from None


def _resource(text: str) -> re.Pattern[str]:
    """Return a resource compiled, or raise ValueError with the compiler's reason."""
    try:
        return re.compile(text)
    except re.error as exc:
        raise ValueError(f"{shown(text)} is not a regular expression: {exc}") from None


def _subject(text: str) -> Subject:
    """Return the subject ``user:NAME`` or ``group:NAME`` names, or raise ValueError."""
    kind, colon, name = text.partition(":")
    if colon and kind == "user":
        try:
            return Subject(text, "user", usernames.lookup_key(name))
        except InvalidUsername as exc:
            raise ValueError(f"{shown(text)} names no user: {exc}") from None
    if colon and kind == "group":
        # The shape `yupnope groups add` accepts, capitals taken as lower case as it does.
        try:
            return Subject(text, "group", groupnames.parse(name))
        except InvalidGroupName as exc:
            raise ValueError(f"{shown(text)} names no group: {exc}") from None
    raise ValueError(f"{shown(text)} is neither user:NAME nor group:NAME")
