"""Fill an instance with many users at once, and measure login latency against their number (B6).

The filler users go straight into the database with SQLAlchemy Core, in large executemany
batches: hashing a million passwords would take hours, and a login looks up one user by its
key, so the other rows only need to be there, each with its own name and key. They all share
one real argon2id hash made with the server's parameters.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy
from measurements import Timing, cpu_ms, interleave, median, rate, refused
from report import Result, at_most
from servers import Server
from wrk import Load, measure

from yupnope import config, db
from yupnope.models import User

#: Rows per executemany: large enough that the per-statement cost vanishes, small enough to
#: keep the bench's memory at a few tens of MiB.
BATCH = 20_000


def _rows(count: int, encoded: str, now: datetime) -> Iterator[list[dict[str, object]]]:
    """Yield the filler users in batches; lower-case ASCII names are their own key."""
    for start in range(0, count, BATCH):
        yield [
            {
                "username": f"user{number:07d}",
                "username_key": f"user{number:07d}",
                "password_hash": encoded,
                "created_at": now,
            }
            for number in range(start, min(count, start + BATCH))
        ]


def fill(env: dict[str, str], count: int, encoded: str) -> float:
    """Add ``count`` filler users to the instance ``env`` names; return the seconds it took.

    The schema must exist already (``yupnope users add`` or ``db upgrade`` made it).
    """
    engine = db.make_engine(config.load(environ=env).database_url)
    began = time.perf_counter()
    try:
        with engine.begin() as connection:
            for batch in _rows(count, encoded, datetime.now(UTC)):
                connection.execute(sqlalchemy.insert(User), batch)
    finally:
        engine.dispose()
    return time.perf_counter() - began


def _size(env: dict[str, str]) -> str:
    """Return the size of the instance's SQLite database and its WAL, in MiB."""
    instance = Path(env["YUPNOPE_INSTANCE_PATH"])
    total = sum(path.stat().st_size for path in instance.glob("yupnope.db*"))
    return f"{total / 2**20:,.0f} MiB"


def bench_b6(
    found: dict[str, Server],
    logins: tuple[Load, Load],
    sizes: tuple[int, int],
    filled: tuple[float, float],
    large: dict[str, str],
    timing: Timing,
) -> Result:
    """Measure B6: successful login latency with many users against with few, interleaved.

    Each pair is (few, many): the logins, the user counts, the seconds their fill took.
    ``large`` is the environment of the large instance, whose database's size is reported.
    """
    rounds, seconds, warmup = timing
    few, many = sizes
    print(f"B6: POST /login with {many:,} users against {few:,}", flush=True)
    smalls, larges, ran = interleave(
        rounds,
        lambda: measure(logins[0], found, seconds, warmup),
        lambda: measure(logins[1], found, seconds, warmup),
    )
    return Result(
        id="B6",
        workload=f"median latency of a successful `POST /login` ({logins[0].connections}"
        f" connection), {many:,} users in the database vs {few:,}",
        measured=f"{median(larges):.1f} ms vs {median(smalls):.1f} ms;"
        f" {rate(larges):,.1f} vs {rate(smalls):,.1f} logins/s; CPU {cpu_ms(larges):.1f} vs"
        f" {cpu_ms(smalls):.1f} ms per login; filling took {filled[1]:.1f} s for {many:,} users"
        f" ({_size(large)} of SQLite), {filled[0]:.2f} s for {few:,}{refused(larges + smalls)}",
        **at_most(median(larges) / median(smalls), 1.10),
        runs=ran,
        profile="Not profiled: the logins run B1's code; what differs is inside SQLite, which"
        " runs without the GIL and so out of py-spy's `--gil` view.",
    )
