"""Run the README's two API client examples, as printed, against a live server."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from helpers import TIMEOUT, LiveServer, run_yupnope

pytestmark = pytest.mark.live

README = Path(__file__).parent.parent / "README.md"
EXAMPLE_ADDRESS = "http://127.0.0.1:8000"


def example(language: str) -> str:
    """Return the README's one code block in ``language`` within its JSON API section."""
    section = README.read_text().split("## JSON API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, f"the JSON API section should have one {language} example"
    return str(blocks[0])


@pytest.fixture
def server(live_server_factory: Callable[..., LiveServer], instance: Path) -> LiveServer:
    """Return a live server with the README's user, david, whose first failure waits ten minutes."""
    added = run_yupnope(
        instance, "users", "add", "david", "--password-stdin", input="a long passphrase"
    )
    assert added.returncode == 0, added.stderr
    return live_server_factory(throttle_free_failures=1, throttle_base_delay_seconds=600)


def test_the_curl_example_logs_in_reads_the_account_and_logs_out(server: LiveServer) -> None:
    """Run the shell example: it prints david's account, and its token is dead afterwards."""
    script = example("sh").replace(EXAMPLE_ADDRESS, server.url)
    script += (
        f'curl -s -o /dev/null -w "%{{http_code}}" {server.url}/api/v1/me '
        '-H "Authorization: Bearer $token"'
    )
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert '"username":"david"' in done.stdout
    assert done.stdout.endswith("401")


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
