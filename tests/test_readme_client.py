"""Run the README's two API client examples, as printed, against a live server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from helpers import CHEAP_ARGON2, TIMEOUT, LiveServer, environment

pytestmark = pytest.mark.live

README = Path(__file__).parent.parent / "README.md"
EXAMPLE_ADDRESS = "http://127.0.0.1:8000"


def example(language: str, start: str = "") -> str:
    """Return the README's one code block in ``language`` within its JSON API section.

    ``start``: the block's first characters, where the section has more than one.
    """
    section = README.read_text().split("## JSON API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)
    chosen = [block for block in blocks if block.startswith(start)]
    assert len(chosen) == 1, f"the JSON API section should have one {language} example {start}"
    return str(chosen[0])


def run_shell(script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with bash in the repository's folder, as the README's reader would."""
    return subprocess.run(
        ["bash", "-c", script],
        cwd=README.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def server(live_server_factory: Callable[..., LiveServer], instance: Path) -> LiveServer:
    """Return a live server with the README's user, david, whose first failure waits ten minutes.

    david is made by the README's own command, with the clone's .venv as the README has it.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUPNOPE_")}
    env["YUPNOPE_INSTANCE_PATH"] = str(instance)
    env.update(environment(CHEAP_ARGON2))
    added = run_shell(example("sh", "echo "), env)
    assert added.returncode == 0, added.stderr
    assert added.stdout == "Added user 'david'.\n"
    return live_server_factory(throttle_free_failures=1, throttle_base_delay_seconds=600)


def test_the_curl_example_logs_in_reads_the_account_and_logs_out(server: LiveServer) -> None:
    """Run the shell example: it prints david's account, and its token is dead afterwards."""
    script = example("sh", "token=").replace(EXAMPLE_ADDRESS, server.url)
    script += (
        f'curl -s -o /dev/null -w "%{{http_code}}" {server.url}/api/v1/me '
        '-H "Authorization: Bearer $token"'
    )
    done = run_shell(script)
    assert done.returncode == 0, done.stderr
    assert '"username":"david"' in done.stdout
    assert done.stdout.endswith("401")


def test_the_curl_example_says_why_a_login_was_refused(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    """Run the shell example before david exists: the server's reason, never a traceback."""
    server = live_server_factory()
    script = example("sh", "token=").replace(EXAMPLE_ADDRESS, server.url)
    done = run_shell(script + 'printf "\\ntoken: [%s]" "$token"')
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[0] == "The name or password is not right."
    assert done.stdout.splitlines()[-1] == "token: []"


def run_python_example(server: LiveServer, folder: Path) -> list[str]:
    """Run the README's Python example in ``folder`` against ``server``; return its lines."""
    script = example("python").replace(EXAMPLE_ADDRESS, server.url)
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_requests_example_makes_a_personal_token_that_works(
    server: LiveServer, tmp_path: Path
) -> None:
    """Run the Python example: it prints the name and a token secret that outlives the logout."""
    lines = run_python_example(server, tmp_path)
    assert lines[0] == "david"
    secret = lines[1].removeprefix("keep this secret: ")
    assert secret.startswith("ynp_")
    me = requests.get(
        f"{server.url}/api/v1/me", headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )
    assert me.status_code == 200
    assert me.json()["username"] == "david"


def test_the_requests_example_keeps_its_device_and_gets_in_while_strangers_wait(
    server: LiveServer, tmp_path: Path
) -> None:
    """Run the Python example twice, a stranger's failure between: its device lets it in."""
    assert run_python_example(server, tmp_path)[0] == "david"
    sessions = f"{server.url}/api/v1/sessions"
    wrong = {"username": "david", "password": "a stranger's guess"}
    assert requests.post(sessions, json=wrong, timeout=TIMEOUT).status_code == 401
    right = {"username": "david", "password": "a long passphrase"}
    waiting = requests.post(sessions, json=right, timeout=TIMEOUT)
    assert waiting.status_code == 429
    assert int(waiting.headers["Retry-After"]) > 500
    assert run_python_example(server, tmp_path)[0] == "david"
