"""Build the image from Containerfile and run it as README.md says; check compose.yaml.

The image is built with podman on a Debian bookworm made by debootstrap (no image registry is
needed: the machines this runs on reach none), kept in the user's cache folder between runs,
and made the first time on a thread from the run's start (conftest.py), while other tests run.
podman runs with a configuration and storage of the test's own, removed at the end, so the
machine's own containers and images are never touched. Without podman or debootstrap, or not
as root (debootstrap needs it), the live tests skip and say why, or fail under
YUPNOPE_REQUIRE_CONTAINER=1 (set by .ci/run, which installs them).
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import os
import re
import resource
import shlex
import shutil
import ssl
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import yaml
from sqlalchemy import create_engine, make_url, text

from helpers import (
    GOOD_PASSWORD,
    REQUIRE_PREFIX,
    SAME_ORIGIN,
    TIMEOUT,
    WRONG,
    free_port,
    postgres_schema,
    skip_unless_required,
)
from yupnope import config

ROOT = Path(__file__).resolve().parent.parent
CONTAINERFILE = ROOT / "Containerfile"
COMPOSE = ROOT / "compose.yaml"
README = ROOT / "README.md"
SWITCH = "YUPNOPE_REQUIRE_CONTAINER"

#: The base image: Debian's Python 3.11, with venv, and the certificates pip checks PyPI with.
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
BASE_IMAGE = f"localhost/yupnope-base:{SUITE}"
#: Where base images made by debootstrap are kept between runs (about 180 MB each): the user's
#: own cache, which no other user could have put an image in.
BASE_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "yupnope-tests"
#: What a registry's image sets and `podman import` cannot know: where programs are, UTF-8.
BASE_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
)
IMAGE = "localhost/yupnope-test:latest"

#: What the Containerfile promises: its port, its instance folder, its user.
PORT = 8000
INSTANCE = "/var/lib/yupnope"
UID = 10001

#: A setting's name as compose.yaml writes it.
SETTING = re.compile(r"\bYUPNOPE_[A-Z0-9_]*[A-Z0-9]\b")

#: Where debootstrap lives when /usr/sbin is not on a user's PATH.
SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")

#: How slirp4netns's allow_host_loopback lets a container reach the host's 127.0.0.1.
HOST_LOOPBACK = "10.0.2.2"


@dataclasses.dataclass
class Podman:
    """Run podman with a configuration and storage of the test's own under ``folder``."""

    executable: str
    folder: Path

    def env(self) -> dict[str, str]:
        """Return the environment that points podman at this folder's configuration."""
        return {
            **os.environ,
            "CONTAINERS_CONF": str(self.folder / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(self.folder / "storage.conf"),
        }

    def __call__(
        self, *args: str, input: str | None = None, timeout: float = 60, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``podman ARGS``; fail the test with podman's words when ``check`` and it fails."""
        # storage.conf says the same: with both, a podman that read neither variable would still
        # keep away from the machine's own containers and images.
        storage = ["--root", str(self.folder / "root"), "--runroot", str(self.folder / "run")]
        done = subprocess.run(
            [self.executable, *storage, *args],
            env=self.env(),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            pytest.fail(f"podman {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        return done


def find_tool(name: str, package: str) -> str:
    """Return the path of ``name``, or skip the test (fail under YUPNOPE_REQUIRE_CONTAINER=1)."""
    found = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))
    if found is None:
        skip_unless_required(
            f"{name} is not installed (apt-get install {package}) to build and run the image",
            SWITCH,
        )
    return found


def limit(kind: int, wanted: int) -> int:
    """Return ``wanted``, or this process's hard limit of ``kind`` where that is lower."""
    hard = resource.getrlimit(kind)[1]
    return wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)


def configure(folder: Path) -> None:
    """Write podman's configuration and storage settings for the test into ``folder``."""
    nofile, nproc = limit(resource.RLIMIT_NOFILE, 65536), limit(resource.RLIMIT_NPROC, 4096)
    engine = [
        # No systemd needed: cgroups written directly, events kept in a file here.
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        f'tmp_dir = "{folder / "tmp"}"',
    ]
    if shutil.which("runc"):
        # crun 1.8 (bookworm's) refuses cgroups in hybrid mode, v1 controllers beside a v2 one,
        # as this project's machines have; runc runs on every layout.
        engine.append('runtime = "runc"')
    (folder / "containers.conf").write_text(
        "[containers]\n"
        # podman's default raises both limits to 1048576, which needs CAP_SYS_RESOURCE: root in
        # a sandbox may lack it (runc then fails with "error setting rlimit"). Lower ones do not.
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        "[engine]\n" + "".join(f"{line}\n" for line in engine)
    )
    (folder / "storage.conf").write_text(
        "[storage]\n"
        # overlay needs root (or a user namespace), as the base's debootstrap does anyway.
        'driver = "overlay"\n'
        f'graphroot = "{folder / "root"}"\n'
        f'runroot = "{folder / "run"}"\n'
    )


def debootstrap_version(debootstrap: str) -> str:
    """Return debootstrap's version, as 1.0.128+nmu2+deb12u2."""
    done = subprocess.run(
        [debootstrap, "--version"], capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout.split()[-1]


def base_tarball(debootstrap: str) -> Path:
    """Return a tar of a minimal bookworm with BASE_PACKAGES, made by debootstrap the first time.

    Kept under BASE_CACHE by debootstrap's version and what is asked of it, so a later run (or
    another worktree) takes a second where the first took about a minute.
    """
    version = debootstrap_version(debootstrap)
    asked = f"{SUITE} minbase {' '.join(BASE_PACKAGES)} {version}"
    name = f"{SUITE}-debootstrap-{version}-{hashlib.sha256(asked.encode()).hexdigest()[:12]}.tar"
    tarball = BASE_CACHE / name
    if tarball.exists():
        return tarball
    BASE_CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BASE_CACHE) as work:
        rootfs = Path(work) / "rootfs"
        done = subprocess.run(
            [
                debootstrap,
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                SUITE,
                str(rootfs),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            said = (done.stdout + done.stderr)[-3000:]
            pytest.fail(f"debootstrap exited {done.returncode}:\n{said}")
        # The packages' files and lists are apt's cache, of no use in an image.
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / cache).glob("*"):
                if path.is_file():
                    path.unlink()
        partial = Path(work) / name
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
        # Whole or not at all: a run stopped halfway leaves nothing another run would take.
        partial.replace(tarball)
    return tarball


#: The base's tarball being made while the tests before this module run (start_base_early).
_early_base: Future[Path] | None = None


def start_base_early() -> None:
    """Start making the base's tarball on a thread of its own, if this machine can make it.

    Called by conftest.py once the run is known to include this module: debootstrap takes
    about a minute on a new machine, mostly waiting on the network and the disk, which the
    tests that run before this module leave idle. The thread is a daemon: a run that stops
    early does not wait for it.
    """
    global _early_base
    debootstrap = shutil.which(
        "debootstrap", path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN])
    )
    if debootstrap is None or os.geteuid() != 0 or _early_base is not None:
        return
    early: Future[Path] = Future()

    def make() -> None:
        try:
            early.set_result(base_tarball(debootstrap))
        except BaseException as exc:
            # Kept for the podman fixture, which raises it in the test that needs the base.
            early.set_exception(exc)

    threading.Thread(target=make, name="debootstrap", daemon=True).start()
    _early_base = early


def pip_certificates() -> str | None:
    """Return the certificate authorities pip uses on this machine, for pip in the build.

    A network whose proxy inspects TLS has an authority of its own that only the machine's
    bundle holds; the image's bundle would not know it.
    """
    candidates = [os.environ.get("PIP_CERT"), ssl.get_default_verify_paths().cafile]
    return next((path for path in candidates if path and Path(path).is_file()), None)


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    """Build the image on the cached base; yield podman; remove every container and image."""
    executable = find_tool("podman", "podman runc")
    find_tool("slirp4netns", "slirp4netns")
    debootstrap = find_tool("debootstrap", "debootstrap")
    if os.geteuid() != 0:
        skip_unless_required("debootstrap makes the base image only as root", SWITCH)
    folder = tmp_path_factory.mktemp("podman")
    configure(folder)
    tool = Podman(executable, folder)
    try:
        changes = [arg for change in BASE_CHANGES for arg in ("--change", change)]
        tarball = _early_base.result() if _early_base else base_tarball(debootstrap)
        tool("import", *changes, str(tarball), BASE_IMAGE, timeout=300)
        build = ["build", "--format", "docker", "--network", "host", "--tag", IMAGE]
        build += ["--build-arg", f"BASE={BASE_IMAGE}", "--file", str(CONTAINERFILE)]
        certificates = pip_certificates()
        if certificates:
            build += ["--secret", f"id=pip-ca,src={certificates}"]
        index = os.environ.get("PIP_INDEX_URL", "")
        if index and not index.startswith("file:"):
            build += ["--build-arg", f"PIP_INDEX_URL={index}"]
        tool(*build, str(ROOT), timeout=600)
        yield tool
    finally:
        # Containers and volumes are unmounted first; the images go with the folder.
        tool("rm", "--all", "--force", "--time", "0", check=False)
        tool("volume", "rm", "--all", "--force", check=False)
        shutil.rmtree(folder, ignore_errors=True)


@dataclasses.dataclass
class Container:
    """Hold a running container's name and the host's URL of its published port."""

    name: str
    url: str


def inspect(podman: Podman, name: str, template: str) -> str:
    """Return podman inspect's ``template`` (a Go template) for the container or image."""
    return podman("inspect", "--format", template, name).stdout.strip()


@contextmanager
def running(
    podman: Podman, name: str, network: str = "slirp4netns", env: dict[str, str] | None = None
) -> Iterator[Container]:
    """Run the image as README.md says, read-only with a volume; wait until it is ready.

    slirp4netns publishes the port without the bridge and firewall rules podman's default
    network would add to the host's.
    """
    port = free_port()
    podman("volume", "create", f"{name}-instance")
    # Without podman's tmpfs on /tmp, /var/tmp and /run: read-only as Docker's --read-only is.
    podman(
        "run",
        "--detach",
        "--name",
        name,
        "--read-only",
        "--read-only-tmpfs=false",
        "--publish",
        f"127.0.0.1:{port}:{PORT}",
        "--volume",
        f"{name}-instance:{INSTANCE}",
        "--network",
        network,
        *(arg for item in (env or {}).items() for arg in ("--env", "=".join(item))),
        IMAGE,
    )
    container = Container(name, f"http://127.0.0.1:{port}")
    try:
        wait_until_ready(podman, container)
        yield container
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)
        podman("volume", "rm", "--force", f"{name}-instance", check=False)


def wait_until_ready(podman: Podman, container: Container) -> None:
    """Wait until /healthz/ready answers 200; fail with the container's log if it never does."""
    deadline = time.monotonic() + 60
    with direct_session() as session:
        while time.monotonic() < deadline:
            try:
                if session.get(f"{container.url}/healthz/ready", timeout=TIMEOUT).ok:
                    return
            except requests.ConnectionError:
                pass
            if inspect(podman, container.name, "{{.State.Running}}") != "true":
                break
            time.sleep(0.25)
    log = podman("logs", container.name, check=False)
    pytest.fail(f"the container never became ready:\n{log.stdout}{log.stderr}")


def direct_session() -> requests.Session:
    """Return an HTTP session that ignores the environment's proxies."""
    session = requests.Session()
    session.trust_env = False
    return session


def add_user(podman: Podman, container: Container, username: str) -> None:
    """Create a user with `yupnope users add` inside the container, the password on stdin."""
    done = podman(
        "exec",
        "--interactive",
        container.name,
        "yupnope",
        "users",
        "add",
        username,
        "--password-stdin",
        input=f"{GOOD_PASSWORD}\n",
    )
    assert f"Added user {username!r}." in done.stdout


def assert_logs_in(container: Container, username: str) -> None:
    """Log in over HTTP: the right password lands on /yup, a wrong one on /nope."""
    with direct_session() as session:
        for password, landing in ((WRONG, "/nope"), (GOOD_PASSWORD, "/yup")):
            answer = session.post(
                f"{container.url}/login",
                data={"username": username, "password": password},
                headers=SAME_ORIGIN,
                allow_redirects=False,
                timeout=TIMEOUT,
            )
            assert (answer.status_code, answer.headers["Location"]) == (303, landing)
        page = session.get(f"{container.url}/yup", allow_redirects=False, timeout=TIMEOUT)
        assert page.status_code == 200 and username in page.text


def process_ids(pid: int) -> list[int]:
    """Return the real, effective, saved and filesystem user ids of a host process."""
    status = Path(f"/proc/{pid}/status").read_text()
    (line,) = [line for line in status.splitlines() if line.startswith("Uid:")]
    return [int(value) for value in line.split()[1:]]


@pytest.mark.live
def test_the_image_serves_logins_read_only_as_its_own_user(podman: Podman) -> None:
    assert inspect(podman, IMAGE, "{{.Config.User}}") == f"{UID}:{UID}"
    assert "/healthz/" in inspect(podman, IMAGE, "{{json .HealthCheck}}")
    with running(podman, "yupnope-sqlite") as container:
        add_user(podman, container, "alice")
        assert_logs_in(container, "alice")

        # Seen from the host: the server and its workers are the image's user, never root.
        top = podman("top", container.name, "huser", "pid").stdout.split("\n")[1:]
        users = {line.split()[0] for line in top if line.strip()}
        assert users == {str(UID)}, top
        main = int(inspect(podman, container.name, "{{.State.Pid}}"))
        assert process_ids(main) == [UID] * 4

        # The instance folder, the database and the secret key are the user's alone.
        found = podman(
            "volume", "inspect", "--format", "{{.Mountpoint}}", f"{container.name}-instance"
        )
        volume = Path(found.stdout.strip())
        assert stat.S_IMODE(volume.stat().st_mode) == 0o700
        files = {path.name: path.stat() for path in volume.iterdir()}
        assert {"secret_key", "yupnope.db"} <= files.keys()
        for found in files.values():
            assert (stat.S_IMODE(found.st_mode), found.st_uid) == (0o600, UID)

        health = podman("healthcheck", "run", container.name, check=False)
        assert health.returncode == 0, health.stdout + health.stderr
        assert inspect(podman, container.name, "{{.State.Health.Status}}") == "healthy"

        # Stopped with SIGTERM, granian ends its workers and exits 0 well before the SIGKILL.
        started = time.monotonic()
        podman("stop", "--time", "30", container.name, timeout=60)
        assert time.monotonic() - started < 30
        assert inspect(podman, container.name, "{{.State.ExitCode}}") == "0"


@pytest.mark.live
def test_the_image_keeps_its_accounts_in_postgresql(podman: Podman) -> None:
    with postgres_schema() as url:
        database = make_url(url)
        # The host's loopback is the container's 10.0.2.2, through slirp4netns.
        if database.host and ipaddress.ip_address(database.host).is_loopback:
            database = database.set(host=HOST_LOOPBACK)
        env = {"YUPNOPE_DATABASE_URL": database.render_as_string(hide_password=False)}
        network = "slirp4netns:allow_host_loopback=true"
        with running(podman, "yupnope-postgres", network, env) as container:
            add_user(podman, container, "bob")
            assert_logs_in(container, "bob")
        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                names = connection.execute(text("SELECT username FROM users")).scalars().all()
        finally:
            engine.dispose()
        assert names == ["bob"]


def readme_commands() -> list[list[str]]:
    """Return the commands in the README's "Run it in a container", each as its words."""
    section = README.read_text().split("## Run it in a container", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    # A line that ends in a backslash goes on in the next, as in sh.
    lines = "".join(blocks).replace("\\\n", " ").splitlines()
    commands = [shlex.split(line, comments=True) for line in lines]
    return [words for words in commands if words]


def test_the_readme_runs_the_image_as_the_test_does() -> None:
    build, run, add, *compose_commands = readme_commands()
    # podman's default (OCI) format would drop the HEALTHCHECK.
    assert build[:4] == ["podman", "build", "--format", "docker"]
    assert run[:2] == ["podman", "run"] and "--read-only" in run
    assert run[run.index("-v") + 1].endswith(f":{INSTANCE}")
    assert run[run.index("-p") + 1] == f"127.0.0.1:{PORT}:{PORT}"
    assert add[:3] == ["podman", "exec", "-it"] and add[-3:-1] == ["users", "add"]
    assert [words[:3] for words in compose_commands[1:]] == [
        ["docker", "compose", "up"],
        ["docker", "compose", "exec"],
    ]


def compose() -> dict[str, dict[str, dict[str, object]]]:
    """Return compose.yaml as YAML reads it."""
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Return ``value`` with compose's ``${NAME:?message}`` replaced as compose does."""
    return re.sub(r"\$\{(\w+)(?::\?[^}]*)?\}", lambda m: variables[m[1]], value)


def test_every_setting_compose_names_exists() -> None:
    known = {config.env_name(f.name) for f in dataclasses.fields(config.Settings) if f.init}
    named = set(SETTING.findall(COMPOSE.read_text()))
    assert "YUPNOPE_DATABASE_URL" in named
    assert {name for name in named - known if not name.startswith(REQUIRE_PREFIX)} == set()


def test_compose_runs_the_image_on_postgresql_once_it_is_healthy(tmp_path: Path) -> None:
    services = compose()["services"]
    app, database = services["yupnope"], services["postgres"]
    assert app["build"] == {"context": ".", "dockerfile": CONTAINERFILE.name}
    assert app["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert app["read_only"] is True
    assert app["volumes"] == [f"instance:{INSTANCE}"]
    assert app["ports"] == [f"127.0.0.1:{PORT}:{PORT}"]
    assert "pg_isready" in database["healthcheck"]["test"]
    assert compose()["volumes"].keys() == {"instance", "database"}

    # The URL names the service, and the user, database and password PostgreSQL is made with.
    variables = {"POSTGRES_PASSWORD": "0123abcd"}
    environment = {
        name: interpolate(str(value), variables) for name, value in app["environment"].items()
    }
    postgres = {
        name: interpolate(str(value), variables) for name, value in database["environment"].items()
    }
    url = make_url(environment["YUPNOPE_DATABASE_URL"])
    assert (url.drivername, url.host, url.port) == ("postgresql+psycopg", "postgres", 5432)
    assert (url.username, url.password, url.database) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        postgres["POSTGRES_DB"],
    )
    # The settings load as the container would read them (its instance folder set by the image).
    loaded = config.load({**environment, "YUPNOPE_INSTANCE_PATH": str(tmp_path)})
    assert loaded.database_url == environment["YUPNOPE_DATABASE_URL"]
