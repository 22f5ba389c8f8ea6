"""Describe the machine a run measured on: the Machine section of docs/benchmarks.md."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import sqlite3
from pathlib import Path

from servers import program, run


def describe(root: Path, cpus: int) -> list[tuple[str, str]]:
    """Describe the machine and the software the numbers were measured with."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    memory = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    release = Path("/etc/os-release")
    text = release.read_text() if release.exists() else ""
    system = re.search(r'^PRETTY_NAME="?([^"\n]+)', text, re.MULTILINE)
    wrk = run([program("wrk"), "--version"], capture_output=True).stdout.split("\n")[0]
    commit = "unknown"
    git = shutil.which("git")
    if git is not None:
        head = run([git, "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True)
        dirty = run([git, "-C", str(root), "status", "--porcelain", "src"], capture_output=True)
        commit = head.stdout.strip() or commit
        if dirty.stdout.strip():
            commit += ", src/ with uncommitted changes"

    def version(name: str) -> str:
        """Return the installed version of package ``name``."""
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    packages = ("flask", "granian", "sqlalchemy", "argon2-cffi", "argon2-cffi-bindings")
    return [
        ("CPU", model.group(1).strip() if model else platform.processor() or "unknown"),
        ("cores", f"{cpus} (usable by this process: {len(os.sched_getaffinity(0))})"),
        ("memory", f"{int(memory.group(1)) / 2**20:.1f} GiB" if memory else "unknown"),
        ("system", f"{system.group(1) if system else platform.system()}, {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("SQLite", sqlite3.sqlite_version),
        ("packages", ", ".join(f"{name} {version(name)}" for name in packages)),
        ("load generator", wrk.strip()),
        ("yupnope", f"{version('yupnope')} (commit {commit})"),
        ("load average at start", " ".join(f"{x:.2f}" for x in os.getloadavg())),
    ]
