"""The package's lazy public names: ``import jaxbp`` imports no JAX, every name of ``__all__``
resolves to the object its module defines, and the command line installs its signal handlers
before JAX's import begins.

Oracles: ``sys.modules`` of a fresh process, the names written in ``jaxbp/__init__.py`` (read as
text), the defining modules' own attributes, and ``signal.getsignal`` at the moment ``jax`` is
first looked up by the import system.
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import jaxbp

ROOT = Path(__file__).resolve().parents[1]


def _fresh(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120)  # fmt: skip


def _type_checking_imports() -> dict[str, str]:
    tree = ast.parse((ROOT / "jaxbp" / "__init__.py").read_text())
    (block,) = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    ]
    names = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names:
            full = f"{node.module}.{alias.name}"
            names[alias.name] = full if node.module == "jaxbp" else node.module
    return names


def test_the_name_map_the_static_imports_and_all_list_the_same_names() -> None:
    static = _type_checking_imports()
    assert static == jaxbp._SOURCES
    assert set(jaxbp.__all__) == set(static) | {"__version__"}
    assert len(set(jaxbp.__all__)) == len(jaxbp.__all__)  # each name once


@pytest.mark.parametrize("name", [n for n in jaxbp.__all__ if n != "__version__"])
def test_each_public_name_is_the_defining_modules_object(name: str) -> None:
    source = importlib.import_module(jaxbp._SOURCES[name])
    expected = source if source.__name__ == f"jaxbp.{name}" else getattr(source, name)
    assert getattr(jaxbp, name) is expected


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        jaxbp.no_such_name  # noqa: B018
    assert not hasattr(jaxbp, "no_such_name")


def test_importing_the_package_and_the_command_line_imports_no_jax() -> None:
    code = (
        "import sys, jaxbp, jaxbp.cli\n"
        "from jaxbp import manual\n"
        "print(sorted(m for m in sys.modules if m == 'jax' or m.startswith(('jax.', 'jaxlib'))))\n"
        "print(jaxbp.fit.__module__, jaxbp.MLP.__name__)\n"
    )
    result = _fresh(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "jaxbp.training.fit MLP"]


SPY = """
import runpy, signal, sys

class Spy:  # reports the SIGINT and SIGTERM handlers when `jax` is first imported
    def find_spec(self, name, path=None, target=None):
        if name == "jax" and not hasattr(self, "seen"):
            self.seen = True
            for signum in (signal.SIGINT, signal.SIGTERM):
                print(signum.name, getattr(signal.getsignal(signum), "__qualname__", None), flush=True)
        return None

sys.meta_path.insert(0, Spy())
sys.argv = ["jaxbp", *sys.argv[1:]]
runpy.run_module("jaxbp", run_name="__main__", alter_sys=True)
"""


def test_the_command_line_handles_signals_before_jax_is_imported() -> None:
    result = _fresh(SPY, "train", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == ["SIGINT Stopper.handle", "SIGTERM Stopper.handle"]
