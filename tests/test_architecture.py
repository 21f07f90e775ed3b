"""The shape of services/, checked: no import cycles, and the store alone touches tables.

Encryption at rest (and any other change of how rows are kept) is only safe when no module
outside services/store/ reads or writes a table itself; an import cycle makes modules that
cannot be understood, tested or loaded one without the other.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ROOT / "services"
STORE = SERVICES / "store"

# Libraries that reach a database. Only the store imports them.
DATABASE_LIBRARIES = ("sqlalchemy", "sqlmodel", "sqlite3", "psycopg", "alembic")
# SQL statements as DOSIS writes them (keywords in capitals); running one needs a database
# library too, which the import rule catches whatever the spelling.
SQL = re.compile(
    r"\b(SELECT\b.+\bFROM|INSERT\s+INTO|DELETE\s+FROM|UPDATE\s+\w+\s+SET|CREATE\s+(TEMPORARY\s+)?TABLE"
    r"|ALTER\s+TABLE|DROP\s+TABLE|TRUNCATE)\b",
    re.DOTALL,
)


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(SERVICES.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _imported(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Every module name an import statement anywhere in the module names."""
    names = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        graph[name] = {
            other for other in _imported(tree, name, path.name == "__init__.py")
            if other in modules and other != name
        }
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_among_services_modules():
    assert _cycles(_graph()) == []


def test_the_cycle_check_finds_a_cycle():
    """The check itself can fail: a two-module and a three-module loop are found."""
    graph = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert _cycles(graph) == [["a", "b"], ["c", "d", "e"]]


def _offences(path: Path) -> list[str]:
    """Why this module (outside the store) would touch a table: a database library
    imported, a table object named, or an SQL statement written."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"imports {n}" for n in names if n.split(".")[0] in DATABASE_LIBRARIES]
        elif isinstance(node, ast.Attribute) and node.attr in ("__table__", "__tablename__"):
            found.append(f"names a table ({node.attr}, line {node.lineno})")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
            found.append(f"writes SQL (line {node.lineno})")
    return found


def test_only_the_store_touches_tables():
    offenders = {
        str(path.relative_to(ROOT)): problems
        for path in sorted(SERVICES.rglob("*.py"))
        if STORE not in path.parents and (problems := _offences(path))
    }
    assert offenders == {}


def test_the_table_check_finds_sql_and_table_access(tmp_path):
    """The check itself can fail on each kind of offence."""
    samples = {
        "imports": "from sqlalchemy import select\n",
        "table": "from services.store.models import Dossier\nt = Dossier.__table__\n",
        "sql": 'QUERY = "SELECT dossier_id FROM dossiers WHERE id = 1"\n',
        "delete": 'x = "DELETE FROM dossiers"\n',
    }
    for name, text in samples.items():
        path = tmp_path / f"{name}.py"
        path.write_text(text)
        assert _offences(path), name
    clean = tmp_path / "clean.py"
    clean.write_text('from services.store.dossiers import DossierStore\nLABEL = "select a product from the list"\n')
    assert _offences(clean) == []
