"""Test where settings come from and how bad values are refused."""

from __future__ import annotations

import dataclasses
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from yupnope import config, create_app, wiring

SOURCE = Path(config.__file__).resolve().parent

#: Every setting a caller may give: the fields of Settings that are not derived.
FIELDS = [item.name for item in dataclasses.fields(config.Settings) if item.init]


def test_defaults_are_documented_constants(tmp_path: Path) -> None:
    settings = config.load(environ={}, overrides={"instance_path": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'yupnope.db'}"
    assert settings.cookie_secure == "auto"
    assert settings.secret_key == ""
    assert settings.argon2_memory_kib == 19456
    lines = Path(config.__file__).read_text().splitlines()
    for name in FIELDS:
        where = next(i for i, line in enumerate(lines) if re.match(rf"\s+{name}: ", line))
        above = lines[where - 1].strip()
        assert above.startswith("#: "), f"{name} has no #: line directly above it"
        # The comment may run over several lines; each of them is a #: line.
        first = where - 1
        while lines[first - 1].strip().startswith("#:"):
            first -= 1
        assert all(line.strip().startswith("#:") for line in lines[first:where]), name


def test_an_unknown_override_is_refused(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="nonsense"):
        config.load(environ={}, overrides={"instance_path": str(tmp_path), "nonsense": 1})
    with pytest.raises(config.ConfigError, match="nonsense"):
        config.load(overrides={"nonsense": 1})


def test_a_misspelt_setting_is_refused_with_the_nearest_name(tmp_path: Path) -> None:
    env = {"YUPNOPE_INSTANCE_PATH": str(tmp_path), "YUPNOPE_SIGNUP_OPN": "false"}
    said = (
        r"^environment: unknown setting 'YUPNOPE_SIGNUP_OPN'; did you mean YUPNOPE_SIGNUP_OPEN\?$"
    )
    with pytest.raises(config.ConfigError, match=said):
        config.load(environ=env)
    # The access rules are a table of the instance file: no variable reads them.
    with pytest.raises(config.ConfigError, match="YUPNOPE_ACCESS is not read"):
        config.load(environ={"YUPNOPE_INSTANCE_PATH": str(tmp_path), "YUPNOPE_ACCESS": "x"})
    (tmp_path / "yupnope.toml").write_text("cookie_secur = 'always'\n")
    with pytest.raises(config.ConfigError, match="did you mean cookie_secure\\?$"):
        config.load(environ={"YUPNOPE_INSTANCE_PATH": str(tmp_path)})
    with pytest.raises(config.ConfigError, match="did you mean public_url\\?$"):
        config.load(environ={}, overrides={"instance_path": str(tmp_path), "public_ur": "x"})


def test_the_test_suites_own_variables_are_no_settings(tmp_path: Path) -> None:
    env = {
        "YUPNOPE_INSTANCE_PATH": str(tmp_path),
        "YUPNOPE_REQUIRE_BROWSER": "1",
        "YUPNOPE_TEST_POSTGRES_URL": "postgresql://x",
        "YUPNOPE_BENCH_POSTGRES_URL": "postgresql://x",
    }
    assert config.load(environ=env).instance_path == str(tmp_path.resolve())


def readers(pattern: str) -> list[str]:
    """Return the source files besides config.py in which ``pattern`` (a regex) is found."""
    return [
        path.relative_to(SOURCE).as_posix()
        for path in sorted(SOURCE.rglob("*.py"))
        if path.name != "config.py" and re.search(pattern, path.read_text())
    ]


@pytest.mark.parametrize("name", FIELDS)
def test_every_setting_is_read_by_its_own_name(name: str) -> None:
    """Check that ``grep -rn NAME src/`` finds where a setting is used, not only its definition."""
    assert readers(rf"\b{name}\b"), f"{name} appears nowhere outside config.py"


def test_the_account_window_is_found_where_it_is_used() -> None:
    """Check the issue's own example: ``grep -rn throttle_account_window src/`` finds its reader."""
    assert readers(r"settings\.throttle_account_window_seconds\b")


def test_instance_file_then_environment_then_overrides(tmp_path: Path) -> None:
    (tmp_path / "yupnope.toml").write_text(
        'cookie_secure = "always"\nsession_idle_seconds = 60\nsignup_open = false\n'
        "session_touch_seconds = 2\n"
    )
    env = {"YUPNOPE_INSTANCE_PATH": str(tmp_path), "YUPNOPE_SESSION_IDLE_SECONDS": "120"}
    settings = config.load(environ=env)
    assert settings.cookie_secure == "always"
    assert settings.signup_open is False
    assert settings.session_idle_seconds == 120
    settings = config.load(environ=env, overrides={"session_idle_seconds": 5})
    assert settings.session_idle_seconds == 5
    assert settings.session_touch_seconds == 2


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"YUPNOPE_COOKIE_SECURE": "maybe"}, "COOKIE_SECURE must be one of"),
        ({"YUPNOPE_SESSION_IDLE_SECONDS": "abc"}, "must be a whole number"),
        ({"YUPNOPE_SESSION_IDLE_SECONDS": "0"}, "must be at least 1"),
        ({"YUPNOPE_SIGNUP_OPEN": "perhaps"}, "must be true or false"),
        ({"YUPNOPE_ARGON2_MEMORY_KIB": "4"}, "at least 8 per lane"),
        ({"YUPNOPE_SESSION_TOUCH_SECONDS": "43200"}, "less than YUPNOPE_SESSION_IDLE_SECONDS"),
        ({"YUPNOPE_TRUSTED_PROXIES": "10.0.0.0/33"}, "count or CIDRs"),
        ({"YUPNOPE_TRUSTED_PROXIES": "\u00b2"}, "count or CIDRs"),
        ({"YUPNOPE_HASH_WAIT_SECONDS": "0"}, "more than 0"),
        ({"YUPNOPE_PUBLIC_URL": "login.example.com"}, "PUBLIC_URL takes origins like"),
        ({"YUPNOPE_PUBLIC_URL": "https://login.example.com/"}, "PUBLIC_URL takes origins like"),
        ({"YUPNOPE_PUBLIC_URL": "https://login.example.com/x?y"}, "PUBLIC_URL takes origins"),
        ({"YUPNOPE_PUBLIC_URL": "ftp://login.example.com"}, "PUBLIC_URL takes origins like"),
        ({"YUPNOPE_PUBLIC_URL": "https://me@login.example.com"}, "PUBLIC_URL takes origins"),
    ],
)
def test_bad_values_are_refused_with_the_settings_name(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(config.ConfigError, match=message):
        config.load(environ={"YUPNOPE_INSTANCE_PATH": str(tmp_path), **env})


@pytest.mark.parametrize(
    ("setting", "origin"),
    [
        ("", ""),
        (" HTTPS://Login.Example.com:443 ", "https://login.example.com"),
        ("http://[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_the_public_url_is_kept_as_an_origin(tmp_path: Path, setting: str, origin: str) -> None:
    env = {"YUPNOPE_INSTANCE_PATH": str(tmp_path), "YUPNOPE_PUBLIC_URL": setting}
    assert config.load(environ=env).public_origin == origin


@pytest.mark.parametrize(
    ("content", "message"),
    [("nonsense = 1\n", "unknown setting"), ("cookie_secure = \n", "cannot read")],
)
def test_bad_instance_file_is_refused(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "yupnope.toml").write_text(content)
    with pytest.raises(config.ConfigError, match=message):
        config.load(environ={"YUPNOPE_INSTANCE_PATH": str(tmp_path)})


def test_secret_key_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    first = wiring.get(create_app({"instance_path": str(tmp_path)})).settings
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first.secret_key) >= 64
    second = wiring.get(create_app({"instance_path": str(tmp_path)})).settings
    assert second.secret_key == first.secret_key
    other = wiring.get(create_app({"instance_path": str(tmp_path / "elsewhere")})).settings
    assert other.secret_key != first.secret_key


def test_a_configured_secret_key_is_used_and_no_file_written(tmp_path: Path) -> None:
    app = create_app({"instance_path": str(tmp_path), "secret_key": "k" * 40})
    assert wiring.get(app).settings.secret_key == "k" * 40
    assert not (tmp_path / "secret_key").exists()


def test_secret_key_creation_survives_racing_processes(tmp_path: Path) -> None:
    script = (
        "import sys, pathlib; from yupnope import instance; "
        "print(instance.ensure_secret_key(pathlib.Path(sys.argv[1])))"
    )
    racers = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE)
        for _ in range(6)
    ]
    seen = {racer.communicate(timeout=30)[0].decode().strip() for racer in racers}
    assert seen == {(tmp_path / "secret_key").read_text().strip()}


def test_the_readme_lists_every_setting() -> None:
    readme = (SOURCE.parent.parent / "README.md").read_text()
    table = readme.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(YUPNOPE_[A-Z0-9_]+)` \|", table, re.MULTILINE))
    assert listed == {config.env_name(name) for name in FIELDS if name != "access"}
