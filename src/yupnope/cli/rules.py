"""Show how the access rules decide a request: ``yupnope rules explain URL``."""

from __future__ import annotations

from urllib.parse import urlsplit

import click

from .. import access, config, wiring
from ..access import Caller, Explanation, Request
from ..access.rules import method as http_method
from ..access.targets import host_of
from .group import cli, one_line_errors, open_app, printable


@cli.group()
def rules() -> None:
    """Explain the access rules of yupnope.toml."""


@rules.command("explain")
@click.argument("url")
@click.option("--user", "username", help="Decide for this user, signed in [default: anonymous].")
@click.option("--method", default="GET", show_default=True, help="The request's method.")
@click.option(
    "--second-factor",
    is_flag=True,
    help="The user signed in with a second factor (the two_factor policy asks for one).",
)
@one_line_errors
def rules_explain(url: str, username: str | None, method: str, second_factor: bool) -> None:
    """Show how the access rules decide on URL.

    Prints each rule with why it takes the request or not, then the decision. URL is
    absolute, as a browser asks for it: https://app.example.com/admin?x=1.
    """
    request = _request(url, method)
    if second_factor and username is None:
        raise click.ClickException("--second-factor needs --user: a visitor proved nothing")
    if username is None:
        rules_in_force, who = config.load().access, None
    else:
        # The app only to find the user: their name as shown and the key the login uses.
        with open_app():
            user = wiring.operator().find(username)
            rules_in_force = wiring.get().settings.access
            groups = frozenset(wiring.operator().groups_of(user))
            who = Caller(user.username, user.username_key, groups, second_factor)
    _print(access.explain(rules_in_force, request, who), who)


def _request(url: str, method: str) -> Request:
    """Return the request ``url`` and ``method`` name, or raise a one-line ClickException."""
    try:
        name = http_method(method)
    except ValueError as exc:
        raise click.ClickException(f"--method: {exc}") from None
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise click.ClickException(f"{url!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.ClickException(
            f"the URL must be absolute, like https://app.example.com/admin, not {url!r}"
        )
    host = parts.netloc.rpartition("@")[2]
    if host_of(host) is None:
        raise click.ClickException(f"{host!r} in {url!r} is not a host name")
    return Request(name, host, parts.path)


def _print(shown: Explanation, who: Caller | None) -> None:
    """Print the request as the rules saw it, each rule's step, and the decision."""
    if who is None:
        caller = "an anonymous visitor"
    else:
        caller = f"{who.username} (groups: {', '.join(sorted(who.groups)) or 'none'})"
        caller += " with a second factor" if who.two_factor else ""
    click.echo(printable(f"{shown.method} {shown.host} {shown.path}, for {caller}"))
    for step in shown.steps:
        click.echo(printable(f"{step.rule.describe()}: {step.verdict}, {step.why}"))
    decision = shown.decision
    click.echo(printable(f"decision: {decision.outcome}, {decision.reason}"))
