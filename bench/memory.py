"""Sample the memory of a server's whole process tree (granian's main process and its workers).

PSS (proportional set size) is the measure: each page shared by several processes counts a
share in each, so the sum over the tree is the memory the server really holds. RSS is kept
beside it, but counts the pages the workers share with the main process after the fork once in
every process, so its sum overstates the whole.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

MIB = 2**20


def children(pid: int) -> list[int]:
    """Return the pids of the processes ``pid`` started, from the kernel's lists of children."""
    found = []
    # A child is listed under the thread that forked it, so every thread's list is read.
    for listing in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in listing.read_text().split()]
        except OSError:
            continue
    return found


def tree(root: int) -> list[int]:
    """Return ``root`` and every process below it."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children(pid))
    return found


def workers_of(root: int) -> list[int]:
    """Return the worker processes: the children of ``root``, multiprocessing's tracker aside.

    granian starts its workers with multiprocessing, whose resource tracker is a child too
    wherever the start method is spawn (Python 3.14's default): it serves no request, and
    counted as a worker it would make every split look lopsided.
    """
    workers = []
    for pid in children(root):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            # Ended between the listing and now: nothing of it left to count.
            continue
        if b"resource_tracker" not in command:
            workers.append(pid)
    return workers


def shares(root: int, sizes: dict[int, int]) -> str:
    """Return the main process's and each worker's part of ``sizes`` (bytes by pid), in MiB."""
    workers = " / ".join(f"{sizes[pid] / MIB:.0f}" for pid in workers_of(root) if pid in sizes)
    return f"main process {sizes.get(root, 0) / MIB:.0f}, workers {workers} MiB"


def usage(pid: int) -> tuple[int, int]:
    """Return the PSS and RSS of one process in bytes, or zeros when it has ended."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0
    values = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("Pss", "Rss"):
            values[name] = int(rest.split()[0]) * 1024
    return values.get("Pss", 0), values.get("Rss", 0)


@dataclass
class Peak:
    """Hold the largest sums over a process tree seen so far, and each process's PSS then."""

    pss: int = 0
    rss: int = 0
    #: PSS of each process at the sample whose sum was largest, by pid.
    at_peak: dict[int, int] = field(default_factory=dict)
    samples: int = 0

    def said(self) -> str:
        """Return the peak as "peak PSS 120 MiB, RSS 190 MiB"."""
        return f"peak PSS {self.pss / MIB:.0f} MiB, RSS {self.rss / MIB:.0f} MiB"


class Sampler:
    """Sample the tree under ``root`` every ``interval`` seconds in a thread, for a ``with`` block.

    The tree is looked up again each second, not at every sample: reading the kernel's lists
    of children is cheap, but the benchmark's own CPU should stay small beside the server's.
    """

    def __init__(self, root: int, interval: float = 0.05) -> None:
        self.root = root
        self.interval = interval
        self.peak = Peak()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="memory-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        """Add samples to the peak until told to stop."""
        pids, looked = tree(self.root), time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - looked >= 1.0:
                pids, looked = tree(self.root), time.monotonic()
            each = {pid: usage(pid) for pid in pids}
            pss = sum(value[0] for value in each.values())
            rss = sum(value[1] for value in each.values())
            if pss > self.peak.pss:
                self.peak.pss = pss
                self.peak.at_peak = {pid: value[0] for pid, value in each.items()}
            self.peak.rss = max(self.peak.rss, rss)
            self.peak.samples += 1
            self._stop.wait(self.interval)


def idle(root: int, seconds: float = 1.0) -> dict[int, int]:
    """Return each process's median PSS over ``seconds`` of samples, by pid (the root first)."""
    pids = tree(root)
    samples: dict[int, list[int]] = {pid: [] for pid in pids}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for pid in pids:
            samples[pid].append(usage(pid)[0])
        time.sleep(0.05)
    return {pid: sorted(values)[len(values) // 2] for pid, values in samples.items()}
