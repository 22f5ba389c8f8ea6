"""Measure whether login latency tells an unknown name from a wrong password (B3)."""

from __future__ import annotations

from dataclasses import replace

from measurements import Timing, cpu_ms, interleave, median, rate, refused
from report import Result
from rig import USER, login
from servers import Server
from wrk import measure

UNKNOWN_USER = "nobody-here"


def bench_b3(found: dict[str, Server], password: str, timing: Timing) -> Result:
    """Measure B3: median login latency for an unknown name against a wrong password."""
    rounds, seconds, warmup = timing
    print("B3: POST /login, unknown name against wrong password", flush=True)
    # One connection: a timing attack times single answers, and the difference between the
    # two paths is in each answer's own time. With several connections each answer also waits
    # for a hashing slot, and by Little's law that wait is the connections over the throughput,
    # so an 8-second run's few per cent of throughput noise moved the medians 5-12 % either way.
    unknown, wrong = (
        replace(login(*sent, "/nope", label, "yupnope"), connections=1)
        for sent, label in (
            ((UNKNOWN_USER, password), "`POST /login`, unknown name"),
            ((USER, password + "-not"), "`POST /login`, wrong password"),
        )
    )
    unknowns, wrongs, ran = interleave(
        rounds,
        lambda: measure(unknown, found, seconds, warmup),
        lambda: measure(wrong, found, seconds, warmup),
    )
    a, b = median(unknowns), median(wrongs)
    difference = 100 * (a - b) / b
    return Result(
        id="B3",
        workload="median latency of `POST /login`, unknown name vs wrong password"
        f" ({unknown.connections} connection)",
        measured=f"{a:.1f} ms vs {b:.1f} ms ({difference:+.1f}%);"
        f" {rate(unknowns):,.1f} vs {rate(wrongs):,.1f} answers/s; CPU {cpu_ms(unknowns):.1f}"
        f" vs {cpu_ms(wrongs):.1f} ms per answer{refused(unknowns + wrongs)}",
        ratio=a / b,
        target="within 5%",
        met=abs(difference) <= 5,
        low=0.95,
        high=1.05,
        runs=ran,
        loads=[unknown, wrong],
    )
