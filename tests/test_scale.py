"""Test scaling out: two `yupnope serve` instances on one PostgreSQL, and PostgreSQL going away.

The two instances share an instance folder (so the secret key file) and a PostgreSQL schema, and
nothing else: what one of them does, the other can only know through the database. A requests
session stands for a browser behind a load balancer that sends each request to either of them
(cookies are not bound to a port, RFC 6265 8.5).
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from helpers import (
    COOKIE,
    GOOD_PASSWORD,
    POSTGRES_URL,
    TIMEOUT,
    LiveServer,
    free_port,
    path_of,
    require_service,
)

pytestmark = pytest.mark.live


Pair = tuple[LiveServer, LiveServer]


@pytest.fixture
def start_pair(
    live_server_factory: Callable[..., LiveServer], postgres_url: str
) -> Iterator[Callable[..., Pair]]:
    """Return a function that starts two instances on one PostgreSQL schema, with settings."""
    started: list[LiveServer] = []

    def start(**settings: object) -> Pair:
        # Both at once, as a deployment boots them: they migrate the empty schema and create
        # the secret key file they share at the same moment.
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(
                lambda _: live_server_factory(workers=2, database_url=postgres_url, **settings),
                range(2),
            )
        started.extend((first, second))
        return first, second

    yield start
    # Stopped together: each takes seconds to let its kept-alive connections go.
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(LiveServer.stop, started))


def post(http: requests.Session, server: LiveServer, path: str, **form: str) -> requests.Response:
    """Post a form to ``server`` as a page of that server would, without following redirects."""
    return http.post(
        server.url + path,
        data=form,
        headers={"Origin": server.url},
        allow_redirects=False,
        timeout=TIMEOUT,
    )


def token_of(http: requests.Session) -> str:
    """Return the session token ``http`` holds."""
    token = http.cookies.get(COOKIE)
    assert token, "no session cookie"
    return token


def with_cookie(token: str) -> requests.Session:
    """Return a new browser that holds only the session cookie ``token``."""
    http = requests.Session()
    http.cookies.set(COOKIE, token)
    return http


def yup(http: requests.Session, server: LiveServer) -> requests.Response:
    """Return the answer to GET /yup, not followed."""
    return http.get(server.url + "/yup", allow_redirects=False, timeout=TIMEOUT)


def assert_logged_in(http: requests.Session, server: LiveServer, name: str) -> None:
    """Assert that ``http`` sees ``name``'s /yup page on ``server``."""
    page = yup(http, server)
    assert page.status_code == 200, (server.url, page.status_code, page.text[:300])
    assert name in page.text


def assert_anonymous(http: requests.Session, server: LiveServer) -> None:
    """Assert that ``http`` is sent to the login form by ``server``."""
    page = yup(http, server)
    assert page.status_code in (302, 303), (server.url, page.status_code)
    assert path_of(page) == "/"


def user_names(database_url: str) -> list[str]:
    """Return the names of the accounts in the database at ``database_url``, in order."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT username FROM users ORDER BY username"))
            return [name for (name,) in rows]
    finally:
        engine.dispose()


# Two instances, one database.


def test_a_session_made_on_one_instance_works_on_the_other_until_logout(
    start_pair: Callable[..., Pair],
) -> None:
    a, b = start_pair()
    http = requests.Session()
    signed_up = post(http, a, "/signup", username="alice", password=GOOD_PASSWORD)
    assert signed_up.status_code == 303
    assert path_of(signed_up) == "/yup"
    token = token_of(http)
    assert_logged_in(http, a, "alice")
    assert_logged_in(http, b, "alice")

    out = post(http, b, "/logout")
    assert out.status_code == 303
    assert path_of(out) == "/"
    # The old cookie, kept by someone, is worthless on the instance that did not see the logout.
    assert_anonymous(with_cookie(token), a)
    assert_anonymous(with_cookie(token), b)

    # A login on B, with the password hashed on A, is a session on A as well.
    again = requests.Session()
    login = post(again, b, "/login", username="alice", password=GOOD_PASSWORD)
    assert path_of(login) == "/yup"
    assert token_of(again) != token
    assert_logged_in(again, a, "alice")


def test_log_out_everywhere_reaches_both_instances(start_pair: Callable[..., Pair]) -> None:
    a, b = start_pair()
    first = requests.Session()
    assert path_of(post(first, a, "/signup", username="alice", password=GOOD_PASSWORD)) == "/yup"
    browsers = [first]
    for server in (b, a):
        http = requests.Session()
        assert path_of(post(http, server, "/login", username="alice", password=GOOD_PASSWORD)) == (
            "/yup"
        )
        browsers.append(http)
    tokens = [token_of(http) for http in browsers]
    assert len(set(tokens)) == 3
    for token in tokens:
        assert_logged_in(with_cookie(token), a, "alice")
        assert_logged_in(with_cookie(token), b, "alice")

    out = post(browsers[1], b, "/account/logout-everywhere")
    assert out.status_code == 303
    assert path_of(out) == "/"
    for token in tokens:
        assert_anonymous(with_cookie(token), a)
        assert_anonymous(with_cookie(token), b)


def test_failed_logins_on_both_instances_count_together(start_pair: Callable[..., Pair]) -> None:
    # The default five free failures; a first wait of a minute instead of a second, so that a
    # slow machine cannot let the wait run out between two attempts and hide a lost count.
    a, b = start_pair(throttle_base_delay_seconds=60)
    owner = requests.Session()
    assert path_of(post(owner, a, "/signup", username="alice", password=GOOD_PASSWORD)) == "/yup"
    # A login gives the owner's browser a device cookie, signed with A's copy of the secret key.
    assert path_of(post(owner, a, "/login", username="alice", password=GOOD_PASSWORD)) == "/yup"

    guesser = requests.Session()
    for attempt, server in enumerate([a, b, a, b, a], 1):
        answer = post(
            guesser, server, "/login", username="alice", password=f"guess number {attempt}"
        )
        # Checked and wrong: plain /nope, no wait. Neither instance has seen more than three.
        assert answer.status_code == 303, attempt
        target = urlsplit(answer.headers["Location"])
        assert (target.path, target.query) == ("/nope", ""), attempt

    # The fifth failure set a wait, and both instances know it: the next attempts are refused
    # unchecked, the right password too.
    for server, password in ((b, "guess number 6"), (a, GOOD_PASSWORD)):
        answer = post(guesser, server, "/login", username="alice", password=password)
        assert answer.status_code == 303, server.url
        assert path_of(answer) == "/nope"
        (wait,) = parse_qs(urlsplit(answer.headers["Location"]).query)["wait"]
        assert 0 < int(wait) <= 60
        assert answer.headers["Retry-After"] == wait
    assert COOKIE not in guesser.cookies

    # The owner's browser is counted on its own budget on B as well: B reads A's device cookie.
    assert path_of(post(owner, b, "/login", username="alice", password=GOOD_PASSWORD)) == "/yup"
    assert_logged_in(owner, a, "alice")


def test_racing_sign_ups_of_one_name_on_both_instances_make_one_account(
    start_pair: Callable[..., Pair], postgres_url: str
) -> None:
    a, b = start_pair()
    # Eight spellings of one name, sent to the two instances in turn at the same moment.
    spellings = ["racer", "Racer", "RACER", "rAcer", "raCer", "racEr", "raceR", "RaCeR"]
    start = threading.Barrier(len(spellings), timeout=10)

    def sign_up(index: int) -> tuple[str, int, requests.Session]:
        server = (a, b)[index % 2]
        http = requests.Session()
        start.wait()
        answer = post(http, server, "/signup", username=spellings[index], password=GOOD_PASSWORD)
        return spellings[index], answer.status_code, http

    with ThreadPoolExecutor(len(spellings)) as pool:
        results = list(pool.map(sign_up, range(len(spellings))))

    statuses = sorted(status for _, status, _ in results)
    assert statuses == [303] + [409] * (len(spellings) - 1), results
    winner, _, http = next(result for result in results if result[1] == 303)
    assert user_names(postgres_url) == [winner]
    assert_logged_in(http, a, winner)
    assert_logged_in(http, b, winner)


# Faults: the database too slow, then gone. Whatever happens, a page says so (503), never a 500.


def assert_outage_page(response: requests.Response) -> None:
    """Assert ``response`` is the page that says the database is down, and nothing more."""
    assert response.status_code == 503, (response.status_code, response.text[:500])
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Service unavailable" in response.text
    assert "not answering" in response.text
    assert response.headers.get("Retry-After", "").isdigit()
    # Nothing of the machinery shows: no traceback, no driver, no exception name.
    for leak in ("Traceback", "OperationalError", "TimeoutError", "psycopg", "sqlalchemy", "Pool"):
        assert leak.lower() not in response.text.lower(), leak
    assert COOKIE not in response.cookies


def assert_log_is_clean(server: LiveServer) -> None:
    """Assert the server logged each refusal in one line, and no traceback."""
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]
    refusals = [line for line in log.splitlines() if "database unavailable" in line]
    assert refusals, log[-4000:]
    # Each refusal is one line: the line after it is a log line of its own, with its time.
    lines = log.splitlines()
    for index, line in enumerate(lines[:-1]):
        if "database unavailable" in line:
            following = lines[index + 1]
            assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", following), following


def test_a_database_too_slow_to_answer_is_a_503(
    live_server_factory: Callable[..., LiveServer], postgres_url: str
) -> None:
    # One worker with three connections (one kept, two more at need), each waited for 1 s, and
    # statements cancelled after 2 s: eight requests on a locked table meet both limits.
    server = live_server_factory(
        workers=1,
        database_url=postgres_url,
        database_pool_size=1,
        database_timeout_seconds=1,
        database_statement_timeout_ms=2000,
    )
    alice = requests.Session()
    assert path_of(post(alice, server, "/signup", username="alice", password=GOOD_PASSWORD)) == (
        "/yup"
    )
    token = token_of(alice)

    locker = create_engine(postgres_url, poolclass=NullPool)
    try:
        with locker.connect() as connection:
            connection.execute(text("SET lock_timeout = '10s'"))
            connection.execute(text("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE"))
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda _: yup(with_cookie(token), server), range(8)))
            connection.rollback()
    finally:
        locker.dispose()
    for answer in answers:
        assert_outage_page(answer)
    assert_logged_in(with_cookie(token), server, "alice")
    assert_log_is_clean(server)


#: Seconds the server's connections are killed for, again and again, under load.
KILLING_SECONDS = 3


def test_connections_killed_under_load_never_make_a_500(
    live_server_factory: Callable[..., LiveServer], postgres_url: str
) -> None:
    # The server's connections carry a name of their own, so only they are killed: the rest of
    # the machine's PostgreSQL is left alone.
    name = f"yupnope_kill_{secrets.token_hex(4)}"
    server = live_server_factory(workers=2, database_url=f"{postgres_url}&application_name={name}")
    alice = requests.Session()
    assert path_of(post(alice, server, "/signup", username="alice", password=GOOD_PASSWORD)) == (
        "/yup"
    )
    token = token_of(alice)

    statuses: Counter[int] = Counter()
    refusals: list[requests.Response] = []
    done = threading.Event()

    def browse() -> None:
        while not done.is_set():
            answer = yup(with_cookie(token), server)
            statuses[answer.status_code] += 1
            if answer.status_code != 200:
                refusals.append(answer)

    killer = create_engine(POSTGRES_URL, poolclass=NullPool)
    kills = 0
    try:
        with ThreadPoolExecutor(6) as pool:
            browsers = [pool.submit(browse) for _ in range(6)]
            try:
                deadline = time.monotonic() + KILLING_SECONDS
                while time.monotonic() < deadline:
                    with killer.begin() as connection:
                        kills += connection.execute(
                            text(
                                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                " WHERE application_name = :name"
                            ),
                            {"name": name},
                        ).scalar_one()
                    done.wait(0.02)
            finally:
                done.set()
            for browser in browsers:
                browser.result(timeout=sum(TIMEOUT))
    finally:
        killer.dispose()

    assert kills > 0
    # A page, or the outage page for a request whose connection died under it: never a 500.
    assert set(statuses) <= {200, 503}, statuses
    for answer in refusals:
        assert_outage_page(answer)
    # And with nothing killing them any more, the very next requests find new connections.
    assert_logged_in(with_cookie(token), server, "alice")
    assert "Traceback" not in server.log.read_text(errors="replace")


# PostgreSQL stopped while serving, then started again.
#
# Never the machine's own PostgreSQL, which others use: a cluster of the test's own, made with
# initdb in a temporary folder and served on a free port, is stopped and started instead.

#: Seconds the cluster may take to be made, to stop, or to start and accept connections.
POSTGRES_DEADLINE = 30

#: Seconds the server may take to notice the outage, or the recovery, by itself.
NOTICE_DEADLINE = 15

#: Requests of each kind sent during the outage, each on a new connection, to reach both workers.
ROUNDS = 3


def postgres_programs() -> Path | None:
    """Return the folder that holds the PostgreSQL server's initdb and pg_ctl, or None."""
    folders: list[Path] = []
    initdb = shutil.which("initdb")
    if initdb is not None:
        folders.append(Path(initdb).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        done = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=False
        )
        folders.append(Path(done.stdout.strip()))
    # Debian and Ubuntu put the server's programs on no PATH, a folder per version: newest first.
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    folders += sorted(versions, key=lambda path: [int(n) for n in re.findall(r"\d+", str(path))])
    folders.reverse()
    for folder in folders:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


class PrivateCluster:
    """A PostgreSQL cluster of the test's own in ``folder``, on a free port, trusting all local."""

    def __init__(self, programs: Path, folder: Path, owner: pwd.struct_passwd | None) -> None:
        self.programs = programs
        self.folder = folder
        self.data = folder / "data"
        self.log = folder / "server.log"
        self.owner = owner
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run one of the server's programs as the cluster's owner, bounded in time."""
        # PostgreSQL refuses to run as root: as root (CI), the programs run as the owner.
        as_owner: dict[str, Any] = (
            {"user": self.owner.pw_uid, "group": self.owner.pw_gid, "extra_groups": []}
            if self.owner is not None
            else {}
        )
        return subprocess.run(
            [str(self.programs / program), *args],
            cwd=self.folder,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            # Beyond pg_ctl's own -t, so pg_ctl is the one that gives up and says why.
            timeout=POSTGRES_DEADLINE + 10,
            check=False,
            **as_owner,
        )

    def create(self) -> None:
        """Make the cluster, listening on 127.0.0.1 and on a socket in its own folder only."""
        done = self.run(
            "initdb",
            *("-D", str(self.data), "-U", "postgres", "--auth=trust"),
            # The C locale exists everywhere; no fsync, since the cluster is thrown away.
            *("--locale=C", "--encoding=UTF8", "--no-sync", "--no-instructions"),
        )
        assert done.returncode == 0, done.stderr
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.folder}'",
            "fsync": "off",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def pg_ctl(self, action: str, *options: str) -> subprocess.CompletedProcess[str]:
        """Run ``pg_ctl ACTION`` on the cluster and wait for it to finish, bounded in time."""
        where = ("-D", str(self.data), "-l", str(self.log))
        return self.run("pg_ctl", *where, "-w", "-t", str(POSTGRES_DEADLINE), *options, action)

    def start(self) -> None:
        """Start the cluster and wait until it accepts connections."""
        done = self.pg_ctl("start")
        log = self.log.read_text(errors="replace") if self.log.exists() else ""
        assert done.returncode == 0, done.stderr + log[-2000:]
        assert accepts_connections(self.url, POSTGRES_DEADLINE), "PostgreSQL did not come up"

    def stop(self) -> None:
        """Stop the cluster, ending every connection at once, as an outage would."""
        done = self.pg_ctl("stop", "-m", "fast")
        assert done.returncode == 0, done.stderr

    def shut_down(self) -> None:
        """Stop the cluster if it runs, in bounded time, whatever state the test left it in."""
        # immediate is SIGQUIT, which no backend waits out: the second try when fast hangs.
        for mode in ("fast", "immediate"):
            if not (self.data / "postmaster.pid").exists():
                return
            try:
                self.pg_ctl("stop", "-m", mode)
            except subprocess.TimeoutExpired:
                pass


def accepts_connections(url: str, seconds: float) -> bool:
    """Return whether the database at ``url`` accepts a connection within ``seconds``."""
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 2})
    deadline = time.monotonic() + seconds
    try:
        while True:
            try:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
                return True
            except OperationalError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.2)
    finally:
        engine.dispose()


@pytest.fixture
def private_postgres() -> Iterator[PrivateCluster]:
    """Return a started PostgreSQL cluster of the test's own; it stops and goes at the end."""
    programs = postgres_programs()
    if programs is None:
        reason = "no initdb to make a cluster of the test's own (apt-get install postgresql)"
        require_service("PostgreSQL", False, reason)
        raise AssertionError("unreachable")
    owner = None
    if os.geteuid() == 0:
        owner = next((user for user in pwd.getpwall() if user.pw_name == "postgres"), None)
        require_service(
            "PostgreSQL", owner is not None, "running as root, with no postgres user to run it as"
        )
    # Not pytest's tmp_path, which only the user running the tests may enter: the cluster's owner
    # must. The system's temporary folder lets everyone through; this folder is the owner's alone.
    folder = Path(tempfile.mkdtemp(prefix="yupnope-pg-"))
    cluster = PrivateCluster(programs, folder, owner)
    try:
        if owner is not None:
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        cluster.create()
        cluster.start()
        yield cluster
    finally:
        try:
            cluster.shut_down()
        finally:
            shutil.rmtree(folder)


def wait_for(check: Callable[[], bool], seconds: float) -> bool:
    """Poll ``check`` until it is true or ``seconds`` have passed; return whether it became so."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def health(server: LiveServer) -> int:
    """Return the status of /healthz on a new connection, or 0 when nothing answers."""
    try:
        return requests.get(server.url + "/healthz", timeout=TIMEOUT).status_code
    except requests.RequestException:
        return 0


@contextmanager
def traffic(server: LiveServer, token: str, name: str) -> Iterator[Counter[int]]:
    """Keep a browser busy on ``server`` in the background, counting the statuses it gets.

    It shows ``token``'s /yup page and logs in as ``name``, each on a new connection, so the
    stop and the start of the database also meet requests half-way through.
    """
    statuses: Counter[int] = Counter()
    done = threading.Event()

    def browse() -> None:
        while not done.is_set():
            try:
                statuses[yup(with_cookie(token), server).status_code] += 1
                login = post(
                    requests.Session(), server, "/login", username=name, password=GOOD_PASSWORD
                )
                statuses[login.status_code] += 1
            except requests.RequestException:
                # No answer at all is counted too, as 0: it is not one of the allowed ones.
                statuses[0] += 1
                done.wait(0.1)

    worker = threading.Thread(target=browse, daemon=True)
    worker.start()
    try:
        yield statuses
    finally:
        done.set()
        worker.join(timeout=sum(TIMEOUT) * 2)


def stopped_and_started(server: LiveServer, cluster: PrivateCluster, token: str) -> None:
    """Stop PostgreSQL under ``server``, check every answer, start it, check the recovery."""
    cluster.stop()
    assert wait_for(lambda: health(server) == 503, NOTICE_DEADLINE)
    for _ in range(ROUNDS):
        # A new browser each time, so a new connection, which either worker may take.
        health_answer = requests.get(server.url + "/healthz", timeout=TIMEOUT)
        assert health_answer.status_code == 503
        assert health_answer.text == "database unavailable\n"
        assert_outage_page(yup(with_cookie(token), server))
        assert_outage_page(with_cookie(token).get(server.url + "/account", timeout=TIMEOUT))
        assert_outage_page(post(with_cookie(token), server, "/logout"))
        # Logins and sign-ups fail closed: no session cookie, no way to /yup.
        for path, name in (("/login", "bob"), ("/signup", "carol")):
            http = requests.Session()
            answer = post(http, server, path, username=name, password=GOOD_PASSWORD)
            assert_outage_page(answer)
            assert "Location" not in answer.headers
            assert COOKIE not in http.cookies
    # The form needs no database: it is still shown.
    assert requests.get(server.url + "/", timeout=TIMEOUT).status_code == 200

    cluster.start()
    # The same server processes, not restarted, find the database again by themselves.
    assert wait_for(lambda: health(server) == 200, NOTICE_DEADLINE)
    for _ in range(ROUNDS):
        assert health(server) == 200
        # Alice's session outlived the outage, and the logout refused during it ended nothing.
        assert_logged_in(with_cookie(token), server, "alice")
        http = requests.Session()
        login = post(http, server, "/login", username="bob", password=GOOD_PASSWORD)
        assert path_of(login) == "/yup"
        assert_logged_in(http, server, "bob")


def test_postgres_stopped_is_a_clear_503_and_the_service_heals_itself(
    live_server_factory: Callable[..., LiveServer], private_postgres: PrivateCluster
) -> None:
    url = private_postgres.url
    # Hashing slots for the two logins that may overlap here (the test's and the background
    # browser's), so none is refused as busy on a one-CPU machine.
    server = live_server_factory(workers=2, database_url=url, hash_concurrency=2)
    alice = requests.Session()
    assert path_of(post(alice, server, "/signup", username="alice", password=GOOD_PASSWORD)) == (
        "/yup"
    )
    token = token_of(alice)
    bob = post(requests.Session(), server, "/signup", username="bob", password=GOOD_PASSWORD)
    assert path_of(bob) == "/yup"

    with traffic(server, token, "bob") as seen:
        stopped_and_started(server, private_postgres, token)
    # Through the stop and the start, every answer was a page, a redirect or a 503: never a 500.
    assert set(seen) <= {200, 303, 503}, seen
    assert seen[503] > 0, seen

    # Carol's refused sign-ups left no account behind.
    assert user_names(url) == ["alice", "bob"]
    assert_log_is_clean(server)
