"""Flood a server with logins; watch its memory and a logged-in user's pages meanwhile (B5).

- B4/flood, shown beside B4 (``footprint.py``) but not judged: the peak memory (PSS) of the
  server's whole process tree while 500 connections post the login form, against a budget of
  workers × (one worker's share of the idle server + K hashing slots × 20 MiB).
- B5: the p99 latency of a logged-in user's ``GET /yup`` during that flood, against the same
  pages with no flood, the two sides interleaved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cpu
import memory
import wrk
from measurements import Run, Timing, interleave, median, p99, rate, unavailable
from memory import MIB, Peak
from report import Result, at_most
from servers import Server
from wrk import WRK_TIMEOUT_SECONDS, Load, finish_wrk, say, settle, start_wrk, wrk_run

#: Concurrent login attempts of the flood (the issue's number).
FLOOD_CONNECTIONS = 500

#: A logged-in user, or two, clicking through pages while the flood goes on.
PAGE_CONNECTIONS = 2

#: Memory one argon2 computation may add to a worker: its 19 MiB (m=19456 KiB) and a little more.
HASH_MIB = 20


@dataclass(frozen=True)
class Side:
    """Hold one side of a round: the page run, the flood's run if any, and the memory peak."""

    page: Run
    flood: Run | None
    peak: Peak


def side(
    page: Load, flood: Load | None, found: dict[str, Server], seconds: int, warmup: int
) -> Side:
    """Measure pages for ``seconds`` after ``warmup``, during ``flood`` when given; watch memory.

    The flood starts with the pages' warm-up and ends a second after their run, so the measured
    pages see it at full strength throughout. Without a flood, the CPU is the page run's alone;
    with one, it is the server's over the whole flood, and goes to the flood's run.
    """
    server = found[page.server]
    everything = list(found.values())
    flood_seconds = warmup + seconds + 1
    flood_numbers: dict[str, int] = {}
    with memory.Sampler(server.process.pid) as sampler:
        before = cpu.snapshot(everything)
        flooding = start_wrk(flood, server, flood_seconds) if flood else None
        try:
            if warmup:
                finish_wrk(start_wrk(page, server, warmup), warmup)
            if flooding is None:
                before = cpu.snapshot(everything)
            page_numbers = finish_wrk(start_wrk(page, server, seconds), seconds)
            if flooding is not None:
                flood_numbers = finish_wrk(flooding, flood_seconds)
        finally:
            if flooding is not None and flooding.poll() is None:
                flooding.kill()
                flooding.wait()
        # After every wrk is reaped: until then, their CPU would count as other programs'.
        used = cpu.between(before, cpu.snapshot(everything))
        settle(server)
    peak = sampler.peak
    spent = used.servers[server.name], tuple(used.workers[server.name])
    if flood is None:
        pages = wrk_run(
            replace(page, label=f"{page.label}, alone"), server, page_numbers, used, *spent
        )
        say(pages)
        return Side(pages, None, peak)
    # The pages' share of the server's CPU cannot be told from the flood's: all of it goes there.
    pages = wrk_run(
        replace(page, label=f"{page.label}, during the flood"),
        server,
        page_numbers,
        used,
        0.0,
        required=False,
    )
    memory_note = f", {flood.connections} connections ({peak.said()})"
    flooded = wrk_run(
        replace(flood, label=flood.label + memory_note), server, flood_numbers, used, *spent
    )
    say(pages)
    say(flooded)
    return Side(pages, flooded, peak)


def worst_p99(run: Run) -> tuple[float, bool]:
    """Return a run's p99 in ms, and whether it is only a lower bound.

    wrk leaves out of its histogram the requests it gave up on after its 5 s timeout. When
    they are more than 1 % of the requests, the true p99 is past 5 s; with no answer at all, it
    is past the whole run.
    """
    answered = run.expected + run.unexpected
    if answered == 0:
        return 1000 * run.seconds, True
    if run.socket_errors > 0.01 * (answered + run.socket_errors):
        return max(run.p99_ms or 0.0, 1000 * WRK_TIMEOUT_SECONDS), True
    return run.p99_ms or 0.0, False


def _ms(value: float) -> str:
    """Return milliseconds to a tenth, or a dash when no page was answered at all."""
    return "–" if math.isnan(value) else f"{value:,.1f} ms"


def _mib(value: int) -> str:
    """Return bytes as whole MiB."""
    return f"{value / MIB:.0f}"


def bench_flood(
    found: dict[str, Server],
    server: Server,
    cookie: str,
    credentials: tuple[str, str],
    slots: int,
    workers: int,
    timing: Timing,
) -> tuple[Result, Result]:
    """Measure B4/flood (peak memory under a login flood) and B5 (pages' p99 during it or not).

    ``credentials`` are the name and the wrong password the flood posts; ``slots`` is K, the hashing
    slots of each of the server's ``workers``.
    """
    rounds, seconds, warmup = timing
    print(f"B4/flood, B5: {FLOOD_CONNECTIONS} concurrent logins, memory and pages", flush=True)
    page = Load("logged-in `GET /yup`", server.name, "/yup", PAGE_CONNECTIONS, cookie=cookie)
    flood = wrk.login(
        "`POST /login` flood, wrong password",
        server.name,
        credentials,
        "/nope",
        FLOOD_CONNECTIONS,
    )
    # The idle size before any flood made the workers hash, twice: after a few pages, and after
    # as many connections as the flood's asking for pages, each anew (so both workers get them).
    # The second is the base: every request thread has run and the workers hold what a burst
    # of requests leaves behind, so the budget's K × 20 MiB is left for the hashing alone.
    finish_wrk(start_wrk(page, server, max(warmup, 1)), max(warmup, 1))
    settle(server)
    light = memory.idle(server.process.pid)
    burst = replace(page, connections=FLOOD_CONNECTIONS, keep_alive=False)
    finish_wrk(start_wrk(burst, server, max(warmup, 1)), max(warmup, 1))
    settle(server)
    idle = memory.idle(server.process.pid)
    base = sum(idle.values()) / workers
    budget = workers * (base + slots * HASH_MIB * MIB)
    alone: list[Side] = []
    flooded: list[Side] = []

    def run_side(load: Load | None, into: list[Side]) -> Run:
        """Measure one side and keep it whole (its memory peak too)."""
        into.append(side(page, load, found, seconds, warmup))
        return into[-1].page

    _, _, pages = interleave(
        rounds, lambda: run_side(None, alone), lambda: run_side(flood, flooded)
    )
    worst = max((one.peak for one in flooded), key=lambda peak: peak.pss)
    floods = [one.flood for one in flooded if one.flood is not None]
    answers = sum(one.expected + one.unexpected for one in floods)
    busy = unavailable(floods)
    lost = sum(one.socket_errors for one in floods)
    root = server.process.pid
    flooding = Result(
        id="B4/flood",
        workload=f"peak memory (PSS) of all server processes during {FLOOD_CONNECTIONS} concurrent"
        f" login attempts vs {workers} workers × (idle share + {slots} hashing slot(s) × {HASH_MIB}"
        " MiB)",
        measured=f"{worst.said()} vs budget {workers} × ({_mib(int(base))} + {slots} ×"
        f" {HASH_MIB}) = {_mib(int(budget))} MiB; idle after a burst of pages (the base):"
        f" {memory.shares(root, idle)} (after a few pages: {_mib(sum(light.values()))} MiB in"
        f" all, {_mib(sum(idle.values()))} after the burst); at the peak:"
        f" {memory.shares(root, worst.at_peak)}; {busy:,} of {answers:,} flood answers were 503"
        f" (the hashing gate, expected here), {lost:,} socket errors",
        **at_most(worst.pss / budget, 1.0),
        runs=floods,
        judged=False,
    )
    quiet_pages = [one.page for one in alone]
    busy_pages = [one.page for one in flooded]
    bounds = [worst_p99(one) for one in busy_pages]
    during = sum(value for value, _ in bounds) / len(bounds)
    at_least = "≥ " if any(bound for _, bound in bounds) else ""
    ratio = during / p99(quiet_pages)
    timeouts = sum(one.socket_errors for one in busy_pages)
    unanswered = (
        f"; {timeouts} pages got no answer within wrk's {WRK_TIMEOUT_SECONDS} s" if timeouts else ""
    )
    b5 = Result(
        id="B5",
        workload=f"p99 of a logged-in user's `GET /yup` ({PAGE_CONNECTIONS} connections) during"
        f" B4/flood's {FLOOD_CONNECTIONS} login attempts vs without it",
        measured=f"p99 {at_least}{during:,.1f} ms vs {p99(quiet_pages):,.1f} ms; median"
        f" {_ms(median(busy_pages))} vs {_ms(median(quiet_pages))}; {rate(busy_pages):,.1f} vs"
        f" {rate(quiet_pages):,.0f} pages/s{unanswered}",
        **at_most(ratio, 5.0),
        runs=pages,
        loads=[flood],
    )
    return flooding, b5
