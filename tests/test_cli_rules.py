"""Test ``yupnope rules explain``, and that a malformed access rule stops every command."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers import GOOD_PASSWORD, assert_one_line_error, run_cli, run_yupnope

RULES = """
[access]
default_policy = "deny"
[[access.rules]]
domain = "*.example.com"
resources = "^/public/"
policy = "bypass"
[[access.rules]]
domain = ["app.example.com"]
resources = ["^/admin(/|$)"]
subject = ["group:staff", "user:ALICE"]
policy = "signed_in"
[[access.rules]]
domain = "app.example.com"
subject = "user:mallory"
policy = "deny"
[[access.rules]]
domain = "app.example.com"
policy = "signed_in"
"""

README = Path(__file__).resolve().parent.parent / "README.md"

#: A rule whose resource is no regular expression.
BAD_RULE = '[[access.rules]]\ndomain = "a.example"\nresources = "^(/admin"\npolicy = "deny"\n'


@pytest.fixture
def ruled(instance: Path) -> Path:
    """Write the rules above into the test's instance file and return the instance."""
    (instance / "yupnope.toml").write_text(RULES)
    return instance


def explain(runner: CliRunner, *args: str) -> list[str]:
    """Run ``rules explain ARGS``, check it succeeded, and return its lines."""
    result = run_cli(runner, "rules", "explain", *args)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    lines: list[str] = result.stdout.splitlines()
    return lines


def test_explain_for_an_anonymous_visitor(runner: CliRunner, ruled: Path) -> None:
    lines = explain(runner, "https://App.Example.com:8443/%61dmin/x?y=1")
    assert lines == [
        "GET app.example.com /admin/x, for an anonymous visitor",
        "rule 1 (bypass: *.example.com; ^/public/): no, the path /admin/x matches none of "
        "^/public/",
        "rule 2 (signed_in: app.example.com; ^/admin(/|$); group:staff, user:ALICE): decides, "
        "the host app.example.com is app.example.com, the path /admin/x matches ^/admin(/|$)",
        "rule 3 (deny: app.example.com; user:mallory): not reached, rule 2 (signed_in: "
        "app.example.com; ^/admin(/|$); group:staff, user:ALICE) decided first",
        "rule 4 (signed_in: app.example.com): not reached, rule 2 (signed_in: app.example.com; "
        "^/admin(/|$); group:staff, user:ALICE) decided first",
        "decision: sign_in, rule 2 lets in only group:staff or user:ALICE: sign in first",
    ]
    assert not (ruled / "yupnope.db").exists()


def test_explain_for_users_by_the_logins_own_key(runner: CliRunner, ruled: Path) -> None:
    for name in ("Alice", "mallory", "bob"):
        added = run_cli(runner, "users", "add", name, "--password-stdin", input=GOOD_PASSWORD)
        assert added.exit_code == 0, added.output
    lines = explain(runner, "https://app.example.com/admin", "--user", "alice")
    assert lines[0] == "GET app.example.com /admin, for Alice (groups: none)"
    assert lines[-1] == "decision: allow, rule 2 lets Alice in (user:ALICE)"
    lines = explain(runner, "http://app.example.com/", "--user", "MALLORY", "--method", "post")
    assert lines[0] == "POST app.example.com /, for mallory (groups: none)"
    assert lines[2] == (
        "rule 2 (signed_in: app.example.com; ^/admin(/|$); group:staff, user:ALICE): no, "
        "the path / matches none of ^/admin(/|$)"
    )
    assert lines[-1] == "decision: deny, rule 3 denies mallory (user:mallory)"
    lines = explain(runner, "https://app.example.com/admin", "--user", "bob")
    assert lines[2].endswith("no, bob is not group:staff or user:ALICE")
    assert lines[-1] == "decision: allow, rule 4 lets bob in"


def test_explain_says_whether_the_login_proved_a_second_factor(
    runner: CliRunner, instance: Path
) -> None:
    (instance / "yupnope.toml").write_text(
        '[[access.rules]]\ndomain = "vault.example.com"\npolicy = "two_factor"\n'
    )
    added = run_cli(runner, "users", "add", "alice", "--password-stdin", input=GOOD_PASSWORD)
    assert added.exit_code == 0, added.output
    url = "https://vault.example.com/"
    lines = explain(runner, url, "--user", "alice")
    assert lines[0] == "GET vault.example.com /, for alice (groups: none)"
    assert lines[-1] == (
        "decision: sign_in, rule 1 asks alice for a second factor: sign in with one"
    )
    lines = explain(runner, url, "--user", "alice", "--second-factor")
    assert lines[0] == "GET vault.example.com /, for alice (groups: none) with a second factor"
    assert lines[-1] == "decision: allow, rule 1 lets alice in with a second factor"
    alone = run_cli(runner, "rules", "explain", url, "--second-factor")
    assert_one_line_error(alone, "--second-factor needs --user")


def test_the_readmes_example_is_what_explain_prints(runner: CliRunner, ruled: Path) -> None:
    section = README.read_text().split("## Access rules", 1)[1].split("\n## ", 1)[0]
    command, *printed = section.split("$ yupnope ", 1)[1].split("```", 1)[0].splitlines()
    added = run_cli(runner, "users", "add", "bob", "--password-stdin", input=GOOD_PASSWORD)
    assert added.exit_code == 0, added.output
    result = run_cli(runner, *shlex.split(command))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == printed


def test_explain_without_rules_reaches_the_default(runner: CliRunner) -> None:
    lines = explain(runner, "https://app.example.com/")
    assert lines == [
        "GET app.example.com /, for an anonymous visitor",
        "decision: deny, no rule decides, and the default policy denies",
    ]


def test_explain_escapes_what_a_terminal_would_act_on(runner: CliRunner, ruled: Path) -> None:
    lines = explain(runner, "https://app.example.com/%1b[2Jx")
    assert lines[0] == "GET app.example.com /\\x1b[2Jx, for an anonymous visitor"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("app.example.com/admin",), "the URL must be absolute"),
        (("/admin",), "the URL must be absolute"),
        (("ftp://app.example.com/",), "the URL must be absolute"),
        (("https://app_1.example.com/",), "'app_1.example.com' in"),
        (("https://[::1]/",), "is not a host name"),
        (("https://[::1/",), "is not a URL"),
        (("https://app.example.com/", "--method", "FETCH"), '--method: "FETCH" is not an HTTP'),
        (("https://app.example.com/", "--user", "nobody"), "No user is named 'nobody'"),
    ],
)
def test_explain_refusals_are_one_line(
    runner: CliRunner, ruled: Path, args: tuple[str, ...], fragment: str
) -> None:
    assert_one_line_error(run_cli(runner, "rules", "explain", *args), fragment)


@pytest.mark.parametrize(
    "command",
    [("serve",), ("db", "upgrade"), ("users", "list"), ("rules", "explain", "https://a.example/")],
    ids=" ".join,
)
def test_a_malformed_rule_stops_every_command(
    runner: CliRunner, instance: Path, command: tuple[str, ...]
) -> None:
    (instance / "yupnope.toml").write_text(BAD_RULE)
    assert_one_line_error(
        run_cli(runner, *command),
        f"{instance.resolve() / 'yupnope.toml'}: access.rules[1].resources: "
        '"^(/admin" is not a regular expression: missing ), unterminated subpattern at position 1',
    )
    assert not (instance / "yupnope.db").exists()


def test_a_malformed_rule_stops_the_real_serve(instance: Path) -> None:
    (instance / "yupnope.toml").write_text(BAD_RULE.replace('"deny"', '"two_factors"'))
    done = run_yupnope(instance, "serve", "--port", "0")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f'Error: {instance.resolve() / "yupnope.toml"}: access.rules[1].policy: "two_factors" is '
        "not a policy: one of bypass, signed_in, two_factor, deny"
    ]
    assert not (instance / "yupnope.db").exists()
