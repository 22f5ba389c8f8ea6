"""Time ``yupnope users import`` against raw argon2 hashes on every core (B7).

The import hashes every password at the server's parameters on one thread per CPU; its ceiling
is argon2-cffi's ``PasswordHasher.hash`` in one process per CPU, doing nothing else.
"""

from __future__ import annotations

import json
import re
import resource
import secrets
import sys
import time
from pathlib import Path

import cpu
from hashing import raw_argon2
from measurements import Run, cpu_ms, rate
from report import Result, at_least
from servers import Server, program, run


def write_file(path: Path, count: int) -> None:
    """Write ``count`` users in the tutorial's shape, each with a random password that passes."""
    # 16 random URL-safe characters: past the policy's 8 and in no list of common passwords.
    users = {
        f"import{number:05d}": {"password": secrets.token_urlsafe(12)} for number in range(count)
    }
    path.write_text(json.dumps(users))


def timed_import(env: dict[str, str], path: Path, count: int, servers: dict[str, Server]) -> Run:
    """Run ``yupnope users import`` once and time all of it: start, hashing, insert, exit."""
    done = run([program("yupnope"), "db", "upgrade"], env=env, capture_output=True)
    if done.returncode != 0:
        sys.exit(f"bench: yupnope db upgrade failed: {done.stderr.strip()}")
    before = cpu.snapshot(list(servers.values()))
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = run([program("yupnope"), "users", "import", str(path)], env=env, capture_output=True)
    elapsed = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = cpu.between(before, cpu.snapshot(list(servers.values())))
    added = re.search(r"Added (\d+) user", done.stdout)
    if done.returncode != 0 or added is None or int(added.group(1)) != count:
        sys.exit(f"bench: yupnope users import failed: {done.stderr.strip() or done.stdout}")
    result = Run(
        label=f"`yupnope users import` of {count:,} users",
        seconds=elapsed,
        expected=count,
        rate=count / elapsed,
        cpu_seconds=(after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime),
        other_cores=used.other_cores,
        steal_cores=used.steal_cores,
    )
    print(
        f"  {result.label}: {elapsed:.1f} s, {result.rate:,.1f} users/s,"
        f" other load {result.other_cores:.2f} cores",
        flush=True,
    )
    return result


def bench_b7(
    found: dict[str, Server], env: dict[str, str], folder: Path, count: int, seconds: int, cpus: int
) -> Result:
    """Measure B7: users imported per second against raw argon2 hashes per second, A B A."""
    print(f"B7: yupnope users import of {count:,} users against raw argon2 hashes", flush=True)
    path = folder / "import.json"
    write_file(path, count)
    password = secrets.token_urlsafe(12)
    # One import is long (about 18 ms of CPU a user): the baseline runs before and after it,
    # which cancels a drift that is linear in time as A B B A does for two sides of equal runs.
    raws = [raw_argon2("", password, seconds, found, cpus, hashing=True)]
    imported = timed_import(env, path, count, found)
    raws.append(raw_argon2("", password, seconds, found, cpus, hashing=True))
    return Result(
        id="B7",
        workload=f"`yupnope users import` of {count:,} users: users per second vs raw argon2"
        f" hashes per second ({cpus} processes)",
        measured=f"{imported.rate:,.1f} users/s ({imported.seconds:.1f} s in all) vs"
        f" {rate(raws):,.1f} hashes/s; CPU {imported.cpu_ms_each:.1f} ms per user vs"
        f" {cpu_ms(raws):.1f} ms per hash",
        **at_least(imported.rate / rate(raws), 0.90),
        runs=[raws[0], imported, raws[1]],
        profile="Not profiled: the import is a command, not a server under wrk's load.",
    )
