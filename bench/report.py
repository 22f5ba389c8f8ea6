"""Write the results as Markdown tables, and docs/benchmarks.md around them and the chart.

The report is rewritten whole by every run except its findings block, which people write by hand
(what the profiles show, what to do) and which is carried over from the previous report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from measurements import Run
from wrk import Load

FINDINGS_START = "<!-- findings:start -->"
FINDINGS_END = "<!-- findings:end -->"
FINDINGS_PLACEHOLDER = (
    "_No findings yet. `make bench` keeps this block as it is when it rewrites the rest of the"
    " page: write here what the profiles below show and what to do about it._"
)


@dataclass
class Result:
    """Hold one workload's verdict: its runs, the ratio and whether it meets the target."""

    id: str
    workload: str
    measured: str
    ratio: float
    target: str
    met: bool
    #: The range of ratios that meets the target (``high`` None: no upper bound), for the chart.
    low: float
    high: float | None
    #: Where the ratio should get to beyond its target, drawn but not judged.
    goal: float | None = None
    runs: list[Run] = field(default_factory=list)
    #: The loads to profile when the target is missed.
    loads: list[Load] = field(default_factory=list)
    profile: str = ""
    #: Why the workload could not run (PostgreSQL unreachable), or nothing when it ran.
    skipped: str = ""
    #: False for a measurement shown against its old budget but no target of the issue's.
    judged: bool = True


def at_least(
    ratio: float, floor: float, goal: float | None = None, unavailable: int | None = None
) -> dict[str, Any]:
    """Return a Result's verdict on ``ratio`` against a target of ``floor`` or more.

    A ``goal`` is shown beside the target, not judged. Given a count of ``unavailable``
    answers (503), any one of them misses the target too, whatever the ratio.
    """
    target = f"≥ {floor:.2f}" + (f" (goal {goal:.2f})" if goal is not None else "")
    met = ratio >= floor
    if unavailable is not None:
        target += ", no 503"
        met = met and unavailable == 0
    return {"ratio": ratio, "target": target, "met": met, "low": floor, "high": None, "goal": goal}


def at_most(ratio: float, ceiling: float) -> dict[str, Any]:
    """Return a Result's verdict on ``ratio`` against a target of ``ceiling`` or less."""
    return {
        "ratio": ratio,
        "target": f"≤ {ceiling:.2f}",
        "met": ratio <= ceiling,
        "low": 0.0,
        "high": ceiling,
    }


def table(results: Sequence[Result]) -> str:
    """Return the results as a Markdown table."""
    rows = [
        "| id | workload | measured | ratio | target | met? |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        if r.skipped:
            rows.append(f"| {r.id} | {r.workload} | not run: {r.skipped} | – | {r.target} | – |")
            continue
        met = "yes" if r.met else "**no**"
        if not r.judged:
            met = "not judged"
        rows.append(
            f"| {r.id} | {r.workload} | {r.measured} | {r.ratio:.3f} | {r.target} | {met} |"
        )
    return "\n".join(rows)


#: Cores of other programs' load past which a run's numbers are not to be trusted.
BUSY_CORES = 0.25


def warning(results: Sequence[Result]) -> str:
    """Return a warning when other programs competed for the cores, or nothing."""
    runs = [one for r in results for one in r.runs]
    busy = [one for one in runs if one.other_cores > BUSY_CORES]
    if not busy:
        return ""
    worst = max(one.other_cores for one in busy)
    return (
        f"**Warning: the machine was busy.** In {len(busy)} of {len(runs)} runs other programs"
        f" kept more than {BUSY_CORES} of a core busy (up to {worst:.2f} cores; see *other load*"
        " under Every run). They take cores from the two sides unequally, so these ratios are"
        " not reliable: run `make bench` again on a quiet machine."
    )


def _runs_table(results: Sequence[Result]) -> str:
    """Return every measured run in order, with its errors and the machine's other load."""
    rows = [
        "| id | run | per second | median | p99 | unexpected (non-2xx/3xx; 503) | socket errors"
        " | CPU per answer | CPU by worker | other load | steal |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        for one in r.runs:
            median = "–" if one.p50_ms is None else f"{one.p50_ms:.2f} ms"
            # No CPU of its own: pages measured during a flood share the server with it.
            each = f"{one.cpu_ms_each:.2f} ms" if one.cpu_seconds else "–"
            p99 = "–" if one.p99_ms is None else f"{one.p99_ms:.2f} ms"
            rows.append(
                f"| {r.id} | {one.label} | {one.rate:,.1f} | {median} | {p99}"
                f" | {one.unexpected} ({one.non_2xx_3xx}; {one.unavailable}) | {one.socket_errors}"
                f" | {each} | {one.split}{one.balance_note} | {one.other_cores:.2f} cores"
                f" | {one.steal_cores:.2f} cores |"
            )
    return "\n".join(rows)


def _kept_findings(path: Path) -> str:
    """Return the findings block of the existing report, or a placeholder."""
    if path.exists():
        text = path.read_text()
        start, end = text.find(FINDINGS_START), text.find(FINDINGS_END)
        if 0 <= start < end:
            return text[start : end + len(FINDINGS_END)]
    return f"{FINDINGS_START}\n{FINDINGS_PLACEHOLDER}\n{FINDINGS_END}"


def markdown(
    results: Sequence[Result],
    described: Sequence[tuple[str, str]],
    how: Sequence[str],
    path: Path,
) -> str:
    """Return the whole report: table, chart, machine, findings, every run, method, profiles."""
    sections = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`bench/run.py`); each run rewrites all of this page but the"
        " findings. Each target but B4's (a memory budget) is a ratio of yupnope to a baseline"
        " measured in the same run, the two interleaved (A B B A), so a machine that slows down"
        " moves both alike; other"
        " programs competing for the cores do not quite, hence the *other load* column and the"
        " warning when it is high.",
        "",
        table(results),
        "",
        *([busy, ""] if (busy := warning(results)) else []),
        f"![each ratio against its target]({path.with_suffix('.png').name})",
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
        *(f"| {name} | {value} |" for name, value in described),
        "",
        "## Findings",
        "",
        _kept_findings(path),
        "",
        "## Every run",
        "",
        "In the order they ran. *Unexpected* is any answer but the workload's success (a `303`"
        " to `/yup` for a good login, to `/nope` for a bad one, a `200` for a page); wrk counts"
        " any 3xx as success and does not follow it, so `bench/request.lua` checks `Location`."
        " The hashing gate's `503` (queue full) is a non-2xx/3xx answer, also counted apart"
        " after the semicolon: B1, B2, B2-api and B8 miss their target with any, while"
        " B4/flood's flood expects them. *CPU per answer* is"
        " the CPU time of the server's processes (of the argon2 processes for the baseline)"
        " divided by the expected answers. *CPU by worker* splits the server's CPU among its"
        " worker processes, with the busiest one's over the least busy one's in brackets: each"
        " worker listens on a socket of its own (`SO_REUSEPORT`), the kernel hands each new"
        " connection to one of them, and a keep-alive connection stays there, so a keep-alive"
        " run whose connections fell unevenly shows it here. Every run is kept as it fell."
        " Logins open a connection per request (`Connection: close`), so their split evens out"
        " over the run."
        " B4's rows are its logins and B4/flood's its floods, each with the peak memory in the"
        " label; B5's are the pages, alone and during a flood (those have no CPU of their own:"
        " the server's goes to the flood's row, whose answers per second count the `303`s"
        " alone). B7's import row is the whole command, its CPU the command's."
        " *Other load* is CPU time the machine spent on"
        " programs that are not this benchmark: more than a few hundredths of a core means"
        " something else competed for the cores during that run.",
        "",
        _runs_table(results),
        "",
        "## How it is measured",
        "",
        *how,
    ]
    missed = [r for r in results if not r.met and not r.skipped and r.judged]
    if missed:
        sections += ["", "## Profiles of the missed targets", ""]
        for r in missed:
            sections += [f"### {r.id}", "", r.profile.strip() or "Not profiled.", ""]
    return "\n".join(sections).rstrip() + "\n"
