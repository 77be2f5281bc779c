"""The architecture holds: the import graph of jaxbp has no circles and no chain longer than 8
modules, few modules stand directly in jaxbp/, the oracle imports nothing of the library it
checks, and every public name still imports.

The graph is read from the source with ``ast``: every ``import`` and ``from ... import`` of a
jaxbp module, at the top of a module or inside a function, except those under
``if TYPE_CHECKING:`` (type-only, never run).
"""

from __future__ import annotations

import ast
import functools
import importlib
from pathlib import Path

import pytest

import jaxbp

PACKAGE = Path(jaxbp.__file__).resolve().parent
MAX_CHAIN = 8
MAX_TOP_LEVEL = 12


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, path: Path) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit_one(other)
                continue
            visit_one(child)

    def visit_one(child: ast.AST) -> None:
        if isinstance(child, ast.Import):
            targets = [_resolve(alias.name) for alias in child.names]
        elif isinstance(child, ast.ImportFrom):
            base = child.module or ""
            if child.level:
                parts = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else _resolve(base)
                for alias in child.names
            ]
        else:
            targets = []
        found.update(t for t in targets if t and t.startswith("jaxbp") and t != module)
        visit(child)

    visit(ast.parse(path.read_text()))
    return found


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            connect(module)
    return found


def test_the_import_graph_has_no_circles() -> None:
    assert _cycles() == []


def test_no_chain_of_imports_is_longer_than_8_modules() -> None:
    @functools.cache
    def longest(module: str) -> tuple[str, ...]:
        chains = [(module, *longest(w)) for w in GRAPH[module] if w != "jaxbp"]
        return max(chains, key=len, default=(module,))

    chain = max((longest(m) for m in GRAPH), key=len)
    assert len(chain) <= MAX_CHAIN, " -> ".join(chain)


def test_few_modules_stand_directly_in_the_package() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL, top


def test_the_oracle_imports_nothing_of_the_library() -> None:
    for module, imported in GRAPH.items():
        if module.startswith("jaxbp.manual"):
            outside = {m for m in imported if not m.startswith("jaxbp.manual")}
            assert outside == set(), (module, outside)


def test_every_folder_has_a_face() -> None:
    for folder in PACKAGE.iterdir():
        if folder.is_dir() and any(folder.glob("*.py")):  # a leftover __pycache__ is no folder
            init = folder / "__init__.py"
            assert init.exists(), folder
            assert ast.get_docstring(ast.parse(init.read_text())), init


@pytest.mark.parametrize("name", jaxbp.__all__)
def test_every_public_name_imports(name: str) -> None:
    assert getattr(jaxbp, name) is not None


@pytest.mark.parametrize(
    "module",
    [
        "manual",
        "callbacks",
        "layers",
        "presets",
        "datasets",
        "sharding",
        "manual_layers",
        "model_file",
        "ops",
    ],
)
def test_the_documented_modules_import(module: str) -> None:
    imported = importlib.import_module(f"jaxbp.{module}")
    assert getattr(jaxbp, module) is imported
