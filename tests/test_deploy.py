"""Check the deployment files: nginx and systemd accept them, and they name only real settings.

nginx and systemd-analyze are used when they are installed; without them those tests skip and say
why, or fail under YUPNOPE_REQUIRE_NGINX=1 and YUPNOPE_REQUIRE_SYSTEMD=1 (set by .ci/run, which
installs both). The end-to-end test runs nginx, with deploy/nginx.conf, in front of two real
instances.
"""

from __future__ import annotations

import dataclasses
import grp
import ipaddress
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from helpers import (
    GOOD_PASSWORD,
    REQUIRE_PREFIX,
    TIMEOUT,
    LiveServer,
    end,
    free_port,
    run_yupnope,
    skip_unless_required,
)
from yupnope import config
from yupnope.cli import cli

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
GUIDE = ROOT / "docs" / "deploy.md"
FORWARD_AUTH_GUIDE = ROOT / "docs" / "forward-auth.md"
NGINX_SITE = DEPLOY / "nginx.conf"
UNIT = DEPLOY / "yupnope.service"
ENV_EXAMPLE = DEPLOY / "yupnope.env.example"

#: Where deploy/yupnope.service expects the release's virtualenv.
UNIT_EXECUTABLE = "/opt/yupnope/current/bin/yupnope"

#: A setting's name as the deployment files write it.
SETTING = re.compile(r"\bYUPNOPE_[A-Z0-9_]*[A-Z0-9]\b")

#: Where nginx lives when /usr/sbin is not on a user's PATH (Debian, Ubuntu).
SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


#: The address nginx reaches the instances from in the end-to-end test: another loopback address
#: than the client's (127.0.0.1), so the audit log shows whether X-Forwarded-For was read.
PROXY_SOURCE = "127.0.0.3"

#: nginx's temporary folders, which default to system paths a test cannot write.
NGINX_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def deployment_files() -> list[Path]:
    """Return the guides and every file in deploy/ and its folders."""
    files = sorted(path for path in DEPLOY.rglob("*") if path.is_file())
    return [GUIDE, FORWARD_AUTH_GUIDE, *files]


def test_every_setting_the_deployment_files_name_exists() -> None:
    known = {config.env_name(f.name) for f in dataclasses.fields(config.Settings) if f.init}
    unknown = sorted(
        f"{path.relative_to(ROOT)}: {name}"
        for path in deployment_files()
        for name in set(SETTING.findall(path.read_text())) - known
        # The tests' switches (YUPNOPE_REQUIRE_PROXIES), which a guide may name, set nothing.
        if not name.startswith(REQUIRE_PREFIX)
    )
    assert unknown == [], f"named in the deployment files, missing from config.py: {unknown}"


def read_env_file(path: Path) -> dict[str, str]:
    """Return the variables ``path`` sets when sh reads it the way docs/deploy.md says."""
    done = subprocess.run(
        ["sh", "-c", 'set -a && . "$1" && env -0', "sh", str(path)],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        check=True,
        timeout=10,
    )
    pairs = (item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
    return {name: value for name, value in pairs}


def test_the_env_example_reads_whole_in_sh_and_its_settings_load(tmp_path: Path) -> None:
    variables = read_env_file(ENV_EXAMPLE)
    settings = {k: v for k, v in variables.items() if k.startswith(config.ENV_PREFIX)}
    must_share = {"YUPNOPE_DATABASE_URL", "YUPNOPE_SECRET_KEY", "YUPNOPE_TRUSTED_PROXIES"}
    assert must_share <= settings.keys()
    # A value with "&" in it would have ended at the "&" (and run the rest) without its quotes.
    assert "&sslrootcert=" in settings["YUPNOPE_DATABASE_URL"]
    loaded = config.load({**settings, "YUPNOPE_INSTANCE_PATH": str(tmp_path)})
    assert loaded.database_url == settings["YUPNOPE_DATABASE_URL"]
    assert loaded.trusted_proxies == "1"


def test_the_unit_starts_serve_with_options_it_knows() -> None:
    (line,) = [line for line in UNIT.read_text().splitlines() if line.startswith("ExecStart=")]
    options = read_env_file(ENV_EXAMPLE)["SERVE_OPTIONS"]
    words = shlex.split(line.removeprefix("ExecStart="))
    assert words[:2] == [UNIT_EXECUTABLE, "serve"]
    args = [options if w == "$SERVE_OPTIONS" else w.replace("%i", "8001") for w in words[2:]]
    # Parsing alone: an unknown option or a bad value raises click's UsageError.
    context = cli.commands["serve"].make_context("serve", shlex.split(" ".join(args)))
    assert context.params["host"] == "127.0.0.1"
    assert context.params["port"] == 8001


def nginx_directives(name: str) -> list[str]:
    """Return the values of every ``name`` directive in deploy/nginx.conf."""
    return re.findall(rf"(?m)^\s*{name}\s+([^;]+);", NGINX_SITE.read_text())


def test_nginx_refuses_the_bodies_the_app_refuses() -> None:
    assert nginx_directives("client_max_body_size") == [
        f"{config.Settings.max_content_length // 1024}k"
    ]


def test_nginx_sends_what_the_trusted_proxy_setting_reads() -> None:
    headers = dict(value.split(None, 1) for value in nginx_directives("proxy_set_header"))
    assert headers["X-Forwarded-For"] == "$proxy_add_x_forwarded_for"
    assert headers["X-Forwarded-Proto"] == "$scheme"
    # With the port: the cross-origin check compares a form's Origin with Host.
    assert headers["Host"] == "$http_host"


def find_nginx() -> str:
    """Return the nginx executable, or skip the test (fail under YUPNOPE_REQUIRE_NGINX=1)."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *SBIN])
    nginx = shutil.which("nginx", path=search)
    if nginx is None:
        skip_unless_required(
            "nginx is not installed (apt-get install nginx) to check deploy/nginx.conf",
            "YUPNOPE_REQUIRE_NGINX",
        )
    return nginx


def nginx_version(nginx: str) -> tuple[int, ...]:
    """Return nginx's version, as (1, 22, 1)."""
    done = subprocess.run([nginx, "-v"], capture_output=True, text=True, timeout=10, check=False)
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", done.stderr + done.stdout)
    return tuple(int(part) for part in found.groups()) if found else (0,)


def self_signed_certificate(
    folder: Path, hosts: tuple[str, ...] = ("localhost",)
) -> tuple[Path, Path]:
    """Write a certificate for ``hosts`` and 127.0.0.1, and its key, both in PEM.

    Made with the cryptography package (a test dependency), so the test needs no openssl command.
    """
    certificate_path, key_path = folder / "certificate.pem", folder / "key.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = datetime.now(UTC)
    names = [*map(x509.DNSName, hosts), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return certificate_path, key_path


def _replace(pattern: str, make: Callable[[re.Match[str]], str], text: str, times: int) -> str:
    """Return ``text`` with ``pattern`` replaced, failing when it is not found ``times`` times."""
    changed, found = re.subn(pattern, make, text, flags=re.MULTILINE)
    assert found == times, f"deploy/nginx.conf: expected {times} of {pattern!r}, found {found}"
    return changed


def site_config(
    certificate: Path,
    key: Path,
    ports: tuple[int, int] | None = None,
    upstreams: list[int] | None = None,
) -> str:
    """Return deploy/nginx.conf with the test's certificate, and its ports and instances if given.

    With ``ports`` (HTTP, HTTPS) it listens on 127.0.0.1 only, and on no IPv6 address.
    """
    text = NGINX_SITE.read_text()
    text = _replace(r"^(\s*ssl_certificate)\s+\S+;", lambda m: f"{m[1]} {certificate};", text, 1)
    text = _replace(r"^(\s*ssl_certificate_key)\s+\S+;", lambda m: f"{m[1]} {key};", text, 1)
    if ports is not None:
        http, https = ports
        text = _replace(r"^\s*listen \[::\]:\d+.*\n", lambda m: "", text, 2)
        text = _replace(r"\blisten 80;", lambda m: f"listen 127.0.0.1:{http};", text, 1)
        text = _replace(r"\blisten 443 ssl;", lambda m: f"listen 127.0.0.1:{https} ssl;", text, 1)
    if upstreams is not None:
        ports_left = iter(upstreams)
        text = _replace(
            r"^(\s*server) 127\.0\.0\.1:\d+",
            lambda m: f"{m[1]} 127.0.0.1:{next(ports_left)}",
            text,
            len(upstreams),
        )
    return text


def nginx_main_config(folder: Path, site: str, proxy_source: str | None = None) -> Path:
    """Write an nginx.conf that keeps every path inside ``folder`` and includes ``site``.

    With ``proxy_source``, nginx connects to the instances from that address.
    """
    (folder / "site.conf").write_text(site)
    lines = []
    if os.geteuid() == 0:
        # As root, workers would run as nobody, who cannot enter the test's private folder.
        lines.append(f"user {pwd.getpwuid(0).pw_name} {grp.getgrgid(0).gr_name};")
    lines += [
        "worker_processes 1;",
        f"pid {folder / 'nginx.pid'};",
        f"error_log {folder / 'error.log'};",
        "events { worker_connections 64; }",
        "http {",
        "    access_log off;",
        *(f"    {kind}_temp_path {folder / kind};" for kind in NGINX_TEMP_PATHS),
        *([f"    proxy_bind {proxy_source};"] if proxy_source else []),
        f"    include {folder / 'site.conf'};",
        "}",
    ]
    conf = folder / "nginx.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


def nginx_command(nginx: str, folder: Path, conf: Path) -> list[str]:
    """Return the command that runs nginx on ``conf`` with every file inside ``folder``."""
    command = [nginx, "-c", str(conf), "-p", f"{folder}/"]
    if nginx_version(nginx) >= (1, 19, 5):
        # The log for what happens before the configuration is read (-e came in 1.19.5).
        command += ["-e", str(folder / "error.log")]
    return command


def test_nginx_accepts_the_site_config(tmp_path: Path) -> None:
    nginx = find_nginx()
    certificate, key = self_signed_certificate(tmp_path)
    # nginx -t binds the ports it is to listen on; only root may bind 80 and 443.
    ports = None if os.geteuid() == 0 else (free_port(), free_port())
    conf = nginx_main_config(tmp_path, site_config(certificate, key, ports))
    done = subprocess.run(
        [*nginx_command(nginx, tmp_path, conf), "-t"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "[warn]" not in done.stderr, done.stderr


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        skip_unless_required(
            "systemd-analyze is not installed (apt-get install systemd) to check"
            " deploy/yupnope.service",
            "YUPNOPE_REQUIRE_SYSTEMD",
        )
    executable = Path(sys.executable).parent / "yupnope"
    if not executable.exists():
        skip_unless_required(
            f"no yupnope command next to {sys.executable} for the unit (pip install -e .)",
            "YUPNOPE_REQUIRE_SYSTEMD",
        )
    text = UNIT.read_text()
    assert UNIT_EXECUTABLE in text
    # Installed as a template (yupnope@.service); verify checks an instance of it, port 8001.
    (tmp_path / "yupnope@.service").write_text(text.replace(UNIT_EXECUTABLE, str(executable)))
    # The pruning timer and its service, with the same executable.
    for name in ("yupnope-prune.service", "yupnope-prune.timer"):
        unit = (DEPLOY / name).read_text()
        (tmp_path / name).write_text(unit.replace(UNIT_EXECUTABLE, str(executable)))
    done = subprocess.run(
        [
            analyze,
            "verify",
            str(tmp_path / "yupnope@8001.service"),
            str(tmp_path / "yupnope-prune.service"),
            str(tmp_path / "yupnope-prune.timer"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # verify warns about unknown keys and bad values yet exits 0, so its words count too.
    complaints = [line for line in done.stderr.splitlines() if "yupnope" in line]
    assert done.returncode == 0 and complaints == [], done.stderr


@contextmanager
def running_nginx(nginx: str, folder: Path, conf: Path, port: int) -> Iterator[None]:
    """Run nginx in the foreground until the block ends; wait until it accepts on ``port``."""
    with (folder / "nginx.out").open("wb") as out:
        process = subprocess.Popen(
            [*nginx_command(nginx, folder, conf), "-g", "daemon off;"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                log = folder / "error.log"
                pytest.fail(f"nginx exited: {log.read_text() if log.exists() else ''}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("nginx did not start listening")
                time.sleep(0.05)
        yield
    finally:
        end(process)


def direct_session(certificate: Path) -> requests.Session:
    """Return an HTTP session that trusts ``certificate`` and ignores the environment's settings.

    Without trust_env=False, REQUESTS_CA_BUNDLE would replace the certificate and an HTTPS_PROXY
    would carry requests for the loopback address away.
    """
    session = requests.Session()
    session.trust_env = False
    session.verify = str(certificate)
    return session


def served(server: LiveServer, request_line: str) -> bool:
    """Return whether the instance's access log shows ``request_line`` (like "GET /yup")."""
    return f'"{request_line} HTTP/1.' in server.log.read_text()


@pytest.mark.live
def test_nginx_in_front_of_two_instances(
    tmp_path: Path, instance: Path, live_server_factory: Callable[..., LiveServer]
) -> None:
    nginx = find_nginx()
    certificate, key = self_signed_certificate(tmp_path)
    added = run_yupnope(instance, "users", "add", "alice", "--password-stdin", input=GOOD_PASSWORD)
    assert added.returncode == 0, added.stderr
    first = live_server_factory(trusted_proxies="1", access_log=True)
    second = live_server_factory(trusted_proxies="1", access_log=True)
    http_port, https_port = free_port(), free_port()
    folder = tmp_path / "nginx"
    folder.mkdir()
    site = site_config(certificate, key, (http_port, https_port), [first.port, second.port])
    conf = nginx_main_config(folder, site, proxy_source=PROXY_SOURCE)
    base = f"https://127.0.0.1:{https_port}"
    browser = direct_session(certificate)
    other = direct_session(certificate)

    with running_nginx(nginx, folder, conf, https_port):
        moved = other.get(
            f"http://127.0.0.1:{http_port}/yup", allow_redirects=False, timeout=TIMEOUT
        )
        assert (moved.status_code, moved.headers["Location"]) == (
            301,
            "https://127.0.0.1/yup",
        )

        form = browser.get(base + "/", timeout=TIMEOUT)
        assert form.status_code == 200
        assert form.headers["Strict-Transport-Security"].startswith("max-age=")

        # An older browser: no Sec-Fetch-Site, so the Origin (with its port) is checked against
        # Host. The X-Forwarded-For it sends is its own invention and must be ignored.
        login = browser.post(
            base + "/login",
            data={"username": "alice", "password": GOOD_PASSWORD},
            headers={"Origin": base, "X-Forwarded-For": "203.0.113.7"},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        assert (login.status_code, login.headers["Location"]) == (303, "/yup")
        assert all(cookie.secure for cookie in browser.cookies)
        assert {"yupnope_session", "yupnope_device"} <= {c.name for c in browser.cookies}
        audit = run_yupnope(instance, "audit", "--user", "alice").stdout
        # The columns: time, event, user, group and app ("-" for none), address, user agent.
        assert re.search(r"\blogin\s+alice\s+-\s+-\s+127\.0\.0\.1\s", audit), audit
        assert "203.0.113.7" not in audit and PROXY_SOURCE not in audit

        # One session, good on both instances: nginx takes turns between them.
        for _ in range(4):
            page = browser.get(base + "/yup", timeout=TIMEOUT)
            assert page.status_code == 200 and "alice" in page.text
        assert served(first, "GET /yup") and served(second, "GET /yup")

        # nginx refuses one byte more than the app accepts, and passes the rest on.
        prefix = b"username=alice&password="
        for size, refused in (
            (config.Settings.max_content_length, False),
            (config.Settings.max_content_length + 1, True),
        ):
            answer = other.post(
                base + "/login",
                data=prefix + b"x" * (size - len(prefix)),
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Sec-Fetch-Site": "same-origin",
                },
                allow_redirects=False,
                timeout=TIMEOUT,
            )
            assert (answer.status_code == 413) is refused, (size, answer.status_code)

        # A rolling restart: with one instance down, nginx sends everything to the other.
        first.stop()
        for _ in range(4):
            assert browser.get(base + "/yup", timeout=TIMEOUT).status_code == 200
        logout = browser.post(
            base + "/logout",
            headers={"Sec-Fetch-Site": "same-origin"},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        assert logout.status_code == 303
        assert browser.get(base + "/yup", allow_redirects=False, timeout=TIMEOUT).status_code == 302
