"""Fuzz the JSON API with schemathesis against the description a live server serves.

Every operation is run through schemathesis's phases (coverage, fuzzing, and stateful runs
along the description's links) with every check: no 5xx, every status, header, content type
and body as described, invalid input refused, valid input accepted. The seed is random, so
each run explores new inputs; a failure prints the seed and the case to replay it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from helpers import LiveServer, run_yupnope

pytestmark = pytest.mark.live

HERE = Path(__file__).parent
FUZZER = "fuzzer"
FUZZER_PASSWORD = "a passphrase for the fuzzer"


def test_schemathesis_finds_no_fault_in_the_api(
    live_server_factory: Callable[..., LiveServer], instance: Path, tmp_path: Path
) -> None:
    """Run every schemathesis check on every operation; none may fail."""
    added = run_yupnope(
        instance, "users", "add", FUZZER, "--password-stdin", input=FUZZER_PASSWORD, cheap=False
    )
    assert added.returncode == 0, added.stderr
    # Thousands of requests from one address, and wrong current passwords for the fuzzing
    # account: the throttle's budgets are raised so that they do not turn the whole run into
    # 429s (the throttle is tested elsewhere).
    server = live_server_factory(
        throttle_free_failures=1_000_000,
        throttle_account_limit=1_000_000,
        throttle_address_limit=1_000_000,
        throttle_global_limit=1_000_000,
        throttle_signup_limit=1_000_000,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YUPNOPE_", "SCHEMATHESIS"))}
    env.update(
        FUZZ_SERVER=server.url,
        FUZZ_USERNAME=FUZZER,
        FUZZ_PASSWORD=FUZZER_PASSWORD,
        SCHEMATHESIS_HOOKS="fuzz_hooks",
        PYTHONPATH=str(HERE),
    )
    command = [
        str(Path(sys.executable).parent / "st"),
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        f"{server.url}/api/openapi.json",
        "--checks",
        "all",
        # One per CPU: the live server has as many workers, and the run is most of its time.
        "--workers",
        str(os.cpu_count() or 1),
        "--request-timeout",
        "30",
    ]
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=540, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # Every operation the description has, counted from the description itself.
    paths = requests.get(f"{server.url}/api/openapi.json", timeout=30).json()["paths"]
    operations = sum(len(methods) for methods in paths.values())
    assert operations >= 17
    assert f"{operations} selected / {operations} total" in done.stdout
    assert f"Tested: {operations}" in done.stdout
    # The stateful phase ran along the description's links.
    assert "Scenarios:" in done.stdout
    assert "Traceback" not in server.log.read_text()
