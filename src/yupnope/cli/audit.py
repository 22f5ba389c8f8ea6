"""Print the event log: ``yupnope audit``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import click

from .. import wiring
from ..models import LoginEvent
from .group import cli, now, one_line_errors, open_app, print_table


@cli.command()
@click.option("--user", "username", help="Only this user's events.")
@click.option(
    "--since",
    help="From this time on: an ISO date or time (2026-11-01, 2026-11-01T12:00) or an age "
    "(30m, 24h, 7d).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@one_line_errors
def audit(username: str | None, since: str | None, as_json: bool) -> None:
    """Print the log of logins, failures, throttles, logouts, account and group changes."""
    start = _parse_since(since, now()) if since else None
    with open_app():
        found = wiring.operator().events(start, username or None)
    if as_json:
        click.echo(json.dumps([_as_object(event, name) for event, name in found]))
        return
    rows: list[tuple[str, ...]] = [
        ("TIME", "EVENT", "USER", "GROUP", "APP", "ADDRESS", "USER AGENT")
    ]
    for event, name in found:
        user = event.username or name or (f"#{event.user_id}" if event.user_id else "-")
        rows.append(
            (
                event.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                event.kind,
                user,
                event.group_name or "-",
                event.app_name or "-",
                event.client_address or "-",
                event.user_agent or "-",
            )
        )
    print_table(rows)


def _as_object(event: LoginEvent, name: str | None) -> dict[str, object]:
    """Return one event as ``--json`` prints it: the user's name as the table's, and the id."""
    return {
        "at": event.at.astimezone(UTC).isoformat(),
        "event": event.kind,
        "user": event.username or name,
        "user_id": event.user_id,
        "group": event.group_name,
        "app": event.app_name,
        "address": event.client_address,
        "user_agent": event.user_agent,
    }


def _parse_since(text: str, moment: datetime) -> datetime:
    """Return the moment ``text`` names: an ISO date or time (UTC unless it says), or an age."""
    units = {"m": 60, "h": 3600, "d": 86400}
    amount, unit = text[:-1], text[-1:].lower()
    if unit in units and amount.isascii() and amount.isdigit():
        try:
            return moment - timedelta(seconds=int(amount) * units[unit])
        except OverflowError:
            # An age past year 1 is no date a datetime can hold; without this, a traceback.
            raise click.ClickException(
                f"--since {text!r} reaches back further than any date"
            ) from None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.ClickException(
            f"--since takes an ISO date or time, or an age like 24h or 7d, not {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
