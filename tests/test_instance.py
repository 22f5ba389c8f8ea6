"""Test that the instance folder and the files yupnope makes are their owner's alone.

The outside review found the SQLite files world-readable, 0644 in a 0755 folder, wherever
systemd's UMask did not step in: every local user could copy the password hashes.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from helpers import GOOD_PASSWORD, TIMEOUT, LiveServer, run_yupnope


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """Run the test, and the processes it starts, under the umask most shells have (022)."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    """Return the permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


def modes(folder: Path) -> dict[str, int]:
    """Return the permission bits of every file in ``folder``, by name."""
    return {path.name: mode(path) for path in folder.iterdir() if path.is_file()}


@pytest.mark.live
@pytest.mark.usefixtures("usual_umask")
def test_a_fresh_instance_is_private(
    instance: Path, live_server_factory: Callable[..., LiveServer]
) -> None:
    instance.rmdir()
    done = run_yupnope(instance, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert mode(instance) == 0o700
    assert modes(instance) == {"yupnope.db": 0o600, "secret_key": 0o600}
    # SQLite's -wal and -shm files exist while a server has the database open.
    server = live_server_factory(workers=1)
    user = {"username": "alice", "password": GOOD_PASSWORD}
    answer = requests.post(server.url + "/api/v1/users", json=user, timeout=TIMEOUT)
    assert answer.status_code == 201, answer.text
    private = dict.fromkeys(("yupnope.db", "yupnope.db-wal", "yupnope.db-shm", "secret_key"), 0o600)
    assert modes(instance) == private
    assert mode(instance) == 0o700


@pytest.mark.usefixtures("usual_umask")
def test_a_database_outside_the_instance_is_private_too(instance: Path, tmp_path: Path) -> None:
    data = tmp_path / "data" / "db"
    done = run_yupnope(
        instance, "db", "upgrade", settings={"YUPNOPE_DATABASE_URL": f"sqlite:///{data}/x.db"}
    )
    assert done.returncode == 0, done.stderr
    assert mode(data) == 0o700
    assert modes(data) == {"x.db": 0o600}


@pytest.mark.parametrize(("before", "after"), [(0o755, 0o750), (0o777, 0o770), (0o705, 0o700)])
def test_an_instance_folder_open_to_others_is_closed_with_a_warning(
    instance: Path, before: int, after: int
) -> None:
    instance.chmod(before)
    done = run_yupnope(instance, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert mode(instance) == after
    assert f"{instance} was open to every user (mode {before:04o}); now {after:04o}" in done.stderr
    # The group's access is the operator's to give (systemd's StateDirectoryMode=0750): kept.
    again = run_yupnope(instance, "db", "upgrade")
    assert again.stderr == ""
    assert mode(instance) == after
