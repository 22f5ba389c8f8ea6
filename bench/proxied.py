"""Measure B9's second half: a page's p99 through nginx with yupnope's check, against without.

nginx runs deploy/forward-auth/nginx.conf, changed only where a bench must: yupnope's and the
app's addresses (127.0.0.1:9091 and 127.0.0.1:8080 in the file) become the bench's yupnope
server and its bare Flask app (the page), the ports it listens on free ones on 127.0.0.1, and
TLS goes: both sides speak plain HTTP. TLS would add the same handshake and encryption to both
sides, moving the ratio towards 1 without saying anything about the check, and it would need a
certificate of the bench's own. The side without any auth is the file's app server again, on
a port of its own, with its ``auth_request`` line taken out: the same nginx, the same proxying
to the app, no check.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import memory
import servers
from measurements import Run, Timing, cpu_ms, interleave, median, p99, rate
from report import Result, at_most
from servers import Server
from wrk import Load, measure

SITE = Path(__file__).resolve().parent.parent / "deploy" / "forward-auth" / "nginx.conf"

#: yupnope's and the app's addresses as the file writes them.
YUPNOPE_ADDRESS = "127.0.0.1:9091"
APP_ADDRESS = "127.0.0.1:8080"

#: The name the file's app server answers to; wrk sends it as Host.
APP_HOST = "app.example.com"

#: The line that makes nginx ask yupnope first; the side without any auth has it taken out.
CHECK = "        auth_request /_yupnope/check;\n"

#: B9/nginx's target: a page's p99 with the check over its p99 without.
LATENCY = 2.0

#: One page load at a time. wrk sends the next request as soon as one is answered, so each
#: connection keeps the chain busy; with one, the checked side keeps about one of 2 cores busy
#: (moderate load) and its p99 is the page's own time. From 2 connections on, it saturates the
#: cores and a p99 measures the queue (connections ÷ throughput) more than the check: at 16,
#: both sides' p99s were 25 to 50 ms, for medians of 2 and 10 ms (docs/benchmarks.md's findings).
CONNECTIONS = 1

#: One nginx worker, for both sides: one connection never keeps it busy, and a second worker
#: would show in the run's CPU split as an idle one.
NGINX_WORKERS = 1

#: nginx's temporary folders, which default to system paths.
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")

MAIN_CONFIG = """\
{user}worker_processes {workers};
pid {folder}/nginx.pid;
error_log stderr;
events {{ worker_connections 768; }}
http {{
    access_log off;
{temp_paths}
    include {folder}/site.conf;
}}
"""


def _swap(text: str, old: str, new: str) -> str:
    """Return ``text`` with every ``old`` as ``new``; exit if the deploy file has none."""
    if old not in text:
        sys.exit(f"bench: deploy/forward-auth/nginx.conf no longer has {old!r} (bench/proxied.py)")
    return text.replace(old, new)


def _app_server(text: str) -> str:
    """Return the file's app server, from its ``server {`` to its closing brace."""
    named = text.find(f"server_name {APP_HOST};")
    start = text.rfind("server {", 0, named) if named >= 0 else -1
    depth = 0
    for end in range(max(start, 0), len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if start >= 0 and text[end] == "}" and depth == 0:
            return text[start : end + 1]
    sys.exit(f"bench: deploy/forward-auth/nginx.conf has no whole server for {APP_HOST}")


def site(yupnope: int, app: int, ports: tuple[int, int, int]) -> str:
    """Return the deploy file for the bench's servers, and the app's server again without the check.

    ``ports``: the redirect to HTTPS (kept, unused), the portal and the checked app (by name on
    one port, as on 443), and the app without any auth.
    """
    redirect, checked, unchecked = ports
    text = SITE.read_text()
    for old, new in [
        (YUPNOPE_ADDRESS, f"127.0.0.1:{yupnope}"),
        (APP_ADDRESS, f"127.0.0.1:{app}"),
        ("    listen [::]:80;\n", ""),
        ("    listen [::]:443 ssl;\n", ""),
        ("listen 80;", f"listen 127.0.0.1:{redirect};"),
        ("listen 443 ssl;", f"listen 127.0.0.1:{checked};"),
    ]:
        text = _swap(text, old, new)
    # nginx loads a server's certificates even where it listens without ssl.
    text, dropped = re.subn(r"^[ \t]*ssl_certificate(_key)? .*\n", "", text, flags=re.MULTILINE)
    if not dropped:
        sys.exit("bench: deploy/forward-auth/nginx.conf no longer names its certificates")
    without = _swap(_app_server(text), CHECK, "")
    without = _swap(without, f"listen 127.0.0.1:{checked};", f"listen 127.0.0.1:{unchecked};")
    return f"{text}\n# The same app without any auth: B9/nginx's baseline.\n{without}\n"


def _main_config(folder: Path, text: str) -> Path:
    """Write nginx.conf: every path inside ``folder``, errors to stderr (the server's log)."""
    (folder / "site.conf").write_text(text)
    # As root, workers would run as nobody, who cannot enter the bench's private folder.
    user = (
        f"user {pwd.getpwuid(0).pw_name} {grp.getgrgid(0).gr_name};\n" if os.geteuid() == 0 else ""
    )
    temp_paths = "\n".join(f"    {kind}_temp_path {folder / kind};" for kind in TEMP_PATHS)
    conf = folder / "nginx.conf"
    conf.write_text(
        MAIN_CONFIG.format(user=user, workers=NGINX_WORKERS, folder=folder, temp_paths=temp_paths)
    )
    return conf


def _command(nginx: str, folder: Path, conf: Path) -> list[str]:
    """Return the command that runs nginx in the foreground on ``conf``, inside ``folder``."""
    command = [nginx, "-c", str(conf), "-p", f"{folder}/", "-g", "daemon off;"]
    said = servers.run([nginx, "-v"], capture_output=True)
    version = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", said.stderr + said.stdout)
    if version and tuple(map(int, version.groups())) >= (1, 19, 5):
        # What happens before the configuration is read goes to the log too, not to a system
        # path (-e came in 1.19.5).
        command += ["-e", "stderr"]
    return command


@dataclass(frozen=True)
class Proxy:
    """Hold nginx's two doors to the page: through yupnope's check, and without any auth.

    Both are the one nginx process on two ports; only ``checked`` is on the list of servers to
    stop, and each run is measured against its own door alone, so nginx's CPU counts once.
    """

    checked: Server
    unchecked: Server


def start(started: list[Server], found: dict[str, Server], folder: Path) -> Proxy:
    """Start nginx in front of yupnope and the bare app, add it to ``started``, check its doors."""
    home = folder / "nginx"
    home.mkdir()
    checked, unchecked = servers.free_port(), servers.free_port()
    text = site(
        found["yupnope"].port, found["bare"].port, (servers.free_port(), checked, unchecked)
    )
    conf = _main_config(home, text)
    argv = _command(servers.program("nginx"), home, conf)
    chain = _chain(found["yupnope"], found["bare"])
    nginx = servers.start(started, "nginx", argv, dict(os.environ), folder, chain, checked)
    proxy = Proxy(nginx, replace(nginx, name="nginx without auth", port=unchecked))
    servers.wait_ready(proxy.unchecked, "/")
    return proxy


def _chain(*behind: Server) -> Callable[[], list[int]]:
    """Return what lists the processes of the servers behind nginx, whose CPU the page costs."""
    return lambda: [pid for server in behind for pid in memory.tree(server.process.pid)]


def _check_doors(proxy: Proxy, cookie: str) -> None:
    """Exit unless the checked door refuses no cookie and lets the cookie in, and the other both.

    Otherwise the runs would time refusals, or no check at all.
    """
    for door, sent, expected in [
        (proxy.checked, {}, 401),
        (proxy.checked, {"Cookie": cookie}, 200),
        (proxy.unchecked, {}, 200),
    ]:
        status, _, body = servers.request(door.port, "GET", "/", headers={"Host": APP_HOST, **sent})
        if status != expected:
            sys.exit(
                f"bench: {door.name} answered {status} to GET / with"
                f" {', '.join(sent) or 'no cookie'}, not {expected}: {body[:200]!r};"
                f" nginx's log ends:\n{door.log_tail()}"
            )


def bench_b9_nginx(proxy: Proxy, cookie: str, timing: Timing) -> Result:
    """Measure B9/nginx: a page's p99 through nginx with yupnope's check against without.

    One connection (CONNECTIONS): more, and the checked side saturates the cores, so its p99
    measures wrk's queue rather than what the check adds to a page.
    """
    rounds, seconds, warmup = timing
    print("B9/nginx: a page through nginx with the forward-auth check against without", flush=True)
    _check_doors(proxy, cookie)
    checked = Load(
        "the bare app's `GET /` through nginx with the forward-auth check",
        proxy.checked.name,
        "/",
        CONNECTIONS,
        cookie=cookie,
        host=APP_HOST,
    )
    # The same request, cookie and all: only nginx's configuration differs.
    unchecked = replace(
        checked, label="the same through nginx without any auth", server=proxy.unchecked.name
    )
    base, ours, ran = interleave(
        rounds,
        lambda: _measure(unchecked, proxy.unchecked, seconds, warmup),
        lambda: _measure(checked, proxy.checked, seconds, warmup),
    )
    return Result(
        id="B9/nginx",
        workload="p99 of a page (the bare app's `GET /`) through nginx with yupnope's"
        " forward-auth check (`deploy/forward-auth/nginx.conf`'s `auth_request`, signed in) vs"
        f" through the same nginx without any auth (plain HTTP, {NGINX_WORKERS} nginx worker;"
        f" {CONNECTIONS} keep-alive connection{'s' if CONNECTIONS > 1 else ''}: a page at a"
        " time, so the p99 is the page's own time and not a queue's)",
        measured=f"p99 {p99(ours):.2f} ms vs {p99(base):.2f} ms; median {median(ours):.2f} ms vs"
        f" {median(base):.2f} ms; {rate(ours):,.0f} vs {rate(base):,.0f} pages/s; CPU of nginx,"
        f" yupnope and the app {cpu_ms(ours):.2f} ms vs {cpu_ms(base):.2f} ms per page",
        **at_most(p99(ours) / p99(base), LATENCY),
        runs=ran,
        profile="Not profiled: the check under load is B9's own row, profiled when it misses;"
        " py-spy cannot see into nginx.",
    )


def _measure(load: Load, door: Server, seconds: int, warmup: int) -> Run:
    """Measure ``load`` against ``door`` alone; exit on any answer but 200, or a socket error."""
    run = measure(load, {door.name: door}, seconds, warmup)
    if run.unexpected or run.socket_errors:
        sys.exit(
            f"bench: {load.label} got {run.unexpected} answers other than 200 and"
            f" {run.socket_errors} socket errors; nginx's log ends:\n{door.log_tail()}"
        )
    return run
