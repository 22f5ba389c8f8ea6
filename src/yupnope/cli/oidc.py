"""Register the apps that sign in with yupnope, rotate its keys, end grants: ``yupnope oidc``."""

from __future__ import annotations

import json
import re

import click

from .. import wiring
from ..oidc.clients import SCOPES, RegisteredClient
from ..oidc.keys import ALGORITHMS
from .group import cli, now, one_line_errors, open_app, print_table


def _words(values: tuple[str, ...]) -> list[str]:
    """Return the words of options given as ``a,b`` or ``"a b"``, each option repeatable."""
    return [word for value in values for word in re.split(r"[\s,]+", value) if word]


@cli.group()
def oidc() -> None:
    """Be the OpenID Connect provider of your apps: clients, grants, signing keys."""


@oidc.group()
def clients() -> None:
    """Add, list and remove the apps that sign their users in here; make new secrets."""


@clients.command("add")
@click.argument("name")
@click.option(
    "--redirect-uri",
    "redirect_uris",
    multiple=True,
    required=True,
    metavar="URI",
    help="Where the app receives its sign-ins, matched exactly (repeatable).",
)
@click.option("--public", is_flag=True, help="No secret: a browser or native app, with PKCE.")
@click.option("--no-consent", is_flag=True, help="Never ask its users to consent (your own app).")
@click.option(
    "--scopes",
    multiple=True,
    metavar="SCOPES",
    help=f"What it may ask for, among: {' '.join(SCOPES)} (default: all).",
)
@click.option(
    "--groups",
    multiple=True,
    metavar="GROUPS",
    help="Only members of these groups may use it (default: everyone).",
)
@click.option(
    "--id-token-alg",
    type=click.Choice(ALGORITHMS),
    default=ALGORITHMS[0],
    help="How its ID tokens are signed.",
)
@click.option("--json", "as_json", is_flag=True, help='Print {"client_id", "client_secret"}.')
@one_line_errors
def clients_add(
    name: str,
    redirect_uris: tuple[str, ...],
    public: bool,
    no_consent: bool,
    scopes: tuple[str, ...],
    groups: tuple[str, ...],
    id_token_alg: str,
    as_json: bool,
) -> None:
    """Register an app; print its client id and, once, its secret."""
    with open_app():
        made = wiring.oidc_clients().add(
            name,
            redirect_uris,
            now(),
            public=public,
            consent=not no_consent,
            scopes=_words(scopes) or SCOPES,
            groups=_words(groups),
            id_token_alg=id_token_alg,
        )
    if as_json:
        shown: dict[str, str] = {"client_id": made.client_id}
        if made.client_secret is not None:
            shown["client_secret"] = made.client_secret
        click.echo(json.dumps(shown))
        return
    click.echo(f"client_id:     {made.client_id}")
    if made.client_secret is not None:
        click.echo(f"client_secret: {made.client_secret}")
        click.echo("The secret is shown only now: put it in the app's settings.")


def _client_row(client: RegisteredClient) -> dict[str, object]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "public": client.public,
        "redirect_uris": list(client.redirect_uris),
        "scopes": list(client.scopes),
        "groups": list(client.allowed_groups),
        "consent": client.consent,
        "id_token_alg": client.id_token_alg,
        "created_at": client.created_at.isoformat(),
    }


@clients.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@one_line_errors
def clients_list(as_json: bool) -> None:
    """Print the registered apps: id, name, kind, redirect URIs, groups."""
    with open_app():
        found = wiring.oidc_clients().all()
    if as_json:
        click.echo(json.dumps([_client_row(client) for client in found]))
        return
    rows: list[tuple[str, ...]] = [("CLIENT ID", "NAME", "KIND", "REDIRECT URIS", "GROUPS")]
    rows += [
        (
            client.client_id,
            client.name,
            "public" if client.public else "confidential",
            " ".join(client.redirect_uris),
            ",".join(client.allowed_groups) or "(everyone)",
        )
        for client in found
    ]
    print_table(rows)


@clients.command("remove")
@click.argument("client_id")
@one_line_errors
def clients_remove(client_id: str) -> None:
    """Remove an app: its users' grants and tokens end with it."""
    with open_app():
        wiring.oidc_clients().remove(client_id)
    click.echo(f"Removed client {client_id!r}; its grants and tokens ended with it.")


@clients.command("rotate-secret")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True, help='Print {"client_id", "client_secret"}.')
@one_line_errors
def clients_rotate_secret(client_id: str, as_json: bool) -> None:
    """Give an app a new secret; the old one is refused from now on."""
    with open_app():
        secret = wiring.oidc_clients().rotate_secret(client_id)
    if as_json:
        click.echo(json.dumps({"client_id": client_id, "client_secret": secret}))
        return
    click.echo(f"client_secret: {secret}")
    click.echo("The secret is shown only now; the old one no longer works.")


@oidc.command("rotate-keys")
@one_line_errors
def rotate_keys() -> None:
    """Sign ID tokens with new keys; the old ones stay published until their tokens expire."""
    with open_app():
        made = wiring.key_ring().rotate(now())
    click.echo(f"New signing keys: {', '.join(made)}.")


@oidc.group()
def grants() -> None:
    """List the sign-ins people gave apps, and end one."""


@grants.command("list")
@click.option("--user", "username", metavar="NAME", help="Only this user's.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@one_line_errors
def grants_list(username: str | None, as_json: bool) -> None:
    """Print the live grants: who, which app, what scopes, since when."""
    with open_app():
        operator = wiring.operator()
        user_id = operator.find(username).id if username else None
        found = wiring.connections().alive(user_id)
        names = {user.id: user.username for user in operator.users()}
    rows_json = [
        {
            "grant": item.grant,
            "user": names.get(item.user_id, f"#{item.user_id}"),
            "client_id": item.client_id,
            "client": item.client_name,
            "scope": item.scope,
            "renewed_at": item.renewed_at.isoformat(),
            "offline": item.offline,
        }
        for item in found
    ]
    if as_json:
        click.echo(json.dumps(rows_json))
        return
    rows: list[tuple[str, ...]] = [("GRANT", "USER", "APP", "SCOPE", "RENEWED")]
    rows += [
        (
            str(row["grant"]),
            str(row["user"]),
            str(row["client"]),
            str(row["scope"]),
            str(row["renewed_at"])[:19],
        )
        for row in rows_json
    ]
    print_table(rows)


@grants.command("revoke")
@click.argument("grant")
@one_line_errors
def grants_revoke(grant: str) -> None:
    """End a grant: the app's tokens stop working at once."""
    with open_app():
        wiring.connections().revoke(grant, now())
    click.echo(f"Revoked grant {grant!r}.")
