"""Refuse a setting's name that is none, with the nearest one that is: a typo's likely fix.

A misspelt ``YUPNOPE_SIGNUP_OPN`` would otherwise be ignored in silence, and the server would
run with the default the operator meant to change.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping

from .errors import ConfigError

#: Start of every setting's environment variable.
ENV_PREFIX = "YUPNOPE_"

#: Environment variables of yupnope's own test suite and benchmarks (``.ci/run``'s switches,
#: ``bench/``'s database): they start as settings do, and are none.
TOOLING_PREFIXES = ("YUPNOPE_REQUIRE_", "YUPNOPE_TEST_", "YUPNOPE_README_", "YUPNOPE_BENCH_")


def env_name(name: str) -> str:
    """Return the environment variable of the setting ``name``, as messages name it."""
    return ENV_PREFIX + name.upper()


def nearest(name: str, known: Iterable[str]) -> str:
    """Return ``"; did you mean X?"`` for the known name closest to ``name``, or ``""``."""
    found = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {found[0]}?" if found else ""


def refuse_unknown(names: Iterable[str], known: Collection[str], where: str = "") -> None:
    """Raise ConfigError for the first of ``names`` not ``known``, with the nearest that is."""
    for name in sorted(names):
        if name not in known:
            raise ConfigError(f"{where}unknown setting {name!r}{nearest(name, known)}")


def refuse_unknown_variables(
    env: Mapping[str, str], known: Collection[str], prefix: str, file_only: Collection[str]
) -> None:
    """Raise ConfigError for an environment variable under ``prefix`` that no setting reads.

    ``file_only`` are the variables of settings the instance file alone may give (tables).
    """
    ours = sorted(name for name in env if name.startswith(prefix))
    for name in ours:
        if name in file_only:
            table = name.removeprefix(prefix).lower()
            raise ConfigError(
                f"environment: {name} is not read: the [{table}] table of yupnope.toml sets it"
            )
    refuse_unknown(
        (name for name in ours if not name.startswith(TOOLING_PREFIXES)), known, "environment: "
    )
