"""The package's shape stays readable: small modules, short functions, each subpackage says its role.

The layering itself (who may import whom) is checked by import-linter (``lint-imports``,
``[tool.importlinter]`` in pyproject.toml), run by ``.ci/run`` before the tests.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_camaudit"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

LONG_FUNCTIONS: dict[str, str] = {}
"""``module:function`` allowed past :data:`MAX_FUNCTION_LINES`, with the reason."""


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "templates" not in p.parts)


def test_no_module_is_longer_than_the_limit():
    long = {str(p.relative_to(PACKAGE)): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by role): {long}"


def test_no_function_is_longer_than_the_limit_unless_listed_with_a_reason():
    long = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno is not None:
                n = node.end_lineno - node.lineno + 1
                key = f"{path.relative_to(PACKAGE).with_suffix('')}:{node.name}"
                if n > MAX_FUNCTION_LINES and key not in LONG_FUNCTIONS:
                    long[key] = n
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


@pytest.mark.parametrize("package", sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")))
def test_every_subpackage_says_what_it_owns_and_what_it_may_import(package):
    doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text())) or ""
    assert len(doc.split()) >= 15, f"pytest_camaudit.{package} needs a docstring saying what it owns"
    if package not in ("zoo", "report"):
        assert "import" in doc, f"pytest_camaudit.{package}'s docstring should say what it may import"
