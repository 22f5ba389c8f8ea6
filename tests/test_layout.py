"""Test src/yupnope/README.md's rules of which module may import which, by reading the source.

Each rule lists the few modules that may do something (import Flask, build SQL, talk to Redis)
and checks every other file, so a new module is covered the day it lands.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent.parent / "src" / "yupnope"

#: Every Python file of the package, new ones included.
FILES = sorted(SOURCE.rglob("*.py"))

#: The longest a module may grow, in lines.
MAX_LINES = 300

#: The web frameworks: only the HTTP edge and the wiring that holds the app may import them.
FLASK = ("flask", "werkzeug", "flask_openapi3")

#: Werkzeug's password hashing, which carries no HTTP: the one module of the frameworks that the
#: imported hashes' verifier may use, so that Werkzeug's hashes are checked by Werkzeug's code.
FLASK_HASHING = {"security/foreign_hashes.py": "werkzeug.security"}

#: Packages whose every module may import Flask: the HTTP edge.
FLASK_PACKAGES = ("web",)

#: Single files outside those packages that must import Flask, and so may.
FLASK_FILES = ("__init__.py", "wiring.py", "cli/group.py", "cli/serve.py")

#: What builds SQL in SQLAlchemy: statements, raw text, tables and the pieces of expressions.
SQL_BUILDERS = {
    "select",
    "insert",
    "update",
    "delete",
    "text",
    "Select",
    "Insert",
    "Update",
    "Delete",
    "Table",
    "table",
    "column",
    "literal",
    "literal_column",
    "bindparam",
    "case",
    "func",
    "and_",
    "or_",
    "not_",
    "exists",
    "union",
    "union_all",
    "values",
}

#: Packages whose every module may build SQL.
SQL_PACKAGES = ("store", "migrations")

#: Single files outside those packages that may build SQL.
SQL_FILES = ("db.py", "models.py")

#: The one module that talks to Redis.
REDIS_FILE = "throttle/redis.py"


def relative(path: Path) -> str:
    """Return a file's path inside the package, as the rules above name it."""
    return path.relative_to(SOURCE).as_posix()


def module_of(path: Path) -> str:
    """Return the dotted name of a file's module: a package's ``__init__.py`` is the package."""
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(path: Path) -> str:
    """Return the package relative imports in a file start from."""
    return ".".join(path.relative_to(SOURCE.parent).with_suffix("").parts[:-1])


def import_nodes(path: Path) -> list[ast.Import | ast.ImportFrom]:
    """Return every import statement in a file, those inside functions too."""
    return [
        node
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]


def from_module(path: Path, node: ast.ImportFrom) -> str:
    """Return the module a ``from … import`` statement reads, relative ones resolved."""
    if not node.level:
        return node.module or ""
    base = package_of(path).split(".")
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(path: Path) -> set[str]:
    """Return the modules a file imports and, for ``from M import n``, each ``M.n`` too."""
    found: set[str] = set()
    for node in import_nodes(path):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        else:
            module = from_module(path, node)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def top_level(path: Path) -> set[str]:
    """Return the top-level packages a file imports (``yupnope`` for its own relative imports)."""
    return {name.split(".")[0] for name in imports_of(path)}


def sql_builders_of(path: Path) -> set[str]:
    """Return what a file imports from SQLAlchemy that builds SQL.

    The whole package (``import sqlalchemy as sa``) and its ``sql`` subpackage count as builders
    too: through them every construct is at hand.
    """
    found: set[str] = set()
    for node in import_nodes(path):
        if isinstance(node, ast.Import):
            found.update(
                alias.name
                for alias in node.names
                if alias.name == "sqlalchemy" or alias.name.startswith("sqlalchemy.sql")
            )
        elif (node.module or "").split(".")[0] == "sqlalchemy" and not node.level:
            if node.module == "sqlalchemy.sql" or (node.module or "").startswith("sqlalchemy.sql."):
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            found.update(alias.name for alias in node.names if alias.name in SQL_BUILDERS | {"sql"})
    return found


def under(path: Path, packages: tuple[str, ...], files: tuple[str, ...]) -> bool:
    """Return whether a file is in one of ``packages`` or is one of ``files``."""
    name = relative(path)
    return name in files or name.split("/")[0] in packages


def checked(packages: tuple[str, ...], files: tuple[str, ...]) -> list[Path]:
    """Return every file a rule checks: all but those it allows."""
    return [path for path in FILES if not under(path, packages, files)]


def ours(paths: list[Path]) -> list[Path]:
    """Return the files of the package's own subpackage(s), given by their paths."""
    return [path for path in FILES if any(path == p or p in path.parents for p in paths)]


# Flask


@pytest.mark.parametrize("path", checked(FLASK_PACKAGES, FLASK_FILES), ids=relative)
def test_only_the_edges_and_the_wiring_import_flask(path: Path) -> None:
    allowed = FLASK_HASHING.get(relative(path))
    used = {
        name.split(".")[0]
        for name in imports_of(path)
        if allowed is None or not (name == allowed or name.startswith(f"{allowed}."))
    }
    assert not used & set(FLASK), relative(path)


@pytest.mark.parametrize(("name", "module"), FLASK_HASHING.items())
def test_the_hash_verifier_imports_only_werkzeugs_hashing(name: str, module: str) -> None:
    used = {m for m in imports_of(SOURCE / name) if m.split(".")[0] in FLASK}
    assert used and all(m == module or m.startswith(f"{module}.") for m in used), used


@pytest.mark.parametrize("name", FLASK_FILES)
def test_each_file_allowed_flask_needs_it(name: str) -> None:
    """Keep the list exact: a file that stops importing Flask leaves the list."""
    assert top_level(SOURCE / name) & set(FLASK), f"{name} no longer imports Flask"


# SQL


@pytest.mark.parametrize("path", checked(SQL_PACKAGES, SQL_FILES), ids=relative)
def test_only_the_store_and_migrations_build_sql(path: Path) -> None:
    used = sql_builders_of(path)
    assert not used, used


@pytest.mark.parametrize("name", SQL_PACKAGES + SQL_FILES)
def test_each_place_allowed_sql_exists(name: str) -> None:
    assert (SOURCE / name).exists(), name


# Redis


@pytest.mark.parametrize("path", checked((), (REDIS_FILE,)), ids=relative)
def test_only_the_redis_counters_import_redis(path: Path) -> None:
    assert "redis" not in top_level(path), relative(path)


def test_the_redis_counters_import_redis() -> None:
    assert "redis" in top_level(SOURCE / REDIS_FILE)


# Our own modules


@pytest.mark.parametrize("path", ours([SOURCE / "security"]), ids=relative)
def test_security_imports_nothing_of_ours(path: Path) -> None:
    used = {m for m in imports_of(path) if m.split(".")[0] == "yupnope"}
    assert all(m == "yupnope.security" or m.startswith("yupnope.security.") for m in used), used


@pytest.mark.parametrize(
    "path", ours([SOURCE / "models.py", SOURCE / "db.py", SOURCE / "store"]), ids=relative
)
def test_models_store_and_db_never_import_security(path: Path) -> None:
    assert not {
        m for m in imports_of(path) if m == "yupnope.security" or m.startswith("yupnope.security.")
    }


def import_graph() -> dict[str, set[str]]:
    """Return each of our modules with the modules of ours it imports.

    ``from .x import y`` is an edge to module ``x`` (a package's ``__init__`` when ``x`` is a
    package, through which its re-exports pass), or to ``x.y`` when ``y`` is itself a module.
    The parent packages Python runs first are not edges: every module would reach the root.
    """
    modules = {module_of(path): path for path in FILES}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in import_nodes(path):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                module = from_module(path, node)
                targets = [
                    f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module
                    for alias in node.names
                ]
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one import cycle as the modules along it, the first repeated at the end, or None."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for target in sorted(graph[node]):
            if target in on_path:
                return path[path.index(target) :] + [target]
            if target not in done:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def test_the_import_graph_is_built_from_every_module() -> None:
    graph = import_graph()
    assert set(graph) == {module_of(path) for path in FILES}
    # Spot checks that relative imports and package re-exports become edges.
    assert "yupnope.wiring" in graph["yupnope"]
    assert "yupnope.throttle" in graph["yupnope.wiring"]
    assert "yupnope.throttle.policy" in graph["yupnope.throttle"]
    assert "yupnope.cli.group" in graph["yupnope.cli"]
    assert "yupnope.store" in graph["yupnope.sessions"]


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycle_among_our_modules() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


# Size


@pytest.mark.parametrize("path", FILES, ids=relative)
def test_no_module_is_over_300_lines(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{relative(path)} has {lines} lines"
