"""The package's shape: small modules and classes, no import cycles, layers that keep to their
imports, subpackages that say what they hold; the README's field table is the field table's."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from carnn_pyfunc.contract.fields import markdown_table
from tests.helpers import ROOT

PACKAGE = ROOT / "carnn_pyfunc"
MODULES = sorted(PACKAGE.rglob("*.py"))
SUBPACKAGES = ("contract", "model", "training", "registry", "cli", "team", "batch")
# What each layer may import of carnn (beyond itself); top-level modules are shared leaves.
ALLOWED = {
    "contract": {"versions", "formats"},
    "model": {"contract", "config", "versions", "data", "formats"},
    "training": {"contract", "model", "config", "data", "metrics", "versions", "monitoring"},
    "monitoring": {"contract", "data", "metrics"},
    "registry": {"data", "metrics", "processes", "formats"},
    "team": {"processes"},
    "batch": {"contract"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The carnn modules a module imports (at any depth in the file: lazy imports count)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("carnn"):
            for alias in node.names:  # `from carnn_pyfunc import data` names a module
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in NAMES else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("carnn")}
    return found


NAMES = {module_name(p) for p in MODULES}
GRAPH = {module_name(p): imports_of(p) & NAMES for p in MODULES}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_over_300_lines_and_no_class_over_150(path):
    lines = path.read_text().splitlines()
    assert len(lines) <= 300
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef):
            assert node.end_lineno - node.lineno + 1 <= 150, node.name


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A path that comes back to where it started, or None (depth-first search)."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return [*path, target]
            if target not in state and (cycle := visit(target, [*path, target])):
                return cycle
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node, [node])):
            return cycle
    return None


def test_no_import_cycles():
    assert find_cycle(GRAPH) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


@pytest.mark.parametrize("layer", list(ALLOWED))
def test_each_layer_imports_only_what_its_docstring_allows(layer):
    prefix = f"carnn_pyfunc.{layer}"
    for module, targets in GRAPH.items():
        if module == prefix or module.startswith(prefix + "."):
            for target in targets:
                top = target.split(".")[1] if target.count(".") else target
                assert top == layer or top in ALLOWED[layer], f"{module} imports {target}"


@pytest.mark.parametrize("subpackage", SUBPACKAGES)
def test_each_subpackage_says_what_it_holds_and_may_import(subpackage):
    doc = ast.get_docstring(ast.parse((PACKAGE / subpackage / "__init__.py").read_text()))
    assert doc
    assert "May import" in doc
    for module in (PACKAGE / subpackage).glob("*.py"):
        if module.name not in ("__init__.py", "__main__.py"):
            assert f"``{module.stem}``" in doc, (
                f"{subpackage}/__init__.py does not name {module.stem}"
            )
            assert ast.get_docstring(ast.parse(module.read_text())), module


def test_readme_field_table_is_generated_from_the_field_table():
    assert markdown_table() in (ROOT / "README.md").read_text()
