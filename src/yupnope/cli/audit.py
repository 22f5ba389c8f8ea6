"""Print the event log: ``yupnope audit``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from .. import wiring
from .group import cli, now, one_line_errors, open_app, print_table


@cli.command()
@click.option("--user", "username", help="Only this user's events.")
@click.option(
    "--since",
    help="From this time on: an ISO date or time (2026-11-01, 2026-11-01T12:00) or an age "
    "(30m, 24h, 7d).",
)
@one_line_errors
def audit(username: str | None, since: str | None) -> None:
    """Print the log of logins, failures, throttles, logouts, account and group changes."""
    start = _parse_since(since, now()) if since else None
    with open_app():
        rows: list[tuple[str, ...]] = [("TIME", "EVENT", "USER", "GROUP", "ADDRESS", "USER AGENT")]
        for event in wiring.operator().events(start, username or None):
            rows.append(
                (
                    event.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                    event.kind,
                    event.username or (f"#{event.user_id}" if event.user_id else "-"),
                    event.group_name or "-",
                    event.client_address or "-",
                    event.user_agent or "-",
                )
            )
        print_table(rows)


def _parse_since(text: str, moment: datetime) -> datetime:
    """Return the moment ``text`` names: an ISO date or time (UTC unless it says), or an age."""
    units = {"m": 60, "h": 3600, "d": 86400}
    amount, unit = text[:-1], text[-1:].lower()
    if unit in units and amount.isdigit():
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
