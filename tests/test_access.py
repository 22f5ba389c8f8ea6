"""Test the access rules' decisions: first match, domains, paths, methods, subjects, defaults."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from typing import Any

import pytest

from yupnope import access, usernames
from yupnope.access import AccessRules, Caller, Outcome, Request, Verdict, decide, explain

ALICE = Caller("Alice", usernames.lookup_key("Alice"), frozenset({"staff"}))
BOB = Caller("bob", usernames.lookup_key("bob"), frozenset())
MALLORY = Caller("mallory", usernames.lookup_key("mallory"), frozenset({"staff", "banned"}))


def rules(*entries: dict[str, Any], default: str = "deny") -> AccessRules:
    """Return the rules of an ``[access]`` table with ``entries`` and ``default``."""
    return access.parse({"default_policy": default, "rules": list(entries)})


def outcome(
    table: AccessRules,
    url: str = "app.example.com/",
    who: Caller | None = None,
    method: str = "GET",
) -> Outcome:
    """Return the outcome for ``method`` on ``url`` (a host and a path, no scheme)."""
    host, _, path = url.partition("/")
    return decide(table, Request(method, host, "/" + path), who).outcome


# First match and the default


def test_the_first_rule_that_takes_the_request_decides() -> None:
    table = rules(
        {"domain": "app.example.com", "resources": "^/admin", "policy": "deny"},
        {"domain": "app.example.com", "policy": "bypass"},
    )
    assert outcome(table, "app.example.com/admin") is Outcome.DENY
    assert outcome(table, "app.example.com/home") is Outcome.ALLOW
    swapped = AccessRules(tuple(reversed(table.rules)))
    assert outcome(swapped, "app.example.com/admin") is Outcome.ALLOW


@pytest.mark.parametrize(
    ("default", "anonymous", "signed_in"),
    [
        ("deny", Outcome.DENY, Outcome.DENY),
        ("signed_in", Outcome.SIGN_IN, Outcome.ALLOW),
        ("bypass", Outcome.ALLOW, Outcome.ALLOW),
    ],
)
def test_the_default_policy_decides_when_no_rule_takes_the_request(
    default: str, anonymous: Outcome, signed_in: Outcome
) -> None:
    table = rules({"domain": "other.example.com", "policy": "bypass"}, default=default)
    assert outcome(table) is anonymous
    assert outcome(table, who=ALICE) is signed_in
    decision = decide(table, Request("GET", "app.example.com", "/"), None)
    assert decision.rule is None
    assert decision.description == f"the default policy ({default})"


def test_no_rules_deny_everything() -> None:
    assert outcome(AccessRules()) is Outcome.DENY
    assert outcome(AccessRules(), who=ALICE) is Outcome.DENY


def test_the_decision_names_its_rule_counted_from_one() -> None:
    table = rules(
        {"domain": "a.example.com", "policy": "bypass"},
        {"domain": "app.example.com", "methods": ["GET", "post"], "policy": "signed_in"},
    )
    decision = decide(table, Request("GET", "app.example.com", "/"), ALICE)
    assert decision.rule == 2
    assert decision.description == "rule 2 (signed_in: app.example.com; GET, POST)"
    assert decision.reason == "rule 2 lets Alice in"


# Domains


@pytest.mark.parametrize(
    ("host", "taken"),
    [
        ("a.example.com", True),
        ("a.b.example.com", True),
        ("example.com", False),
        ("evilexample.com", False),
        ("a.example.com.evil.org", False),
    ],
)
def test_a_wildcard_covers_every_name_below_but_not_the_domain_itself(
    host: str, taken: bool
) -> None:
    table = rules({"domain": "*.example.com", "policy": "bypass"})
    assert (outcome(table, f"{host}/") is Outcome.ALLOW) is taken


@pytest.mark.parametrize(
    "host", ["App.Example.COM", "app.example.com:8443", "APP.example.com.:443", "app.example.com."]
)
def test_the_host_is_compared_without_case_port_or_final_dot(host: str) -> None:
    table = rules({"domain": "app.example.com", "policy": "bypass"})
    assert outcome(table, f"{host}/") is Outcome.ALLOW


@pytest.mark.parametrize("host", ["", "[::1]:8000", "app.example.com:https", "app_1.example.com"])
def test_a_host_that_is_no_name_meets_only_the_default(host: str) -> None:
    table = rules({"domain": "app.example.com", "policy": "bypass"}, default="deny")
    assert outcome(table, f"{host}/") is Outcome.DENY


def test_a_domain_beyond_ascii_meets_the_punycode_a_browser_sends() -> None:
    table = rules({"domain": "Bücher.Example", "policy": "bypass"})
    assert table.rules[0].domains == ("xn--bcher-kva.example",)
    assert outcome(table, "xn--bcher-kva.example/") is Outcome.ALLOW
    assert outcome(table, "BÜCHER.example/") is Outcome.ALLOW
    # UTS #46 as browsers do it, not IDNA 2003: ß stays a letter of its own.
    assert rules({"domain": "straße.example", "policy": "bypass"}).rules[0].domains == (
        "xn--strae-oqa.example",
    )


# Paths


@pytest.mark.parametrize(
    ("path", "taken"),
    [
        ("/admin", True),
        ("/admin/", True),
        ("/admin/users", True),
        ("/administrator", False),
        ("/x/admin", False),
        ("/", False),
    ],
)
def test_resources_are_searched_so_anchors_count(path: str, taken: bool) -> None:
    table = rules(
        {"domain": "app.example.com", "resources": ["^/admin(/|$)"], "policy": "deny"},
        default="bypass",
    )
    assert (outcome(table, "app.example.com" + path) is Outcome.DENY) is taken


def test_an_unanchored_resource_is_found_anywhere_in_the_path() -> None:
    table = rules({"domain": "app.example.com", "resources": "admin", "policy": "bypass"})
    assert outcome(table, "app.example.com/x/admin/y") is Outcome.ALLOW
    assert outcome(table, "app.example.com/x") is Outcome.DENY


def test_any_resource_of_a_rule_will_do() -> None:
    table = rules(
        {"domain": "app.example.com", "resources": ["^/public/", "^/favicon"], "policy": "bypass"}
    )
    assert outcome(table, "app.example.com/favicon.ico") is Outcome.ALLOW
    assert outcome(table, "app.example.com/public/a.css") is Outcome.ALLOW
    assert outcome(table, "app.example.com/private") is Outcome.DENY


def test_the_query_is_never_matched() -> None:
    table = rules({"domain": "app.example.com", "resources": [r"\?", "x=1"], "policy": "bypass"})
    assert outcome(table, "app.example.com/page?x=1") is Outcome.DENY
    admin = rules({"domain": "app.example.com", "resources": "^/admin$", "policy": "bypass"})
    assert outcome(admin, "app.example.com/admin?next=/x") is Outcome.ALLOW


@pytest.mark.parametrize("path", ["/admin", "/%61dmin", "//admin"])
def test_the_path_is_decoded_once_before_matching(path: str) -> None:
    table = rules(
        {"domain": "app.example.com", "resources": "^/admin", "policy": "deny"},
        {"domain": "app.example.com", "resources": "^/public/", "policy": "bypass"},
    )
    assert outcome(table, "app.example.com" + path) is Outcome.DENY


@pytest.mark.parametrize(
    "path",
    [
        "/public/../secret",
        "/public/%2e%2e/secret",
        "/public/%2E%2E/secret",
        "/public/./x",
        "/public/..;/secret",
        "/public%2F..%2Fsecret",
        "/public%5csecret",
        "/public\\..\\secret",
        "/public/x;jsessionid=1",
    ],
)
def test_a_path_apps_may_read_otherwise_is_refused_whatever_the_rules(path: str) -> None:
    # The rules would read one path and the app may serve another: refused, even where every
    # rule and the default let everyone in.
    table = rules(
        {"domain": "app.example.com", "resources": "^/public/", "policy": "bypass"},
        default="bypass",
    )
    decision = decide(table, Request("GET", "app.example.com", path), None)
    assert decision.outcome is Outcome.DENY
    assert "so it is refused" in decision.reason


def test_a_host_that_is_no_host_name_is_refused_whatever_the_default() -> None:
    table = rules(default="bypass")
    for host in ("app.example.com:abc", "[::1]", "bad host"):
        assert decide(table, Request("GET", host, "/"), None).outcome is Outcome.DENY


def test_a_path_is_decoded_only_once() -> None:
    table = rules({"domain": "app.example.com", "resources": "^/public/", "policy": "bypass"})
    # The app reads "/%70ublic/" here, which is not /public/: the bypass must not apply.
    assert outcome(table, "app.example.com/%2570ublic/x") is Outcome.DENY
    assert explain(table, Request("GET", "app.example.com", "/a//b/"), None).path == "/a/b/"


# Methods


def test_methods_are_compared_in_upper_case() -> None:
    table = rules({"domain": "app.example.com", "methods": ["get", "HEAD"], "policy": "bypass"})
    assert outcome(table, method="GET") is Outcome.ALLOW
    assert outcome(table, method="head") is Outcome.ALLOW
    assert outcome(table, method="POST") is Outcome.DENY


# Subjects, signed in


def test_a_user_subject_compares_as_the_login_does() -> None:
    table = rules({"domain": "app.example.com", "subject": "user:ALICE", "policy": "signed_in"})
    assert outcome(table, who=ALICE) is Outcome.ALLOW
    fullwidth = Caller("ａｌｉｃｅ", usernames.lookup_key("ａｌｉｃｅ"))
    assert outcome(table, who=fullwidth) is Outcome.ALLOW
    assert outcome(table, who=BOB) is Outcome.DENY


def test_a_group_subject_takes_its_members_and_any_subject_will_do() -> None:
    table = rules(
        {"domain": "app.example.com", "subject": ["group:staff", "user:bob"], "policy": "signed_in"}
    )
    assert outcome(table, who=ALICE) is Outcome.ALLOW
    assert outcome(table, who=BOB) is Outcome.ALLOW
    assert outcome(table, who=Caller("carol", "carol", frozenset({"sales"}))) is Outcome.DENY


def test_a_rule_for_others_is_passed_for_the_next() -> None:
    table = rules(
        {"domain": "app.example.com", "subject": "group:banned", "policy": "deny"},
        {"domain": "app.example.com", "policy": "signed_in"},
    )
    assert outcome(table, who=ALICE) is Outcome.ALLOW
    decision = decide(table, Request("GET", "app.example.com", "/"), MALLORY)
    assert (decision.outcome, decision.rule) == (Outcome.DENY, 1)
    assert decision.reason == "rule 1 denies mallory (group:banned)"


# Subjects, anonymous


@pytest.mark.parametrize(
    ("first", "then", "anonymous"),
    [
        # A rule for some users that might let the visitor in: sign in first.
        ("signed_in", "deny", Outcome.SIGN_IN),
        ("signed_in", "bypass", Outcome.SIGN_IN),
        # A rule that denies some users: the rules below decide, but a bypass below is for
        # everyone but them, so the visitor must show they are none of them.
        ("deny", "deny", Outcome.DENY),
        ("deny", "signed_in", Outcome.SIGN_IN),
        ("deny", "bypass", Outcome.SIGN_IN),
    ],
)
def test_an_anonymous_visitor_and_a_rule_with_subjects(
    first: str, then: str, anonymous: Outcome
) -> None:
    table = rules(
        {"domain": "app.example.com", "subject": "group:staff", "policy": first},
        {"domain": "app.example.com", "policy": then},
    )
    assert outcome(table) is anonymous


def test_a_rule_with_subjects_that_does_not_take_the_request_is_no_reason_to_sign_in() -> None:
    table = rules(
        {
            "domain": "app.example.com",
            "resources": "^/admin",
            "subject": "group:staff",
            "policy": "signed_in",
        },
        {
            "domain": "app.example.com",
            "subject": "user:mallory",
            "methods": "POST",
            "policy": "deny",
        },
        {"domain": "app.example.com", "policy": "bypass"},
    )
    assert outcome(table, "app.example.com/home") is Outcome.ALLOW
    assert outcome(table, "app.example.com/admin") is Outcome.SIGN_IN
    assert outcome(table, "app.example.com/home", method="POST") is Outcome.SIGN_IN


def test_a_default_bypass_after_a_deny_for_some_needs_a_sign_in() -> None:
    table = rules(
        {"domain": "app.example.com", "subject": "user:mallory", "policy": "deny"}, default="bypass"
    )
    decision = decide(table, Request("GET", "app.example.com", "/"), None)
    assert (decision.outcome, decision.rule) == (Outcome.SIGN_IN, None)
    assert "denies user:mallory: sign in first" in decision.reason
    assert outcome(table, who=MALLORY) is Outcome.DENY
    assert outcome(table, who=BOB) is Outcome.ALLOW


def test_two_factor_lets_in_only_a_login_that_proved_one() -> None:
    table = rules(
        {"domain": "vault.example.com", "subject": "group:staff", "policy": "two_factor"},
        {"domain": "vault.example.com", "policy": "deny"},
    )
    proved = replace(ALICE, two_factor=True)
    url = "vault.example.com/"
    assert outcome(table, url, proved) is Outcome.ALLOW
    asked = decide(table, Request("GET", "vault.example.com", "/"), ALICE)
    assert asked.outcome is Outcome.SIGN_IN and asked.rule == 1
    assert asked.reason == "rule 1 asks Alice (group:staff) for a second factor: sign in with one"
    anonymous = decide(table, Request("GET", "vault.example.com", "/"), None)
    assert anonymous.outcome is Outcome.SIGN_IN
    assert anonymous.reason == (
        "rule 1 lets in only group:staff with a second factor: sign in first"
    )
    assert outcome(table, url, replace(BOB, two_factor=True)) is Outcome.DENY
    let_in = decide(table, Request("GET", "vault.example.com", "/"), proved)
    assert let_in.reason == "rule 1 lets Alice in (group:staff) with a second factor"


#: The pieces random rule sets are made of, to hold the anonymous case to its promises.
DOMAINS = ["app.example.com", "*.example.com"]
SUBJECTS = [None, "group:staff", "user:bob", "group:banned"]
POLICIES = ["bypass", "signed_in", "two_factor", "deny"]
USERS = [ALICE, BOB, MALLORY, Caller("carol", "carol")]
#: The same users, each signed in with a second factor.
PROVED = [replace(user, two_factor=True) for user in USERS]


def random_rule(chance: random.Random) -> dict[str, Any]:
    entry: dict[str, Any] = {"domain": chance.choice(DOMAINS), "policy": chance.choice(POLICIES)}
    subject = chance.choice(SUBJECTS)
    if subject and entry["policy"] != "bypass":
        entry["subject"] = subject
    if chance.random() < 0.3:
        entry["methods"] = "POST"
    return entry


@pytest.mark.parametrize("seed", range(300))
def test_an_anonymous_visitor_is_told_what_signing_in_could_change(seed: int) -> None:
    """Check, against every kind of user, that "deny" means no one gets in, "allow" everyone."""
    chance = random.Random(seed)
    table = rules(
        *(random_rule(chance) for _ in range(chance.randint(0, 5))), default=chance.choice(POLICIES)
    )
    for url, method in itertools.product(["app.example.com/", "b.example.com/"], ["GET", "POST"]):
        anonymous = outcome(table, url, method=method)
        proved = {outcome(table, url, user, method) for user in PROVED}
        theirs = {outcome(table, url, user, method) for user in USERS}
        # Only a second factor could change a signed-in user's answer, and one who gave it is
        # never asked again.
        assert Outcome.SIGN_IN not in proved
        assert {o for o in theirs if o is not Outcome.SIGN_IN} <= proved | {Outcome.DENY}
        if anonymous is Outcome.DENY:
            assert proved | theirs == {Outcome.DENY}, (table, url, method)
        if anonymous is Outcome.ALLOW:
            assert proved | theirs == {Outcome.ALLOW}, (table, url, method)


# Explain


def test_explain_says_why_each_rule_took_the_request_or_not() -> None:
    table = rules(
        {"domain": "other.example.com", "policy": "bypass"},
        {"domain": "app.example.com", "resources": "^/public/", "policy": "bypass"},
        {"domain": "app.example.com", "methods": "POST", "policy": "bypass"},
        {"domain": "app.example.com", "subject": "group:admins", "policy": "signed_in"},
        {
            "domain": "*.example.com",
            "resources": "^/admin",
            "subject": "group:staff",
            "policy": "signed_in",
        },
        {"domain": "app.example.com", "policy": "deny"},
    )
    shown = explain(table, Request("get", "App.Example.com:443", "/admin/x?y=1"), ALICE)
    assert (shown.method, shown.host, shown.path) == ("GET", "app.example.com", "/admin/x")
    assert [(step.rule.number, step.verdict, step.why) for step in shown.steps] == [
        (1, Verdict.MISSES, "the host app.example.com is not other.example.com"),
        (2, Verdict.MISSES, "the path /admin/x matches none of ^/public/"),
        (3, Verdict.MISSES, "the method GET is not POST"),
        (4, Verdict.MISSES, "Alice is not group:admins"),
        (
            5,
            Verdict.DECIDES,
            "the host app.example.com is *.example.com, the path /admin/x matches ^/admin, "
            "Alice is group:staff",
        ),
        (6, Verdict.NOT_REACHED, f"{table.rules[4].describe()} decided first"),
    ]
    assert shown.decision.outcome is Outcome.ALLOW
    assert shown.decision.reason == "rule 5 lets Alice in (group:staff)"


def test_explain_shows_a_rule_passed_over_for_an_anonymous_visitor() -> None:
    table = rules(
        {
            "domain": "app.example.com",
            "subject": ["user:mallory", "group:banned"],
            "policy": "deny",
        },
        {"domain": "app.example.com", "policy": "bypass"},
    )
    shown = explain(table, Request("GET", "app.example.com", "/"), None)
    assert [(step.verdict, step.why) for step in shown.steps] == [
        (
            Verdict.PASSED_OVER,
            "it denies only user:mallory or group:banned; the rules below decide for the rest",
        ),
        (Verdict.DECIDES, "the host app.example.com is app.example.com"),
    ]
    assert shown.decision.outcome is Outcome.SIGN_IN
    assert shown.decision.reason.startswith("rule 2 lets anyone through, but rule 1 (deny: ")


def test_explain_reaches_the_default_policy() -> None:
    table = rules({"domain": "other.example.com", "policy": "bypass"})
    shown = explain(table, Request("GET", "app.example.com", "/"), None)
    assert [step.verdict for step in shown.steps] == [Verdict.MISSES]
    assert shown.decision.reason == "no rule decides, and the default policy denies"
