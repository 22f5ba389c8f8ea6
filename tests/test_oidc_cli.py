"""Test ``yupnope oidc``: the operator registers apps, ends grants and rotates keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from click.testing import CliRunner
from flask import Flask

from helpers import add_user, assert_one_line_error, run_cli
from test_oidc import code_for, redeem, start
from yupnope import create_app, wiring


def add(runner: CliRunner, *args: str) -> dict[str, str]:
    """Register a client with ``args`` and return its JSON."""
    result = run_cli(runner, "oidc", "clients", "add", "Notes", *args, "--json")
    assert result.exit_code == 0, result.output
    found: dict[str, str] = json.loads(result.stdout)
    return found


def test_clients_are_added_listed_given_new_secrets_and_removed(runner: CliRunner) -> None:
    confidential = add(runner, "--redirect-uri", "https://notes.example/cb")
    assert set(confidential) == {"client_id", "client_secret"}
    public = add(
        runner, "--redirect-uri", "com.example.notes:/cb", "--public", "--scopes", "openid"
    )
    assert set(public) == {"client_id"}
    listed = json.loads(run_cli(runner, "oidc", "clients", "list", "--json").stdout)
    assert [(c["client_id"], c["public"]) for c in listed] == [
        (confidential["client_id"], False),
        (public["client_id"], True),
    ]
    assert listed[1]["scopes"] == ["openid"]
    table = run_cli(runner, "oidc", "clients", "list").stdout
    assert "confidential" in table and "com.example.notes:/cb" in table
    rotated = run_cli(
        runner, "oidc", "clients", "rotate-secret", confidential["client_id"], "--json"
    )
    assert json.loads(rotated.stdout)["client_secret"] != confidential["client_secret"]
    assert_one_line_error(
        run_cli(runner, "oidc", "clients", "rotate-secret", public["client_id"]), "is public"
    )
    removed = run_cli(runner, "oidc", "clients", "remove", public["client_id"])
    assert removed.exit_code == 0
    assert_one_line_error(
        run_cli(runner, "oidc", "clients", "remove", public["client_id"]), "no client"
    )


def test_bad_registrations_are_one_line_errors(runner: CliRunner) -> None:
    for args, fragment in [
        (("--redirect-uri", "https://notes.example/cb#x"), "fragment"),
        (("--redirect-uri", "javascript:alert(1)"), "not an absolute"),
        (("--redirect-uri", "/cb"), "not an absolute"),
        (("--redirect-uri", "https://n.example/cb", "--scopes", "email"), "scopes"),
        (("--redirect-uri", "https://n.example/cb", "--groups", "Not A Group!"), "group"),
    ]:
        result = run_cli(runner, "oidc", "clients", "add", "Notes", *args)
        assert_one_line_error(result, fragment)
    assert json.loads(run_cli(runner, "oidc", "clients", "list", "--json").stdout) == []


def test_grants_are_listed_and_revoked(runner: CliRunner, app: Flask) -> None:
    add_user(app, "ada")
    with app.app_context():
        client = wiring.oidc_clients().add(
            "Notes", ["https://app.example/callback"], datetime.now(UTC), consent=False
        )
    browser = app.test_client()
    browser.post(
        "/login",
        data={"username": "ada", "password": "correct horse battery staple"},
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    flow = start(client)
    tokens = redeem(app.test_client(), flow, code_for(browser, flow)).json
    listed = json.loads(run_cli(runner, "oidc", "grants", "list", "--user", "ada", "--json").stdout)
    assert [(g["user"], g["client"], g["offline"]) for g in listed] == [("ada", "Notes", True)]
    assert "Notes" in run_cli(runner, "oidc", "grants", "list").stdout
    assert run_cli(runner, "oidc", "grants", "revoke", listed[0]["grant"]).exit_code == 0
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert app.test_client().get("/oidc/userinfo", headers=bearer).status_code == 401
    assert_one_line_error(
        run_cli(runner, "oidc", "grants", "revoke", listed[0]["grant"]), "no live"
    )
    assert json.loads(run_cli(runner, "oidc", "grants", "list", "--json").stdout) == []


def test_rotate_keys_prints_the_new_key_ids(runner: CliRunner) -> None:
    result = run_cli(runner, "oidc", "rotate-keys")
    assert result.exit_code == 0 and result.stdout.startswith("New signing keys: ")
    app = create_app()
    with app.app_context():
        live = {k.kid for k in wiring.key_ring().kept() if k.retired_at is None}
    assert live == set(result.stdout.removeprefix("New signing keys: ").strip(". \n").split(", "))
