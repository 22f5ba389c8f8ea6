"""Profile a server under load with py-spy and summarise where its time goes, in Markdown.

``record --gil`` samples only the thread holding the GIL: in a granian worker that is the Python
work every other of the worker's blocking threads (those running the WSGI app) waits for; granian
reads and writes HTTP in Rust without it. argon2 and SQLite run their C code without the GIL, so
they show in the report's CPU columns rather than here.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from servers import Server, program, run, spawn
from wrk import Load


def profile(load: Load, server: Server, seconds: int, folder: Path) -> str:
    """Return a Markdown summary of a py-spy profile of ``server`` while wrk sends ``load``."""
    output = folder / f"profile-{secrets.token_hex(4)}.txt"
    wrk = spawn(
        load.wrk(server, seconds + 3),
        env=load.environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.5)
        spy = run(
            [
                program("py-spy"),
                "record",
                f"--pid={server.process.pid}",
                "--subprocesses",
                "--gil",
                "--nonblocking",
                "--rate=250",
                f"--duration={seconds}",
                "--format=raw",
                f"--output={output}",
            ],
            capture_output=True,
            timeout=seconds + 60,
        )
    finally:
        wrk.wait(timeout=seconds + 60)
    if spy.returncode != 0 or not output.exists():
        reason = (spy.stderr.strip().splitlines() or ["no output"])[-1]
        return f"py-spy could not record: {reason}"
    return summarize(output.read_text(errors="replace"), load, seconds)


def stacks(text: str) -> Iterator[tuple[list[str], int]]:
    """Yield each sampled stack (outermost frame first) and its count from py-spy's raw output."""
    # A frame py-spy could not name may carry source text with newlines: join up to a count.
    pending = ""
    for line in text.splitlines():
        pending += line
        found = re.search(r" (\d+)$", pending)
        if found is None:
            continue
        frames = pending[: found.start()].split(";")
        pending = ""
        yield [frame for frame in frames if not frame.startswith("process ")], int(found.group(1))


def _ours(frame: str) -> bool:
    """Return whether a frame is yupnope's, or Flask's, Jinja's or granian's access log around it.

    Only the access log of granian's Python: its WSGI wrapper holds every request whole, so
    counting it would list the whole of each sample under one name.
    """
    if "(yupnope/" in frame:
        return "yupnope/cli/" not in frame
    if re.match(r"_access_log\w* \(granian/wsgi\.py\)", frame):
        return True
    return re.search(r"\((flask|jinja2)/|\(granian/log\.py\)", frame) is not None


def summarize(text: str, load: Load, seconds: int) -> str:
    """Return where the GIL-holding time went: by package, by function (inclusive), by line."""
    packages: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for frames, count in stacks(text):
        total += count
        leaf = frames[-1] if frames else "(unknown)"
        leaves[leaf] += count
        module = re.search(r"\(([^/:)]+)", leaf)
        packages[module.group(1).removesuffix(".py") if module else "(unknown)"] += count
        for frame in {re.sub(r":\d+\)$", ")", frame) for frame in frames}:
            if _ours(frame):
                functions[frame] += count
    if not total:
        return "py-spy recorded no samples."

    def share(count: int) -> str:
        """Return ``count`` as a percentage of every sample."""
        return f"{100 * count / total:.1f}%"

    return "\n".join(
        [
            f"py-spy `record --gil --subprocesses` on both workers for {seconds} s while wrk sent"
            f" {load.label} ({load.connections} connections): {total:,} samples of a thread"
            " holding the GIL.",
            "",
            "| package of the innermost frame | share |",
            "| --- | --- |",
            *(f"| {name} | {share(count)} |" for name, count in packages.most_common(8)),
            "",
            "| function, with all it calls | share |",
            "| --- | --- |",
            *(f"| `{name}` | {share(count)} |" for name, count in functions.most_common(16)),
            "",
            "| innermost frame | share |",
            "| --- | --- |",
            *(f"| `{name[:110]}` | {share(count)} |" for name, count in leaves.most_common(8)),
        ]
    )
