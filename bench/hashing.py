"""Measure raw argon2 verifies or hashes in parallel processes: B1's and B7's baseline.

argon2-cffi directly, at the parameters the server hashes with, so the baseline is what the cores
can hash with no web stack in the way.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from functools import partial
from typing import Any

import argon2
import cpu
from measurements import Run
from servers import Server

from yupnope import config

#: The argon2id parameters the server hashes with by default (README "Settings": OWASP's).
MEMORY_KIB = config.Settings.argon2_memory_kib
TIME_COST = config.Settings.argon2_time_cost
PARALLELISM = config.Settings.argon2_parallelism


def hasher() -> argon2.PasswordHasher:
    """Return argon2-cffi's hasher with the server's parameters and lengths."""
    return argon2.PasswordHasher(
        time_cost=TIME_COST,
        memory_cost=MEMORY_KIB,
        parallelism=PARALLELISM,
        hash_len=32,
        salt_len=16,
        type=argon2.Type.ID,
    )


def _argon2_for(
    encoded: str, password: str, hashing: bool, seconds: float, start: Any, results: Any
) -> None:
    """Verify ``password`` against ``encoded`` (or hash it anew) for ``seconds``; put the tally.

    The tally is (count, elapsed, CPU seconds).
    """
    # The parent handles Ctrl-C and ends this process; a traceback from each would be noise.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    checker = hasher()
    work = (
        partial(checker.hash, password) if hashing else partial(checker.verify, encoded, password)
    )
    work()
    start.wait()
    count, began, cpu_began = 0, time.perf_counter(), time.process_time()
    deadline = began + seconds
    while (now := time.perf_counter()) < deadline:
        work()
        count += 1
    results.put((count, now - began, time.process_time() - cpu_began))


def raw_argon2(
    encoded: str,
    password: str,
    seconds: int,
    servers: dict[str, Server],
    processes: int,
    hashing: bool = False,
) -> Run:
    """Measure argon2 verifies (or hashes) per second in ``processes`` processes, summed."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes)
    results = context.Queue()
    workers = [
        context.Process(
            target=_argon2_for, args=(encoded, password, hashing, seconds, start, results)
        )
        for _ in range(processes)
    ]
    before = cpu.snapshot(list(servers.values()))
    try:
        for worker in workers:
            worker.start()
        counts = [results.get(timeout=seconds + 60) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
                worker.join()
    used = cpu.between(before, cpu.snapshot(list(servers.values())))
    result = Run(
        label=f"argon2-cffi {'hash' if hashing else 'verify'} × {processes} processes",
        seconds=sum(elapsed for _, elapsed, _ in counts) / processes,
        expected=sum(count for count, _, _ in counts),
        rate=sum(count / elapsed for count, elapsed, _ in counts),
        cpu_seconds=sum(seconds for _, _, seconds in counts),
        other_cores=used.other_cores,
        steal_cores=used.steal_cores,
    )
    print(
        f"  {result.label}: {result.rate:,.1f}/s, other load {result.other_cores:.2f} cores",
        flush=True,
    )
    return result
