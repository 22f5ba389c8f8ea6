"""Test scaling out: two `yupnope serve` instances on one PostgreSQL, and PostgreSQL going away.

The two instances share an instance folder (so the secret key file) and a PostgreSQL schema, and
nothing else: what one of them does, the other can only know through the database. A requests
session stands for a browser behind a load balancer that sends each request to either of them
(cookies are not bound to a port, RFC 6265 8.5).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateSchema, DropSchema

from conftest import GOOD_PASSWORD, POSTGRES_URL, LiveServer, require_service

pytestmark = pytest.mark.live

#: Seconds any one request may take: (connect, read). Real argon2 costs tens of milliseconds.
TIMEOUT = (2, 15)

#: Name of the session cookie (config.SESSION_COOKIE_NAME's default).
COOKIE = "yupnope_session"

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
                lambda _: live_server_factory(workers=2, DATABASE_URL=postgres_url, **settings),
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


def path_of(response: requests.Response) -> str:
    """Return the path a redirect points to."""
    assert response.is_redirect, (response.status_code, response.text[:300])
    return urlsplit(response.headers["Location"]).path


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
    a, b = start_pair(THROTTLE_BASE_DELAY_SECONDS=60)
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
    # Each refusal is one line: nothing after it but access-log lines and gunicorn's own.
    lines = log.splitlines()
    for index, line in enumerate(lines[:-1]):
        if "database unavailable" in line:
            following = lines[index + 1]
            assert following.startswith(("127.0.0.1 - ", "[", "database unavailable")), following


def test_a_database_too_slow_to_answer_is_a_503(
    live_server_factory: Callable[..., LiveServer], postgres_url: str
) -> None:
    # One worker with three connections (one kept, two more at need), each waited for 1 s, and
    # statements cancelled after 2 s: eight requests on a locked table meet both limits.
    server = live_server_factory(
        workers=1,
        DATABASE_URL=postgres_url,
        DATABASE_POOL_SIZE=1,
        DATABASE_TIMEOUT_SECONDS=1,
        DATABASE_STATEMENT_TIMEOUT_MS=2000,
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
    server = live_server_factory(workers=2, DATABASE_URL=f"{postgres_url}&application_name={name}")
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
# This stops the machine's real PostgreSQL cluster, which every other user of it notices: it runs
# only where pg_ctlcluster controls the cluster the tests use, and whatever happens, its teardown
# starts the cluster again and waits until it accepts connections.

#: Seconds the cluster may take to stop, to start, or to accept connections once started.
POSTGRES_DEADLINE = 30

#: Seconds the server may take to notice the outage, or the recovery, by itself.
NOTICE_DEADLINE = 15

#: Requests of each kind sent during the outage, each on a new connection, to reach both workers.
ROUNDS = 3


class Cluster:
    """Stop and start a local PostgreSQL cluster with pg_ctlcluster."""

    def __init__(self, command: str, version: str, name: str) -> None:
        self.command = command
        self.version = version
        self.name = name

    def run(self, action: str, *options: str) -> subprocess.CompletedProcess[str]:
        """Run ``pg_ctlcluster VERSION NAME ACTION`` without systemd, bounded in time."""
        return subprocess.run(
            [self.command, "--skip-systemctl-redirect", self.version, self.name, action, *options],
            capture_output=True,
            text=True,
            timeout=POSTGRES_DEADLINE,
            check=False,
        )

    def stop(self) -> None:
        """Stop the cluster, ending every connection at once."""
        done = self.run("stop", "-m", "fast")
        assert done.returncode == 0, done.stderr

    def start(self) -> None:
        """Start the cluster and wait until the test database accepts connections."""
        done = self.run("start")
        # 2 is "already running": a stop that never happened, which is what is wanted here.
        assert done.returncode in (0, 2), done.stderr
        assert accepts_connections(POSTGRES_DEADLINE), "PostgreSQL did not come back"


def accepts_connections(seconds: float) -> bool:
    """Return whether the test database accepts a connection within ``seconds``."""
    engine = create_engine(POSTGRES_URL, poolclass=NullPool, connect_args={"connect_timeout": 2})
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


def local_cluster() -> tuple[Cluster | None, str]:
    """Return the cluster named main that serves POSTGRES_URL, or None and why not."""
    command = shutil.which("pg_ctlcluster")
    if command is None or not os.path.isdir("/etc/postgresql"):
        return None, "it is not installed"
    url = make_url(POSTGRES_URL)
    if url.host not in (None, "", "localhost", "127.0.0.1", "::1"):
        return None, f"the test database is on {url.host}, not on this machine"
    port = str(url.port or 5432)
    for version in sorted(os.listdir("/etc/postgresql")):
        conf = Path("/etc/postgresql", version, "main", "postgresql.conf")
        if not conf.is_file():
            continue
        if os.geteuid() not in (0, conf.stat().st_uid):
            return None, "it needs root or the cluster's owner"
        found = re.search(r"^\s*port\s*=\s*(\d+)", conf.read_text(), re.MULTILINE)
        if (found.group(1) if found else "5432") == port:
            return Cluster(command, version, "main"), ""
    return None, f"no cluster named main in /etc/postgresql listens on port {port}"


@pytest.fixture
def outage() -> Iterator[tuple[Cluster, str]]:
    """Return the local cluster and the URL of an empty schema; the cluster runs again after.

    Not conftest's postgres_url: its admin engine keeps a connection in its pool, which the
    restart kills, so it could not drop the schema afterwards. This one pools nothing, and drops
    the schema only once the cluster is back.
    """
    cluster, reason = local_cluster()
    require_service("pg_ctlcluster (to stop PostgreSQL)", cluster is not None, reason)
    assert cluster is not None
    if not accepts_connections(0):
        require_service("PostgreSQL", False, f"nothing accepts connections at {POSTGRES_URL}")
    name = f"yupnope_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES_URL, poolclass=NullPool)
    with admin.begin() as connection:
        connection.execute(CreateSchema(name))
    try:
        yield cluster, f"{POSTGRES_URL}?options=-csearch_path%3D{name}"
    finally:
        try:
            cluster.start()
        finally:
            with admin.begin() as connection:
                connection.execute(DropSchema(name, cascade=True))
            admin.dispose()


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


def stopped_and_started(server: LiveServer, cluster: Cluster, token: str) -> None:
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
    live_server_factory: Callable[..., LiveServer], outage: tuple[Cluster, str]
) -> None:
    cluster, url = outage
    # Hashing slots for the two logins that may overlap here (the test's and the background
    # browser's), so none is refused as busy on a one-CPU machine.
    server = live_server_factory(workers=2, DATABASE_URL=url, HASH_CONCURRENCY=2)
    alice = requests.Session()
    assert path_of(post(alice, server, "/signup", username="alice", password=GOOD_PASSWORD)) == (
        "/yup"
    )
    token = token_of(alice)
    bob = post(requests.Session(), server, "/signup", username="bob", password=GOOD_PASSWORD)
    assert path_of(bob) == "/yup"

    with traffic(server, token, "bob") as seen:
        stopped_and_started(server, cluster, token)
    # Through the stop and the start, every answer was a page, a redirect or a 503: never a 500.
    assert set(seen) <= {200, 303, 503}, seen
    assert seen[503] > 0, seen

    # Carol's refused sign-ups left no account behind.
    assert user_names(url) == ["alice", "bob"]
    assert_log_is_clean(server)
