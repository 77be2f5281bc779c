"""Code shown in the README runs, docstring examples run, and the worked-example script runs."""

from __future__ import annotations

import doctest
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# docs/*.md pages are run by the tests of their own modules, with the setup their blocks assume
DOCS = [ROOT / "README.md"]
BLOCKS = [
    (path, index, block)
    for path in DOCS
    for index, block in enumerate(re.findall(r"```python\n(.*?)```", path.read_text(), re.S))
]


def _run_python(*args: str) -> subprocess.CompletedProcess[str]:
    """Run Python in a fresh interpreter, as a user would (no x64, no test settings)."""
    result = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.parametrize(
    ("path", "index", "block"), BLOCKS, ids=[f"{p.name}-{i}" for p, i, _ in BLOCKS]
)
def test_python_block_runs(path: Path, index: int, block: str) -> None:
    _run_python("-c", block)


@pytest.mark.parametrize("module", ["jaxbp.mlp", "jaxbp.updates"])
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), verbose=False)
    assert result.attempted > 0 and result.failed == 0


def test_worked_example_script_prints_published_and_computed() -> None:
    result = _run_python(str(ROOT / "examples" / "worked_example.py"))
    assert "loss: jax 0.1279264550  manual 0.1279264550" in result.stdout
    assert "published numbers are wrong" in result.stdout
