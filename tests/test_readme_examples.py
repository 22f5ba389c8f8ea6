"""Hold the README to its examples: every fenced block in it is run, as written, by a test.

The blocks are found by their first line. ``RUN_BY`` names the test that runs each; a block
added to the README without a test here fails the first test below, and a test whose block
has gone fails it too.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from helpers import CHEAP_ARGON2, TIMEOUT, environment, free_port, run_cli

REPOSITORY = Path(__file__).resolve().parent.parent
README = REPOSITORY / "README.md"

#: Each block's first line, with the test that runs the block (``file::function``). The first
#: block's second line, ``make test``, is the run that runs these tests.
RUN_BY = {
    "make run    # creates .venv, installs, migrates, serves on http://127.0.0.1:8000": (
        "test_readme_examples.py::test_make_run_serves_and_the_first_user_logs_in"
    ),
    ".venv/bin/yupnope users add alice": (
        "test_readme_examples.py::test_make_run_serves_and_the_first_user_logs_in"
    ),
    "YUPNOPE_README_SCREENSHOTS=1 .venv/bin/pytest tests/test_browser.py -k every_look": (
        "test_readme_examples.py::test_the_screenshot_command_names_a_test_that_exists"
    ),
    "echo 'a long passphrase' | .venv/bin/yupnope users add david --password-stdin": (
        "test_readme_client.py::server"
    ),
    "token=$(curl -s http://127.0.0.1:8000/api/v1/sessions "
    "-H 'Content-Type: application/json' \\": (
        "test_readme_client.py::test_the_curl_example_logs_in_reads_the_account_and_logs_out"
    ),
    "from pathlib import Path": (
        "test_readme_client.py::test_the_requests_example_makes_a_personal_token_that_works"
    ),
    "[access]": "test_readme_examples.py::test_the_access_rules_example_loads_as_explained",
    "Error: /srv/yupnope/yupnope.toml: access.rules[3].resources[1]: "
    '"^(/admin" is not a regular expression: missing ), unterminated subpattern at position 1': (
        "test_readme_examples.py::test_the_rules_error_is_what_a_bad_rule_prints"
    ),
    "systemctl stop 'yupnope@*'": (
        "test_readme_examples.py::test_the_move_to_postgresql_copies_the_users_there"
    ),
    # The registries these tests reach have no base image: the live tests of test_container.py
    # build on one made with debootstrap and run the image as these lines do, which this holds
    # them to; compose's PostgreSQL image is out of reach, so compose.yaml is read, not run.
    "podman build --format docker -t yupnope .    # or: docker build -t yupnope .": (
        "test_container.py::test_the_readme_runs_the_image_as_the_test_does"
    ),
    'echo "POSTGRES_PASSWORD=$(openssl rand -hex 24)" > .env': (
        "test_container.py::test_the_readme_runs_the_image_as_the_test_does"
    ),
    "$ yupnope rules explain 'https://app.example.com/admin?x=1' --user bob": (
        "test_cli_rules.py::test_the_readmes_example_is_what_explain_prints"
    ),
}


def blocks() -> list[str]:
    """Return every fenced block of the README, without its fences."""
    return re.findall(r"^```[a-z]*\n(.*?)^```$", README.read_text(), flags=re.S | re.M)


def block(start: str) -> str:
    """Return the README's one block that starts with ``start``."""
    (found,) = [text for text in blocks() if text.startswith(start)]
    return found


def test_every_example_is_run_by_a_test_that_exists() -> None:
    assert sorted(text.splitlines()[0] for text in blocks()) == sorted(RUN_BY)
    for where in RUN_BY.values():
        file, name = where.split("::")
        assert re.search(rf"^def {name}\(", (REPOSITORY / "tests" / file).read_text(), re.M), where


@pytest.mark.live
def test_make_run_serves_and_the_first_user_logs_in(tmp_path: Path) -> None:
    """Run ``make run`` and the first user's command, then log in as that user."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUPNOPE_")}
    env["YUPNOPE_INSTANCE_PATH"] = str(tmp_path / "instance")
    env.update(environment(CHEAP_ARGON2))
    run_line = block("make run ").splitlines()[0].split("#")[0].strip()
    assert run_line == "make run"
    # The README's address is 127.0.0.1:8000; a free port stands in for 8000 alone.
    server = subprocess.Popen(
        [*run_line.split(), f"PORT={port}"],
        cwd=REPOSITORY,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(url, server)
        add_alice = block(".venv/bin/yupnope users add alice").strip()
        password = "the first user's passphrase"
        added = subprocess.run(
            add_alice.split(),
            cwd=REPOSITORY,
            env=env,
            input=f"{password}\n{password}\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert added.returncode == 0, added.stderr
        assert added.stdout == "Added user 'alice'.\n"
        answer = requests.post(
            f"{url}/login",
            data={"username": "alice", "password": password},
            headers={"Origin": url},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        assert answer.status_code == 303
        assert answer.headers["Location"] == "/yup"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.communicate(timeout=30)


def wait_until_ready(url: str, server: subprocess.Popen[bytes]) -> None:
    """Wait until ``server`` answers at ``url``; fail with its output if it ends first."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            output = server.stdout.read().decode() if server.stdout else ""
            pytest.fail(f"make run ended: {output}")
        try:
            if requests.get(f"{url}/healthz/ready", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.2)
    pytest.fail("make run did not answer within two minutes")


def test_the_screenshot_command_names_a_test_that_exists() -> None:
    """Check the command that redraws the README's pictures selects a test of test_browser.py.

    Running it would overwrite docs/screenshots/ in the clone; test_browser.py runs that same
    test in every run, writing its pictures under pytest's temporary folder instead.
    """
    command = block("YUPNOPE_README_SCREENSHOTS=1 ").split()
    assert command[:2] == ["YUPNOPE_README_SCREENSHOTS=1", ".venv/bin/pytest"]
    module, flag, keyword = command[2:]
    assert flag == "-k"
    assert re.search(rf"^def test_\w*{keyword}\w*\(", (REPOSITORY / module).read_text(), re.M)
    assert "YUPNOPE_README_SCREENSHOTS" in (REPOSITORY / module).read_text()


def test_the_access_rules_example_loads_as_explained(runner: CliRunner, instance: Path) -> None:
    """Load the README's ``[access]`` example as ``yupnope.toml`` and ask what it decides."""
    (instance / "yupnope.toml").write_text(block("[access]"))
    url = "https://app.example.com/admin/users"
    decisions = {
        (url, "POST"): "decision: sign_in, rule 1 lets in only group:staff or user:alice: "
        "sign in first",
        (url, "DELETE"): "decision: deny, no rule decides, and the default policy denies",
        ("https://other.example.com/admin", "GET"): (
            "decision: deny, no rule decides, and the default policy denies"
        ),
    }
    for (target, method), decision in decisions.items():
        printed = run_cli(runner, "rules", "explain", target, "--method", method)
        assert printed.exit_code == 0, printed.output
        assert printed.stdout.splitlines()[-1] == decision


def test_the_rules_error_is_what_a_bad_rule_prints(runner: CliRunner, instance: Path) -> None:
    """Write a third rule with the README's broken expression and compare the error printed."""
    shown = block("Error: /srv/yupnope/yupnope.toml").strip()
    rule = '[[access.rules]]\ndomain = "a.example.com"\npolicy = "signed_in"\n'
    broken = '[[access.rules]]\ndomain = "a.example.com"\nresources = ["^(/admin"]\n'
    (instance / "yupnope.toml").write_text(rule + rule + broken + 'policy = "deny"\n')
    printed = run_cli(runner, "users", "list")
    assert printed.exit_code == 1
    written = printed.stderr.strip().replace(str(instance.resolve()), "/srv/yupnope")
    assert written == shown


def test_the_move_to_postgresql_copies_the_users_there(
    tmp_path: Path, instance: Path, postgres_url: str
) -> None:
    """Run the move's middle lines on a test schema and a file for the environment.

    The first and last lines stop and start the units of docs/deploy.md, installed from
    deploy/yupnope.service (whose environment file the third line writes to); they are
    checked against that unit, not run.
    """
    stop, copy, remember, start = block("systemctl stop ").splitlines()
    assert stop == "systemctl stop 'yupnope@*'"
    assert start == "systemctl start yupnope@8001 yupnope@8002"
    unit = (REPOSITORY / "deploy" / "yupnope.service").read_text()
    assert "EnvironmentFile=/etc/yupnope/yupnope.env" in unit
    assert "yupnope@.service" in (REPOSITORY / "docs" / "deploy.md").read_text()

    example_url = "postgresql://yupnope@db.example.com/yupnope"
    env_file = tmp_path / "yupnope.env"
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUPNOPE_")}
    env["YUPNOPE_INSTANCE_PATH"] = str(instance)
    env.update(environment(CHEAP_ARGON2))
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    password = "a passphrase from before"
    added = subprocess.run(
        ["yupnope", "users", "add", "ada", "--password-stdin"],
        env=env,
        input=password,
        capture_output=True,
        text=True,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    script = "\n".join((copy, remember)).replace(example_url, postgres_url)
    script = script.replace("/etc/yupnope/yupnope.env", str(env_file))
    moved = subprocess.run(
        ["bash", "-e", "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert moved.returncode == 0, moved.stderr
    assert re.search(r"^users +1$", moved.stdout, re.M)

    setting, value = env_file.read_text().strip().split("=", 1)
    assert setting == "YUPNOPE_DATABASE_URL"
    moved_env = {**env, setting: value}
    listed = subprocess.run(
        ["yupnope", "users", "list", "--json"],
        env=moved_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert [user["username"] for user in json.loads(listed.stdout)] == ["ada"]
