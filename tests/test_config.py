"""Test where settings come from and how bad values are refused."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from yupnope import config, create_app


def test_defaults_are_documented_constants(tmp_path: Path) -> None:
    values = config.load(environ={}, overrides={"INSTANCE_PATH": str(tmp_path)})
    assert values["DATABASE_URL"] == f"sqlite:///{tmp_path.resolve() / 'yupnope.db'}"
    assert values["COOKIE_SECURE"] == "auto"
    assert values["SECRET_KEY"] == ""
    assert values["ARGON2_MEMORY_KIB"] == 19456
    lines = Path(config.__file__).read_text().splitlines()
    for name in config.defaults():
        where = next(i for i, line in enumerate(lines) if line.startswith(f"{name} = "))
        assert lines[where - 1].startswith("#: "), f"{name} has no #: line"


def test_instance_file_then_environment_then_overrides(tmp_path: Path) -> None:
    (tmp_path / "yupnope.toml").write_text(
        'cookie_secure = "always"\nsession_idle_seconds = 60\nsignup_open = false\n'
        "session_touch_seconds = 2\n"
    )
    env = {"YUPNOPE_INSTANCE_PATH": str(tmp_path), "YUPNOPE_SESSION_IDLE_SECONDS": "120"}
    values = config.load(environ=env)
    assert values["COOKIE_SECURE"] == "always"
    assert values["SIGNUP_OPEN"] is False
    assert values["SESSION_IDLE_SECONDS"] == 120
    values = config.load(environ=env, overrides={"SESSION_IDLE_SECONDS": 5})
    assert values["SESSION_IDLE_SECONDS"] == 5
    assert values["SESSION_TOUCH_SECONDS"] == 2


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
        ({"YUPNOPE_HASH_WAIT_SECONDS": "0"}, "more than 0"),
    ],
)
def test_bad_values_are_refused_with_the_settings_name(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(config.ConfigError, match=message):
        config.load(environ={"YUPNOPE_INSTANCE_PATH": str(tmp_path), **env})


@pytest.mark.parametrize(
    ("content", "message"),
    [("nonsense = 1\n", "unknown setting"), ("cookie_secure = \n", "cannot read")],
)
def test_bad_instance_file_is_refused(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "yupnope.toml").write_text(content)
    with pytest.raises(config.ConfigError, match=message):
        config.load(environ={"YUPNOPE_INSTANCE_PATH": str(tmp_path)})


def test_secret_key_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    first = create_app({"INSTANCE_PATH": str(tmp_path)})
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first.config["SECRET_KEY"]) >= 64
    second = create_app({"INSTANCE_PATH": str(tmp_path)})
    assert second.config["SECRET_KEY"] == first.config["SECRET_KEY"]
    other = create_app({"INSTANCE_PATH": str(tmp_path / "elsewhere")})
    assert other.config["SECRET_KEY"] != first.config["SECRET_KEY"]


def test_a_configured_secret_key_is_used_and_no_file_written(tmp_path: Path) -> None:
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "k" * 40})
    assert app.config["SECRET_KEY"] == "k" * 40
    assert not (tmp_path / "secret_key").exists()


def test_secret_key_creation_survives_racing_processes(tmp_path: Path) -> None:
    script = (
        "import sys, pathlib; from yupnope import config; "
        "print(config.ensure_secret_key(pathlib.Path(sys.argv[1])))"
    )
    racers = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE)
        for _ in range(6)
    ]
    seen = {racer.communicate(timeout=30)[0].decode().strip() for racer in racers}
    assert seen == {(tmp_path / "secret_key").read_text().strip()}
