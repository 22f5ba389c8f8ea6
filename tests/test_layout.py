"""Test DESIGN.md's rules of which module may import which, by reading the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent.parent / "src" / "yupnope"


def imports_of(path: Path) -> set[str]:
    """Return the modules a file imports, relative ones resolved within the yupnope package."""
    package = ".".join(path.relative_to(SOURCE.parent).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def modules(*names: str) -> list[Path]:
    return [SOURCE / name for name in names]


@pytest.mark.parametrize("path", sorted((SOURCE / "security").glob("*.py")), ids=str)
def test_security_imports_nothing_of_ours(path: Path) -> None:
    ours = {m for m in imports_of(path) if m.startswith("yupnope.")}
    assert ours <= {f"yupnope.security.{p.stem}" for p in (SOURCE / "security").glob("*.py")} | {
        "yupnope.security"
    }, ours


@pytest.mark.parametrize(
    "path",
    modules(
        "models.py",
        "store.py",
        "statements.py",
        "accounts.py",
        "throttle.py",
        "counters.py",
        "redis_counters.py",
        "outage.py",
        "sessions.py",
        "personal_tokens.py",
        "admission.py",
    ),
    ids=str,
)
def test_the_rules_and_the_store_never_import_flask(path: Path) -> None:
    assert not {
        m for m in imports_of(path) if m.split(".")[0] in ("flask", "werkzeug", "flask_openapi3")
    }


@pytest.mark.parametrize("path", modules("models.py", "store.py", "statements.py"), ids=str)
def test_models_and_store_never_import_security(path: Path) -> None:
    assert not {m for m in imports_of(path) if m.startswith("yupnope.security")}


@pytest.mark.parametrize("path", sorted(SOURCE.rglob("*.py")), ids=str)
def test_only_the_store_and_migrations_build_sql(path: Path) -> None:
    allowed = {"store.py", "statements.py", "db.py", "schema.py", "models.py"}
    if path.name in allowed or "migrations" in path.parts:
        return
    sql_builders = {"select", "insert", "update", "delete", "text"}
    used = {m.rsplit(".", 1)[-1] for m in imports_of(path) if m.startswith("sqlalchemy.")}
    assert not used & sql_builders, used & sql_builders
