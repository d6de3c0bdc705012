"""The test tree's layout: what more than one test package uses lives in ``tests/support/``
(fixtures in the root ``conftest.py``), so a test module imports from its own package and from
``tests.support`` only, and never a name from a ``conftest`` (pytest finds fixtures by itself).

Each module under ``tests/`` is read with ``ast``; every import, at any depth, is resolved to a
dotted name (relative imports against the module's own package) and checked.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
SHARED = "support"


def _package(parts: tuple[str, ...]) -> str:
    """The test package of a module (``tests.api.test_x`` is in ``api``); ``""`` at the root."""
    return parts[1] if len(parts) > 2 else ""


def _imported(tree: ast.AST, parts: tuple[str, ...]) -> list[tuple[int, str]]:
    """Every module an import names, with its line: ``from a.b import c`` names ``a.b`` and
    ``a.b.c`` (``c`` may be a module), ``import a.b`` names ``a.b``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = parts[: len(parts) - node.level]
                base = ".".join(anchor + ((node.module,) if node.module else ()))
            else:
                base = node.module or ""
            found.append((node.lineno, base))
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
    return found


def violations(source: str, parts: tuple[str, ...]) -> list[str]:
    """What the module ``parts`` (``("tests", "api", "test_x")``) imports against the layout."""
    own = _package(parts)
    out: dict[int, str] = {}
    for line, name in _imported(ast.parse(source), parts):
        dotted = name.split(".")
        if "conftest" in dotted:
            out.setdefault(line, f"line {line}: imports from a conftest ({name})")
        elif dotted[0] == "tests" and len(dotted) > 1:
            package = dotted[1] if (TESTS / dotted[1]).is_dir() else ""
            if package and package not in (own, SHARED):
                out.setdefault(line, f"line {line}: imports another test package ({name})")
    return [out[line] for line in sorted(out)]


def test_test_modules_import_only_their_own_package_and_support_and_no_conftest() -> None:
    found: dict[str, list[str]] = {}
    modules = sorted(p for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts)
    assert len(modules) > 100
    for path in modules:
        relative = path.relative_to(TESTS.parent).with_suffix("")
        parts = tuple(relative.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        bad = violations(path.read_text(encoding="utf-8"), parts)
        if bad:
            found[str(relative)] = bad
    assert not found, found


def test_the_layout_check_sees_each_kind_of_import() -> None:
    module = ("tests", "api", "test_x")
    assert violations("from tests.sync.test_sync import TENANT\n", module)
    assert violations("import tests.chaos.truth\n", module)
    assert violations("from tests import domain\n", module)
    assert violations("def f():\n    from tests.store.conftest import pg_url\n", module)
    assert violations("from tests.api.conftest import thing\n", module)
    assert violations("from tests.api import conftest\n", module)
    assert violations("from .conftest import thing\n", module)
    assert violations("from ..sync import test_sync\n", module)
    assert not violations("from tests.support.api import Live\n", ("tests", "conftest"))
    assert not violations("from tests.api.harness import Live\n", module)
    assert not violations("from tests.support import factories\n", module)
    assert not violations("from tests.support.sync import TENANT\n", ("tests", "support", "x"))
    assert not violations("from carebridge.api import app\n", module)
