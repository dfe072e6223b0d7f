"""Imports by name: what the import contract (``lint-imports``, [tool.importlinter] in
pyproject.toml) cannot see.

A module imported by name inside ``try: ... except ModuleNotFoundError`` turns a missing or
misspelled module into silently missing features, and hides the edge from the contract.
Import modules plainly; choose between implementations with data, not with import errors.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("inference_platform", "api", "workers", "cli")

# Handlers that would catch a failed import: ImportError, its subclass, or anything broader.
CATCHES_IMPORTS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _is_import_by_name(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Attribute):  # importlib.import_module(...)
        return func.attr == "import_module"
    return isinstance(func, ast.Name) and func.id in ("import_module", "__import__")


def _names(handler: ast.ExceptHandler) -> set[str]:
    if handler.type is None:  # a bare except
        return {"BaseException"}
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return {t.attr if isinstance(t, ast.Attribute) else getattr(t, "id", "") for t in types}


def swallowed_imports(source: str) -> list[int]:
    """Lines of imports by name made inside a ``try`` whose handlers catch import errors."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Try | ast.TryStar):
            continue
        if not any(_names(h) & CATCHES_IMPORTS for h in node.handlers):
            continue
        for stmt in node.body:
            lines += [n.lineno for n in ast.walk(stmt) if _is_import_by_name(n)]
    return sorted(lines)


def test_the_rule_finds_what_it_forbids() -> None:
    guarded = (
        "import importlib\n"
        "try:\n"
        "    importlib.import_module('api.views')\n"
        "except ModuleNotFoundError:\n"
        "    pass\n"
    )
    assert swallowed_imports(guarded) == [3]
    assert swallowed_imports("try:\n    __import__('x')\nexcept (OSError, ImportError):\n    1\n")
    assert swallowed_imports("try:\n    import_module('x')\nexcept:\n    raise\n") == [2]
    # A plain import by name fails loudly: allowed.
    assert swallowed_imports("import importlib\nimportlib.import_module('x')\n") == []
    assert swallowed_imports("try:\n    import_module('x')\nexcept KeyError:\n    1\n") == []


def test_no_import_by_name_swallows_errors() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _sources()
        for line in swallowed_imports(path.read_text())
    ]
    assert not found, (
        "import these modules plainly, not by name under an except that hides a missing "
        f"module: {', '.join(found)}"
    )
