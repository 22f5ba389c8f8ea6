"""Test importing other systems' password hashes, and exporting yupnope's own.

Every hash is made by the library that makes it in the other system (Werkzeug, passlib's
Django and crypt handlers, bcrypt, passlib's HtpasswdFile), imported with the real command,
and then used through the real login form.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import bcrypt
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from passlib import hash as passlib_hash
from passlib.apache import HtpasswdFile
from werkzeug.security import generate_password_hash

from helpers import (
    CHEAP_ARGON2,
    GOOD_PASSWORD,
    NEW_PASSWORD,
    WRONG,
    assert_one_line_error,
    login,
    run_cli,
    slot_held_elsewhere,
)
from yupnope import create_app, migrations, wiring
from yupnope.client import Client
from yupnope.errors import Busy, InvalidCredentials
from yupnope.notices import LOCKED

NOW = datetime(2026, 12, 1, tzinfo=UTC)
CLIENT = Client("192.0.2.7", "ImportTest/1.0")

#: Each scheme yupnope accepts, with a function that hashes a password as its system does, at
#: the cheapest cost the library allows, so the tests stay fast.
SCHEMES: dict[str, Callable[[str], str]] = {
    "werkzeug scrypt": generate_password_hash,
    "werkzeug pbkdf2:sha256": lambda p: generate_password_hash(p, "pbkdf2:sha256:1000"),
    "werkzeug pbkdf2:sha512": lambda p: generate_password_hash(p, "pbkdf2:sha512:1000"),
    "django pbkdf2_sha256": lambda p: passlib_hash.django_pbkdf2_sha256.using(rounds=1000).hash(p),
    "django argon2": lambda p: passlib_hash.django_argon2.using(
        memory_cost=64, rounds=1, parallelism=1
    ).hash(p),
    "django bcrypt": lambda p: passlib_hash.django_bcrypt.using(rounds=4).hash(p),
    "django bcrypt_sha256": lambda p: passlib_hash.django_bcrypt_sha256.using(rounds=4).hash(p),
    "bcrypt $2b$": lambda p: bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode(),
    "bcrypt $2a$": lambda p: bcrypt.hashpw(p.encode(), bcrypt.gensalt(4, prefix=b"2a")).decode(),
    "bcrypt $2y$": lambda p: passlib_hash.bcrypt.using(rounds=4, ident="2y").hash(p),
    "passlib bcrypt-sha256": lambda p: passlib_hash.bcrypt_sha256.using(rounds=4).hash(p),
    "passlib argon2id": lambda p: passlib_hash.argon2.using(
        type="ID", memory_cost=64, rounds=1, parallelism=1
    ).hash(p),
    "passlib argon2i": lambda p: passlib_hash.argon2.using(
        type="I", memory_cost=64, rounds=1, parallelism=1
    ).hash(p),
    "pbkdf2-sha256": lambda p: passlib_hash.pbkdf2_sha256.using(rounds=1000).hash(p),
    "pbkdf2-sha512": lambda p: passlib_hash.pbkdf2_sha512.using(rounds=1000).hash(p),
    "scrypt": lambda p: passlib_hash.scrypt.using(rounds=4).hash(p),
    "sha512-crypt $6$": lambda p: passlib_hash.sha512_crypt.using(rounds=1000).hash(p),
    "sha256-crypt $5$": lambda p: passlib_hash.sha256_crypt.using(rounds=1000).hash(p),
    "apache $apr1$": passlib_hash.apr_md5_crypt.hash,
    "md5-crypt $1$": passlib_hash.md5_crypt.hash,
    "apache {SHA}": passlib_hash.ldap_sha1.hash,
}


def write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` and return the path."""
    path.write_text(text, encoding="utf-8")
    return path


def imported(runner: CliRunner, file: Path, *options: str) -> str:
    """Run ``users import FILE`` with ``options``; return what it printed, checked successful."""
    result = run_cli(runner, "users", "import", str(file), *options)
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def stored_hash(app: Flask, username: str) -> str:
    """Return the hash the database holds for ``username`` now."""
    with app.app_context():
        return wiring.operator().find(username).password_hash


def lands(client: FlaskClient, username: str, password: str) -> str:
    """Post the login form and return where it sends the browser."""
    response = login(client, username, password)
    assert response.status_code == 303
    return str(response.headers["Location"])


# Every scheme, through the real login


@pytest.mark.parametrize("make", SCHEMES.values(), ids=SCHEMES.keys())
def test_an_imported_hash_logs_in_once_then_is_argon2id(
    app: Flask,
    client: FlaskClient,
    runner: CliRunner,
    tmp_path: Path,
    instance: Path,
    make: Callable[[str], str],
) -> None:
    foreign = make(GOOD_PASSWORD)
    file = write(tmp_path / "u.json", json.dumps({"alice": {"password_hash": foreign}}))
    printed = imported(runner, file)
    assert "Added 1 user(s)." in printed
    assert "1 of them keep the hash from the file until their first login" in printed
    assert stored_hash(app, "alice") == foreign

    assert lands(app.test_client(), "alice", WRONG) == "/nope"
    assert stored_hash(app, "alice") == foreign
    assert lands(client, "alice", GOOD_PASSWORD) == "/yup"

    upgraded = stored_hash(app, "alice")
    assert upgraded.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    # The old hash is gone: nothing on disk holds it, and as a password it opens nothing.
    with closing(sqlite3.connect(instance / "yupnope.db")) as database:
        database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    everything = b"".join(p.read_bytes() for p in instance.rglob("*") if p.is_file())
    assert foreign.encode() not in everything
    assert lands(app.test_client(), "alice", foreign) == "/nope"
    assert lands(app.test_client(), "alice", GOOD_PASSWORD) == "/yup"
    assert stored_hash(app, "alice") == upgraded


def test_every_door_that_asks_for_the_password_takes_an_imported_hash(
    app: Flask, runner: CliRunner, tmp_path: Path
) -> None:
    """The forward-auth check, the change of password and the API verify in one place."""
    foreign = passlib_hash.sha512_crypt.using(rounds=1000).hash(GOOD_PASSWORD)
    imported(runner, write(tmp_path / "u.json", json.dumps({"bob": {"password_hash": foreign}})))
    with app.app_context():
        accounts = wiring.accounts()
        assert accounts.check_password("bob", GOOD_PASSWORD, CLIENT, NOW).username == "bob"
        with pytest.raises(InvalidCredentials):
            accounts.check_password("bob", WRONG, CLIENT, NOW)
        # Basic authentication checks without logging in: the hash stays until a login.
        assert wiring.operator().find("bob").password_hash == foreign
        accounts.change_password(
            wiring.operator().find("bob"), GOOD_PASSWORD, NEW_PASSWORD, CLIENT, NOW
        )
    assert stored_hash(app, "bob").startswith("$argon2id$")

    other = passlib_hash.bcrypt.using(rounds=4).hash(GOOD_PASSWORD)
    imported(runner, write(tmp_path / "v.json", json.dumps({"carol": {"password_hash": other}})))
    api = app.test_client().post(
        "/api/v1/sessions", json={"username": "carol", "password": GOOD_PASSWORD}
    )
    assert api.status_code == 201, api.get_json()
    assert stored_hash(app, "carol").startswith("$argon2id$")


def test_a_foreign_verify_waits_for_the_hashing_gate(
    app_factory: Callable[..., Flask], runner: CliRunner, tmp_path: Path
) -> None:
    app = app_factory(hash_concurrency=1, hash_wait_seconds=0.05)
    foreign = passlib_hash.pbkdf2_sha256.using(rounds=1000).hash(GOOD_PASSWORD)
    imported(runner, write(tmp_path / "u.json", json.dumps({"dan": {"password_hash": foreign}})))
    with app.app_context(), slot_held_elsewhere(app), pytest.raises(Busy):
        wiring.accounts().log_in("dan", GOOD_PASSWORD, CLIENT, NOW)
    assert stored_hash(app, "dan") == foreign


def test_bcrypt_reads_the_first_72_bytes_as_its_makers_did(
    app: Flask, client: FlaskClient, runner: CliRunner, tmp_path: Path
) -> None:
    """bcrypt before 5.0, PHP and Apache hashed a long password's first 72 bytes."""
    long = "é" * 50  # 100 bytes in UTF-8
    made = bcrypt.hashpw(long.encode()[:72], bcrypt.gensalt(4)).decode()
    imported(runner, write(tmp_path / "u.json", json.dumps({"erin": {"password_hash": made}})))
    assert lands(client, "erin", long) == "/yup"


# Apache's htpasswd and Authelia's users file


def test_an_htpasswd_file_imports_and_logs_in(
    app: Flask, runner: CliRunner, tmp_path: Path
) -> None:
    passwords = {"ann": "ann's pass phrase", "ben": "ben's pass phrase", "cy": "cy's pass phrase"}
    htpasswd = HtpasswdFile()
    for (name, password), scheme in zip(
        passwords.items(), ["bcrypt", "apr_md5_crypt", "ldap_sha1"], strict=True
    ):
        htpasswd.set_password(name, password)
        htpasswd.set_hash(name, getattr(passlib_hash, scheme).hash(password))
    file = tmp_path / ".htpasswd"
    file.write_bytes(b"# made by passlib\n\n" + htpasswd.to_string())
    printed = imported(runner, file, "--format", "htpasswd")
    assert "Added 3 user(s)." in printed
    for name, password in passwords.items():
        assert lands(app.test_client(), name, WRONG) == "/nope"
        assert lands(app.test_client(), name, password) == "/yup"
        assert stored_hash(app, name).startswith("$argon2id$")


AUTHELIA = """\
users:
  john:
    displayname: "John Doe"
    password: "{john}"
    email: john@example.com
    groups:
      - admins
      - Dev
  harry:
    disabled: true
    displayname: "Harry Potter"
    password: "{harry}"
    email: harry@example.com
    groups: []
"""


def test_an_authelia_file_brings_addresses_groups_and_state(
    app: Flask, runner: CliRunner, tmp_path: Path
) -> None:
    run_cli(runner, "groups", "add", "dev")
    file = write(
        tmp_path / "users_database.yml",
        AUTHELIA.format(
            john=passlib_hash.argon2.using(type="ID", memory_cost=64, rounds=1).hash("johns pw!"),
            harry=passlib_hash.sha512_crypt.using(rounds=1000).hash("harrys pw!"),
        ),
    )
    printed = imported(runner, file, "--format", "authelia")
    assert "Added 2 user(s)." in printed
    assert "Added group(s): admins" in printed
    assert lands(app.test_client(), "john", "johns pw!") == "/yup"
    assert lands(app.test_client(), "harry", "harrys pw!") == "/nope"
    with app.app_context():
        operator = wiring.operator()
        john = operator.find("john")
        assert operator.groups_of(john) == ["admins", "dev"]
        address = wiring.addresses().of(john.id)
        assert address is not None and address.address == "john@example.com"
        assert address.verified_at is not None
        assert operator.find("harry").disabled


# Export, then import elsewhere


def test_export_imports_into_a_fresh_instance_and_logs_in(
    app: Flask, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_cli(
        runner,
        "users",
        "add",
        "alice",
        "--password-stdin",
        "--email",
        "a@example.com",
        input=GOOD_PASSWORD + "\n",
    )
    run_cli(runner, "groups", "add", "staff")
    run_cli(runner, "users", "groups", "alice", "--add", "staff")
    foreign = passlib_hash.bcrypt.using(rounds=4).hash(NEW_PASSWORD)
    imported(runner, write(tmp_path / "u.json", json.dumps({"bob": {"password_hash": foreign}})))
    run_cli(runner, "users", "disable", "bob")

    file = tmp_path / "export.json"
    result = run_cli(runner, "users", "export", str(file))
    assert result.exit_code == 0, result.output
    assert "Exported 2 user(s)" in result.stdout
    assert os.stat(file).st_mode & 0o777 == 0o600
    exported = json.loads(file.read_text())
    assert exported["alice"]["email"] == "a@example.com"
    assert exported["alice"]["groups"] == ["staff"]
    assert exported["bob"] == {"password_hash": foreign, "disabled": True}
    assert run_cli(runner, "users", "export", "-").stdout == file.read_text()
    assert_one_line_error(run_cli(runner, "users", "export", str(file)), "exists", "--force")
    assert run_cli(runner, "users", "export", str(file), "--force").exit_code == 0

    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    monkeypatch.setenv("YUPNOPE_INSTANCE_PATH", str(other))
    printed = imported(runner, file)
    assert "Added 2 user(s)." in printed
    with fresh_app(other) as fresh:
        assert lands(fresh.test_client(), "alice", GOOD_PASSWORD) == "/yup"
        assert lands(fresh.test_client(), "bob", NEW_PASSWORD) == "/nope"
        with fresh.app_context():
            alice = wiring.operator().find("alice")
            assert wiring.operator().groups_of(alice) == ["staff"]
            assert wiring.operator().find("bob").password_hash == foreign


@contextmanager
def fresh_app(instance: Path) -> Iterator[Flask]:
    """Yield a migrated app on another instance folder; its engine is closed at the end."""
    app = create_app({"instance_path": str(instance), **CHEAP_ARGON2})
    try:
        migrations.upgrade(wiring.get(app).engine)
        yield app
    finally:
        wiring.get(app).engine.dispose()


# Files refused whole


def good_hash() -> str:
    """Return a well-formed bcrypt hash of GOOD_PASSWORD."""
    return passlib_hash.bcrypt.using(rounds=4).hash(GOOD_PASSWORD)


def werkzeug_salt_and_digest() -> str:
    """Return the salt and digest of a real Werkzeug scrypt hash, to give other costs."""
    return generate_password_hash("password", "scrypt:1024:8:1").split("$", 1)[1]


REFUSED_HASHES: dict[str, str] = {
    "DES crypt": passlib_hash.des_crypt.hash("password"),
    "unsalted MD5": "5f4dcc3b5aa765d61d8327deb882cf99",
    "plain text": "password",
    "bcrypt cut short": good_hash()[:-4],
    "werkzeug without iterations": "pbkdf2:sha256$salt$" + "0" * 64,
    "{SHA} cut short": passlib_hash.ldap_sha1.hash("password")[:-3],
    "locked, of nothing": "locked:password",
    "too long": "$pbkdf2-sha256$1000$" + "a" * 300,
    "Werkzeug scrypt, N no power of two": "scrypt:3:8:1$" + werkzeug_salt_and_digest(),
    "Werkzeug scrypt past hashlib's memory": "scrypt:16384:128:16$" + werkzeug_salt_and_digest(),
    "bcrypt settings without a digest": good_hash()[:29],
    "md5-crypt settings without a digest": passlib_hash.md5_crypt.hash("x").rsplit("$", 1)[0] + "$",
}


@pytest.mark.parametrize("bad", REFUSED_HASHES.values(), ids=REFUSED_HASHES.keys())
def test_a_hash_of_no_accepted_scheme_refuses_the_file(
    runner: CliRunner, tmp_path: Path, bad: str
) -> None:
    users = {"amy": {"password_hash": good_hash()}, "zed": {"password_hash": bad}}
    result = run_cli(runner, "users", "import", str(write(tmp_path / "u.json", json.dumps(users))))
    assert_one_line_error(result, "user 'zed'", "accepted: argon2", "werkzeug scrypt", "$apr1$")
    assert run_cli(runner, "users", "list", "--json").stdout.strip() == "[]"


def dearer(encoded: str, cost: str, dearer_cost: str) -> str:
    """Return ``encoded`` with its cost field ``cost`` written as ``dearer_cost``: still parsed."""
    assert encoded.count(cost) == 1, encoded
    return encoded.replace(cost, dearer_cost)


#: Hashes a login would pay too dearly for, each made by its library at a cost it can afford,
#: then given a cost over the limit (the hash no longer matches, but reads as one).
COSTLY_HASHES: dict[str, tuple[str, str]] = {
    "bcrypt cost 17": (
        dearer(bcrypt.hashpw(b"x", bcrypt.gensalt(4)).decode(), "$04$", "$17$"),
        "bcrypt cost 17, over the 16 taken",
    ),
    "Django pbkdf2, 20 million": (
        dearer(
            passlib_hash.django_pbkdf2_sha256.using(rounds=1000).hash("x"), "$1000$", "$20000000$"
        ),
        "rounds 20,000,000",
    ),
    "argon2id of 1 GiB": (
        dearer(
            passlib_hash.argon2.using(memory_cost=1024, rounds=1).hash("x"), "m=1024", "m=1048576"
        ),
        "memory (KiB) 1,048,576, over the 262,144 taken",
    ),
    "Werkzeug scrypt of 512 MiB": (
        dearer(generate_password_hash("x", "scrypt:1024:8:1"), "scrypt:1024:", "scrypt:524288:"),
        "memory (KiB) 524,288, over the 262,144 taken",
    ),
    "argon2 of 64 passes": (
        dearer(passlib_hash.argon2.using(memory_cost=1024, rounds=1).hash("x"), "t=1", "t=64"),
        "passes 64, over the 20 taken",
    ),
}


@pytest.mark.parametrize(("costly", "says"), COSTLY_HASHES.values(), ids=COSTLY_HASHES.keys())
def test_a_hash_too_dear_for_each_login_refuses_the_file(
    runner: CliRunner, tmp_path: Path, costly: str, says: str
) -> None:
    users = {"amy": {"password_hash": good_hash()}, "zed": {"password_hash": costly}}
    result = run_cli(runner, "users", "import", str(write(tmp_path / "u.json", json.dumps(users))))
    assert_one_line_error(result, "user 'zed'", "would make each login too dear", says)
    assert run_cli(runner, "users", "list", "--json").stdout.strip() == "[]"


BAD_FILES: dict[str, tuple[str, str, str]] = {
    # name: (format, content, what the error says)
    "a Python dict": ("json", "{'alice': {'password': 'x'}}", "double quotes"),
    "a Python dict inside": ("json", '{"alice": {\'password\': "x"}}', "Python dict"),
    "password and hash": (
        "json",
        json.dumps({"al": {"password": "x", "password_hash": "$2b$"}}),
        "user 'al' must be",
    ),
    "groups not a list": ("json", json.dumps({"al": {"password": "x", "groups": "a"}}), "list"),
    "a bad group": ("json", json.dumps({"al": {"password": "x", "groups": ["a b"]}}), "'a b'"),
    "a bad email": ("json", json.dumps({"al": {"password": "x", "email": "nope"}}), "user 'al'"),
    "an address twice": (
        "json",
        json.dumps(
            {"a1": {"password": "x", "email": "a@b.cd"}, "a2": {"password": "y", "email": "A@b.cd"}}
        ),
        "'a1'",
    ),
    "disabled not a flag": ("json", json.dumps({"al": {"password": "x", "disabled": 1}}), "true"),
    "htpasswd without a colon": ("htpasswd", "alice\n", "line 1"),
    "htpasswd name twice": ("htpasswd", "al:{SHA}x\nal:{SHA}y\n", "twice"),
    "htpasswd plain text": ("htpasswd", "al:password\n", "too weak"),
    "YAML broken": ("authelia", "users:\n  al: [\n", "not valid YAML"),
    "YAML nested too deep": ("authelia", "users: " + "[" * 100_000, "nested too deep"),
    "YAML without users": ("authelia", "people: {}\n", "users:"),
    "YAML name twice": ("authelia", "users:\n  al: {password: x}\n  al: {password: y}\n", "twice"),
    "YAML name a number": ("authelia", "users:\n  42: {password: x}\n", "text"),
    "YAML without a password": ("authelia", "users:\n  al: {email: a@b.cd}\n", "hash"),
}


@pytest.mark.parametrize(("format", "content", "says"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_bad_file_is_one_line_and_imports_nothing(
    runner: CliRunner, tmp_path: Path, format: str, content: str, says: str
) -> None:
    file = write(tmp_path / "users", content)
    result = run_cli(runner, "users", "import", str(file), "--format", format)
    assert_one_line_error(result, str(file), says)
    assert run_cli(runner, "users", "list", "--json").stdout.strip() == "[]"


def test_an_address_of_an_existing_account_refuses_the_file(
    runner: CliRunner, tmp_path: Path
) -> None:
    run_cli(
        runner,
        "users",
        "add",
        "al",
        "--password-stdin",
        "--email",
        "al@example.com",
        input=GOOD_PASSWORD + "\n",
    )
    users = {"bo": {"password": GOOD_PASSWORD, "email": "AL@example.com"}}
    result = run_cli(runner, "users", "import", str(write(tmp_path / "u.json", json.dumps(users))))
    assert_one_line_error(result, "user 'bo'", "AL@example.com", "nothing was imported")
    listed = json.loads(run_cli(runner, "users", "list", "--json").stdout)
    assert [user["username"] for user in listed] == ["al"]


def test_an_empty_file_says_it_imported_nobody(runner: CliRunner, tmp_path: Path) -> None:
    printed = imported(runner, write(tmp_path / "u.json", "{}"))
    assert printed == "Imported nobody: the file has no users.\n"
    assert "admin_users_imported" not in run_cli(runner, "audit").stdout


def test_a_locked_password_is_exported_and_imported_locked(
    app: Flask, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A password locked by "this wasn't me" travels locked: it opens nothing elsewhere either."""
    run_cli(runner, "users", "add", "lee", "--password-stdin", input=GOOD_PASSWORD + "\n")
    with app.app_context():
        store = wiring.store()
        lee = wiring.operator().find("lee")
        with store.tx.write():
            store.users.update(lee, password_hash=LOCKED + lee.password_hash)
    file = tmp_path / "export.json"
    assert run_cli(runner, "users", "export", str(file)).exit_code == 0
    assert json.loads(file.read_text())["lee"]["password_hash"].startswith(LOCKED)

    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    monkeypatch.setenv("YUPNOPE_INSTANCE_PATH", str(other))
    assert "Added 1 user(s)." in imported(runner, file)
    with fresh_app(other) as fresh:
        assert lands(fresh.test_client(), "lee", GOOD_PASSWORD) == "/nope"
