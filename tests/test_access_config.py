"""Test the ``[access]`` table of yupnope.toml: what it loads into, and each mistake's one line."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from yupnope import config, usernames
from yupnope.access import AccessRules, Policy, Subject

#: The issue's own example.
EXAMPLE = """
[access]
default_policy = "deny"
[[access.rules]]
domain = ["app.example.com", "*.apps.example.com"]
resources = ["^/admin(/|$)"]
methods = ["GET", "POST"]
subject = ["group:staff", "user:alice"]
policy = "signed_in"
"""


def load(tmp_path: Path, toml: str) -> config.Settings:
    """Return the settings with ``toml`` as the instance file."""
    (tmp_path / "yupnope.toml").write_text(toml)
    return config.load(environ={"YUPNOPE_INSTANCE_PATH": str(tmp_path)})


def test_no_access_table_means_no_rules_and_deny(tmp_path: Path) -> None:
    settings = load(tmp_path, 'cookie_secure = "always"\n')
    assert settings.access == AccessRules((), Policy.DENY)


def test_the_issues_example_loads_checked_and_frozen(tmp_path: Path) -> None:
    access = load(tmp_path, EXAMPLE).access
    assert access.default_policy is Policy.DENY
    (rule,) = access.rules
    assert rule.number == 1
    assert rule.domains == ("app.example.com", "*.apps.example.com")
    assert [pattern.pattern for pattern in rule.resources] == ["^/admin(/|$)"]
    assert rule.methods == ("GET", "POST")
    assert rule.subjects == (
        Subject("group:staff", "group", "staff"),
        Subject("user:alice", "user", "alice"),
    )
    assert rule.policy is Policy.SIGNED_IN
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.policy = Policy.BYPASS  # type: ignore[misc]


def test_single_strings_stand_for_lists_and_names_are_normalised(tmp_path: Path) -> None:
    access = load(
        tmp_path,
        '[[access.rules]]\ndomain = "App.Example.COM."\nmethods = "get"\n'
        'subject = "user:ＡＬＩＣＥ"\npolicy = "deny"\n',
    ).access
    (rule,) = access.rules
    assert (rule.domains, rule.methods) == (("app.example.com",), ("GET",))
    assert rule.subjects[0].key == usernames.lookup_key("alice")


def test_a_caller_may_give_the_table_or_the_rules(tmp_path: Path) -> None:
    table = {"default_policy": "bypass", "rules": [{"domain": "a.example", "policy": "deny"}]}
    given = config.load(environ={}, overrides={"instance_path": str(tmp_path), "access": table})
    assert given.access.default_policy is Policy.BYPASS
    again = config.load(
        environ={}, overrides={"instance_path": str(tmp_path), "access": given.access}
    )
    assert again.access == given.access
    bad = {"rules": [{"domain": "a.example"}]}
    with pytest.raises(config.ConfigError, match=r"^access\.rules\[1\]: policy is missing$"):
        config.load(environ={}, overrides={"instance_path": str(tmp_path), "access": bad})


def test_the_environment_does_not_set_access(tmp_path: Path) -> None:
    env = {"YUPNOPE_INSTANCE_PATH": str(tmp_path), "YUPNOPE_ACCESS": "bypass"}
    # Refused, not ignored: the operator meant something by it.
    with pytest.raises(config.ConfigError, match=r"YUPNOPE_ACCESS is not read: the \[access\]"):
        config.load(environ=env)
    assert config.load(environ={"YUPNOPE_INSTANCE_PATH": str(tmp_path)}).access == AccessRules()


RULE = '[[access.rules]]\ndomain = "app.example.com"\npolicy = "signed_in"\n'


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            RULE + '[[access.rules]]\ndomain = "a.example"\nresources = ["^/ok", "^(/admin"]\n'
            'policy = "deny"\n',
            'access.rules[2].resources[2]: "^(/admin" is not a regular expression: '
            "missing ), unterminated subpattern at position 1",
        ),
        ('access = "deny"\n', 'access must be a table ([access]), not "deny"'),
        (
            "[access]\ndefault = 1\n",
            'access: unknown key "default"; it takes default_policy, rules',
        ),
        ('[access]\ndefault_policy = "allow"\n', 'access.default_policy: "allow" is not a policy'),
        ("[access]\nrules = 3\n", "access.rules must be a list of tables ([[access.rules]])"),
        ('[access]\nrules = ["a"]\n', "access.rules must be a list of tables ([[access.rules]])"),
        (
            RULE.replace("domain", "domains"),
            'access.rules[1]: unknown key "domains"; it takes domain, resources, methods, '
            "subject, policy",
        ),
        ('[[access.rules]]\npolicy = "deny"\n', "access.rules[1]: domain is missing"),
        ('[[access.rules]]\ndomain = "a.example"\n', "access.rules[1]: policy is missing"),
        (
            RULE.replace('"signed_in"', '"allow"'),
            'access.rules[1].policy: "allow" is not a policy: one of bypass, signed_in, '
            "two_factor, deny",
        ),
        (
            RULE.replace('"signed_in"', "1"),
            "access.rules[1].policy: 1 is not a policy: one of bypass, signed_in, two_factor, deny",
        ),
        (
            RULE.replace('"signed_in"', '"two_factors"'),
            'access.rules[1].policy: "two_factors" is not a policy: one of bypass, signed_in, '
            "two_factor, deny",
        ),
        (
            RULE + 'methods = ["GET", "GTE"]\n',
            'access.rules[1].methods[2]: "GTE" is not an HTTP method: one of GET, HEAD, POST',
        ),
        (
            RULE + 'subject = "staff"\n',
            'access.rules[1].subject: "staff" is neither user:NAME nor group:NAME',
        ),
        (
            RULE + 'subject = ["user:alice", "role:x"]\n',
            'access.rules[1].subject[2]: "role:x" is neither user:NAME nor group:NAME',
        ),
        (
            RULE + 'subject = "group:st aff"\n',
            "access.rules[1].subject: \"group:st aff\" names no group: The group name 'st aff' "
            "is not one",
        ),
        (
            RULE + 'subject = "user:"\n',
            'access.rules[1].subject: "user:" names no user: Choose a name.',
        ),
        (
            '[[access.rules]]\ndomain = "a.example"\nsubject = "group:staff"\npolicy = "bypass"\n',
            "access.rules[1]: a bypass rule lets anyone through without signing in, so it cannot "
            "have a subject; use signed_in",
        ),
        (RULE + "methods = []\n", "access.rules[1].methods is an empty list; leave it out"),
        (RULE.replace('"app.example.com"', "[]"), "access.rules[1].domain is an empty list"),
        (RULE + "resources = 5\n", "access.rules[1].resources must be a string or a list of"),
        (RULE + 'resources = ["^/a", 5]\n', "access.rules[1].resources[2] must be a string, not 5"),
        *(
            (
                RULE.replace('"app.example.com"', f'["a.example", "{bad}"]'),
                f'access.rules[1].domain[2]: "{bad}" is not a host name',
            )
            for bad in (
                "app_1.example.com",
                "*",
                "app.*.example.com",
                "*example.com",
                "-app.example.com",
                "app.example.com:443",
                "https://app.example.com",
                "",
                "a" * 64 + ".example",
            )
        ),
    ],
)
def test_each_mistake_is_one_line_naming_its_place(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(config.ConfigError) as caught:
        load(tmp_path, toml)
    line = str(caught.value)
    assert len(line.splitlines()) == 1, line
    assert line.startswith(f"{tmp_path.resolve() / 'yupnope.toml'}: {message}"), line


def test_a_value_with_line_breaks_is_shown_on_one_line(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError) as caught:
        load(tmp_path, RULE + 'methods = "G\\nE\\u2028T"\n')
    assert re.search(r'"G\\nE\\u2028T" is not an HTTP method', str(caught.value))
    assert len(str(caught.value).splitlines()) == 1
