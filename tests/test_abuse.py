"""Test the defences against password guessing and floods on real `yupnope serve` processes.

Every server here hashes with the real argon2 parameters (19 MiB, t=2), keeps its counters in
the instance's SQLite file, and runs two or more worker processes, so what is tested is what
the processes agree on through the database, not what one of them remembers.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from helpers import GOOD_PASSWORD, LiveServer, run_yupnope
from yupnope.throttle import policy

pytestmark = pytest.mark.live

#: Seconds any one request may take: (connect, read).
TIMEOUT = (5, 20)

#: Worker threads of each server process: the default of `yupnope serve --threads`.
THREADS = 4

#: As many hashing slots as a worker has threads, so the gate never answers Busy: the tests
#: that count checked passwords exactly then do not depend on the CPU count of the machine.
NO_BUSY = {"hash_concurrency": THREADS}

ALICE_KEY = policy.account_key("alice")


@dataclass(frozen=True)
class Answer:
    """Carry what a login attempt was answered: status, redirect target, Retry-After, body."""

    status: int
    path: str
    query: dict[str, list[str]]
    retry_after: str | None
    body: str

    @property
    def checked(self) -> bool:
        """Return whether the password was checked and found wrong (plain /nope)."""
        return self.status == 303 and self.path == "/nope" and not self.query

    @property
    def throttled(self) -> bool:
        """Return whether the attempt was refused before any check (/nope?wait=N, Retry-After N)."""
        if self.status != 303 or self.path != "/nope" or list(self.query) != ["wait"]:
            return False
        (wait,) = self.query["wait"]
        return wait.isdigit() and int(wait) > 0 and self.retry_after == wait

    @property
    def busy(self) -> bool:
        """Return whether no hashing slot came free (503 from the gate, with Retry-After)."""
        return self.status == 503 and self.retry_after is not None and "busy" in self.body

    @property
    def logged_in(self) -> bool:
        """Return whether the login succeeded (303 to /yup)."""
        return self.status == 303 and self.path == "/yup"


def post_login(http: requests.Session, server: LiveServer, username: str, password: str) -> Answer:
    """Post the login form from ``server``'s own page and describe the answer, not following it."""
    response = http.post(
        server.url + "/login",
        data={"username": username, "password": password},
        # The form's origin is the server it was served by (instances behind one name share it).
        headers={"Origin": server.url},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    target = urlsplit(response.headers.get("Location", ""))
    return Answer(
        status=response.status_code,
        path=target.path,
        query=parse_qs(target.query),
        retry_after=response.headers.get("Retry-After"),
        body=response.text if response.status_code >= 400 else "",
    )


def browser(server: LiveServer, agent: str) -> requests.Session:
    """Return a same-site browser session that names itself ``agent`` in the event log."""
    http = server.session()
    http.headers["User-Agent"] = agent
    return http


def add_users(instance: Path, *names: str) -> None:
    """Create users with GOOD_PASSWORD in one `users import` run (real argon2 costs)."""
    data = {name: {"password": GOOD_PASSWORD} for name in names}
    file = instance.parent / "users.json"
    file.write_text(json.dumps(data), encoding="utf-8")
    result = run_yupnope(instance, "users", "import", str(file), cheap=False)
    assert result.returncode == 0, result.stderr


def query(instance: Path, sql: str, *parameters: object) -> list[tuple[Any, ...]]:
    """Return the rows of one read of the instance's database."""
    with closing(sqlite3.connect(instance / "yupnope.db", timeout=10)) as db:
        return db.execute(sql, parameters).fetchall()


def counter(instance: Path, scope: str, key: str) -> int:
    """Return a throttle counter's count (0 when it has no row)."""
    rows = query(
        instance, "SELECT count FROM throttle_counters WHERE scope = ? AND key = ?", scope, key
    )
    return int(rows[0][0]) if rows else 0


def events(instance: Path, kind: str, agent: str | None = None) -> int:
    """Return how many login events of ``kind`` (from clients naming themselves ``agent``)."""
    sql = "SELECT count(*) FROM login_events WHERE kind = ?"
    if agent is None:
        return int(query(instance, sql, kind)[0][0])
    rows = query(instance, sql + " AND user_agent = ?", kind, agent)
    return int(rows[0][0])


def fire(count: int, attempt: Callable[[int], Answer], threads: int) -> list[Answer]:
    """Run ``attempt(0..count-1)`` on ``threads`` threads, released together; return answers."""
    start = threading.Barrier(min(count, threads), timeout=30)

    def run(index: int) -> Answer:
        if index < threads:
            start.wait()
        return attempt(index)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(run, range(count)))


@pytest.mark.parametrize("slots", [0, 1], ids=["one-slot-per-cpu", "one-slot-busy-refunded"])
def test_concurrent_failures_on_one_account_lose_no_count(
    live_server_factory: Callable[..., LiveServer], slots: int
) -> None:
    started = time.monotonic()
    # Nothing may block, so every admitted attempt is checked: no free-failure limit, and the
    # address and account budgets (50 and 100 by default) above the 100 attempts from here.
    # With one hashing slot per worker, the gate refuses most of the burst (503 Busy), and each
    # refusal must be given back to every counter.
    server = live_server_factory(
        workers=2,
        throttle_free_failures=1000,
        throttle_address_limit=1000,
        throttle_account_limit=1000,
        hash_concurrency=slots,
    )
    add_users(server.instance, "alice")

    def guess(index: int) -> Answer:
        with browser(server, "attacker") as http:
            return post_login(http, server, "alice", f"wrong guess {index}")

    answers = fire(100, guess, threads=100)

    checked = sum(answer.checked for answer in answers)
    busy = sum(answer.busy for answer in answers)
    assert checked + busy == 100, [a for a in answers if not (a.checked or a.busy)][:3]
    assert checked > 0
    if slots == 1:
        assert busy > 0, "the gate refused nothing: the refunds went untested"
    # Each admitted attempt was counted once, and each one the gate refused was given back.
    assert counter(server.instance, policy.ACCOUNT, ALICE_KEY) == checked
    assert counter(server.instance, policy.ADDRESS, "127.0.0.1") == checked
    assert counter(server.instance, policy.GLOBAL, "*") == checked
    assert events(server.instance, "login_failed", "attacker") == checked
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("instances", [1, 2], ids=["two-workers", "two-instances"])
def test_guessing_one_account_checks_only_the_free_failures(
    live_server_factory: Callable[..., LiveServer], instance: Path, instances: int
) -> None:
    started = time.monotonic()
    # The default five free failures; the first wait is a minute instead of a second, so the
    # whole attack lands inside it even on a slow machine ("fired quickly").
    settings = {"throttle_base_delay_seconds": 60, **NO_BUSY}
    servers = [live_server_factory(workers=2, **settings) for _ in range(instances)]
    add_users(instance, "alice")

    # The owner's browser logged in before the attack, so it holds a device cookie.
    owner = browser(servers[0], "owner")
    assert post_login(owner, servers[0], "alice", GOOD_PASSWORD).logged_in
    assert "yupnope_device" in owner.cookies
    out = owner.post(servers[0].url + "/logout", allow_redirects=False, timeout=TIMEOUT)
    assert out.status_code == 303
    assert "yupnope_device" in owner.cookies

    def guess(index: int) -> Answer:
        # Spread over the instances in turn, and over each one's two workers by concurrency.
        server = servers[index % len(servers)]
        with browser(server, "attacker") as http:
            return post_login(http, server, "alice", f"wrong guess {index}")

    first = fire(15, guess, threads=15)
    with ThreadPoolExecutor(15) as pool:
        rest = pool.map(guess, range(15, 30))
        # During the attack, on the last instance: the owner's browser gets in, while the
        # right password from a browser without the device cookie waits like the attacker.
        during = post_login(owner, servers[-1], "alice", GOOD_PASSWORD)
        with browser(servers[-1], "stranger") as stranger:
            refused = post_login(stranger, servers[-1], "alice", GOOD_PASSWORD)
        answers = first + list(rest)

    assert during.logged_in
    assert owner.get(servers[-1].url + "/yup", timeout=TIMEOUT).status_code == 200
    assert refused.throttled, refused
    assert sum(answer.checked for answer in answers) == 5
    assert sum(answer.throttled for answer in answers) == 25
    # Refused without hashing: only five failures were recorded, however many servers.
    assert events(instance, "login_failed") == 5
    # A refused attempt is logged once per counter and window, however many are refused: the
    # first refusal by the account's wait is one of the attacker's, and the rest add no row.
    assert events(instance, "login_throttled") == 1
    assert events(instance, "login_throttled", "attacker") == 1
    assert events(instance, "login", "owner") == 2
    assert counter(instance, policy.ACCOUNT, ALICE_KEY) == 5
    assert time.monotonic() - started < 30


def test_credential_stuffing_from_one_address_is_throttled(
    live_server_factory: Callable[..., LiveServer], instance: Path
) -> None:
    started = time.monotonic()
    limit = 20
    server = live_server_factory(workers=2, throttle_address_limit=limit, **NO_BUSY)
    names = [f"user{index:03}" for index in range(200)]
    # Mostly names of no account, a few that exist, and bob, who is not attacked.
    add_users(instance, "bob", names[0], names[99], names[199])

    owner = browser(server, "bob")
    assert post_login(owner, server, "bob", GOOD_PASSWORD).logged_in

    def stuff(index: int) -> Answer:
        with browser(server, "attacker") as http:
            return post_login(http, server, names[index], f"leaked password {index}")

    answers = fire(len(names), stuff, threads=8)

    assert sum(answer.checked for answer in answers) == limit
    assert sum(answer.throttled for answer in answers) == len(names) - limit
    assert events(instance, "login_failed", "attacker") == limit
    # The address's refusals make one row in its window, not one per refused attempt.
    assert events(instance, "login_throttled", "attacker") == 1
    assert counter(instance, policy.ADDRESS, "127.0.0.1") == limit

    # The address's budget is shared by every account, by design: an owner behind the same
    # address (a shared NAT, an office) is throttled too. That is the price of stopping the
    # attack; a browser that logged in to the account before keeps getting in by its device
    # cookie, which is counted on its own budget.
    with browser(server, "bob elsewhere") as fresh:
        assert post_login(fresh, server, "bob", GOOD_PASSWORD).throttled
    assert post_login(owner, server, "bob", GOOD_PASSWORD).logged_in
    assert time.monotonic() - started < 20


def test_spoofed_forwarded_headers_move_no_throttle(
    live_server_factory: Callable[..., LiveServer], instance: Path
) -> None:
    limit = 5
    # No TRUSTED_PROXIES: the server faces clients directly, whatever they claim.
    server = live_server_factory(workers=2, throttle_address_limit=limit, **NO_BUSY)
    spoofed = random.Random(20)

    def fake_address() -> str:
        return ".".join(str(spoofed.randrange(1, 255)) for _ in range(4))

    answers = []
    for index in range(20):
        with browser(server, "attacker") as http:
            address = fake_address()
            http.headers["X-Forwarded-For"] = f"{address}, {fake_address()}"
            http.headers["X-Real-IP"] = address
            http.headers["Forwarded"] = f"for={address}"
            # A different name each time, so only the address's budget can bite.
            answers.append(post_login(http, server, f"nobody{index}", "wrong password"))

    assert [answer.checked for answer in answers] == [True] * limit + [False] * (20 - limit)
    assert all(answer.throttled for answer in answers[limit:])
    addresses = query(instance, "SELECT DISTINCT client_address FROM login_events")
    assert addresses == [("127.0.0.1",)]
    counted = query(instance, "SELECT key, count FROM throttle_counters WHERE scope = 'address'")
    assert counted == [("127.0.0.1", limit)]
    # The operator is told the header was ignored, once per worker rather than per request.
    warnings = server.log.read_text().count("TRUSTED_PROXIES is empty")
    assert 1 <= warnings <= 2, server.log.read_text()


def process_group_rss(group: int) -> tuple[int, int]:
    """Return the summed VmRSS in bytes of the processes in ``group``, and how many there are."""
    total = processes = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name is in parentheses and may hold spaces: split after its end.
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) != group:
                continue
            status = (stat.parent / "status").read_text()
        except (OSError, ValueError, IndexError):
            continue  # the process ended while it was read
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
                processes += 1
    return total, processes


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux's /proc")
def test_a_login_flood_keeps_memory_bounded_and_pages_answering(
    live_server_factory: Callable[..., LiveServer], instance: Path
) -> None:
    started = time.monotonic()
    workers = 2
    # Budgets above the flood, so every attempt reaches the hashing gate: the flood is what a
    # botnet of many addresses would send, and the gate alone has to hold the memory.
    server = live_server_factory(
        workers=workers, throttle_address_limit=100_000, throttle_global_limit=100_000
    )
    assert server.process is not None
    add_users(instance, "alice")
    owner = browser(server, "owner")
    assert post_login(owner, server, "alice", GOOD_PASSWORD).logged_in
    assert owner.get(server.url + "/yup", timeout=TIMEOUT).status_code == 200

    time.sleep(0.5)
    # `yupnope serve` runs in a session of its own: its process group is the master and workers.
    group = server.process.pid
    rest, processes = process_group_rss(group)
    assert processes == 1 + workers
    # The bound: peak <= rest + workers × slots × 25 MiB. Each worker runs at most `slots`
    # argon2 computations at once (HASH_CONCURRENCY's default: one per CPU), each holding its
    # 19 MiB, on the gate's own threads, so at most `slots` freed buffers stay in its malloc
    # arenas afterwards; 25 MiB per slot leaves room for what the requests themselves cost.
    slots = os.cpu_count() or 1
    bound = rest + workers * slots * 25 * 1024 * 1024

    done = threading.Event()
    peak = rest
    pages: list[tuple[int, float]] = []
    problems: list[str] = []

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process_group_rss(group)[0])
            time.sleep(0.02)

    def browse() -> None:
        while not done.is_set():
            began = time.monotonic()
            try:
                status = owner.get(server.url + "/yup", allow_redirects=False, timeout=(5, 5))
                pages.append((status.status_code, time.monotonic() - began))
            except requests.RequestException as exc:
                problems.append(f"/yup: {exc!r}")
            time.sleep(0.05)

    def flood(thread: int) -> list[Answer]:
        with browser(server, "flood") as http:
            return [
                post_login(http, server, f"bot{thread}x{n}", "wrong password") for n in range(5)
            ]

    watchers = [threading.Thread(target=sample), threading.Thread(target=browse)]
    for watcher in watchers:
        watcher.start()
    try:
        flooded = time.monotonic()
        with ThreadPoolExecutor(100) as pool:
            answers = [answer for batch in pool.map(flood, range(100)) for answer in batch]
        flooded = time.monotonic() - flooded
    finally:
        done.set()
        for watcher in watchers:
            watcher.join(timeout=10)

    assert len(answers) == 500
    # A wrong password, a throttle or the gate's 503 Busy: never another 5xx, and no database
    # outage either (its 503 says so instead of "busy").
    wrong = [a for a in answers if not (a.checked or a.throttled or a.busy)]
    assert not wrong, wrong[:3]
    assert not problems, problems[:3]
    assert pages, "no page was fetched during the flood"
    assert all(status == 200 for status, _ in pages), pages
    assert max(seconds for _, seconds in pages) < 5, pages
    mib = 1024 * 1024
    assert peak <= bound, (
        f"peak {peak / mib:.0f} MiB > rest {rest / mib:.0f} MiB + {workers} workers × {slots} "
        f"slots × 25 MiB"
    )
    print(
        f"flood {flooded:.1f}s: {sum(a.checked for a in answers)} checked, "
        f"{sum(a.busy for a in answers)} busy, {len(pages)} pages "
        f"(slowest {max(s for _, s in pages):.2f}s), RSS {rest / mib:.0f} → {peak / mib:.0f} MiB"
    )
    assert time.monotonic() - started < 60
