"""Every code block of the documentation runs on its own, docstring examples run, and so does the
worked-example script.

The pages are the README and every ``docs/**/*.md``, found here rather than listed, so a new page
is checked as soon as it exists. Each fenced ``python`` block runs in a fresh interpreter and each
``bash``/``sh`` block in a fresh ``bash -eo pipefail``, as a reader would paste it: nothing from an
earlier block, no test settings (float32, as a user gets), in a scratch folder that links the
repository's top-level files, so that ``python examples/x.py`` works and whatever a block writes
lands in the scratch folder. ``jaxbp`` on the command line is the checkout's (``python -m jaxbp``);
``pip`` refuses to run, so that no block installs anything into the test's environment.

A block that cannot run there (it installs packages, needs several devices, a GPU, or files from
an earlier command) carries a comment on the line before its fence saying why:
``<!-- skip: installs packages -->``. Blocks in other languages and unlabelled blocks (sample
output) are not run.
"""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import pytest

import jaxbp

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
RUN = {"python": "python", "bash": "bash", "sh": "bash"}
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
SKIP = re.compile(r"<!--\s*skip:\s*(.+?)\s*-->\s*\Z")


class Block(NamedTuple):
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    skip: str | None  # the reason given in a skip comment


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page`` in a language that runs, with their skip reasons."""
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        language = match.group(1).lower()
        if language in RUN:
            before = text[: match.start()].rstrip()
            skip = SKIP.search(before)
            line = text.count("\n", 0, match.start()) + 1
            found.append(Block(page, line, language, match.group(2), skip and skip.group(1)))
    return found


BLOCKS = [block for page in PAGES for block in blocks(page)]
# a shell block starts one or more Python processes (each imports JAX): seconds to minutes
PARAMS = [
    pytest.param(
        block,
        id=f"{block.page.relative_to(ROOT)}:{block.line}",
        marks=[pytest.mark.slow] if block.language != "python" else [],
    )
    for block in BLOCKS
]


def _scratch(tmp_path: Path) -> Path:
    """A folder that looks like the repository's root to a block, and a ``jaxbp`` command."""
    work = tmp_path / "work"
    work.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in {".git", "runs"}:
            (work / entry.name).symlink_to(entry)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    commands = {
        "jaxbp": f'exec "{sys.executable}" -m jaxbp "$@"',
        # never install into the test's environment: such a block needs a skip comment
        "pip": 'echo "pip: a block that installs packages needs <!-- skip: ... -->" >&2; exit 1',
    }
    for name, body in commands.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return work


def _run(args: list[str], cwd: Path, bin_dir: Path | None = None, timeout: int = 300) -> str:
    """Run ``args`` as a user would (checkout on the path, no x64); its stdout; fail on error."""
    # `python -m pip install` only pretends, and looks at no package index
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PIP_DRY_RUN": "1", "PIP_NO_INDEX": "1"}
    if bin_dir is not None:
        env["PATH"] = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), env["PATH"]])
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout:\n{result.stdout[-2000:]}\nstderr:\n{result.stderr[-3000:]}"
    )
    return result.stdout


@pytest.mark.parametrize("block", PARAMS)
def test_code_block_runs_on_its_own(block: Block, tmp_path: Path) -> None:
    if block.skip:
        pytest.skip(f"{block.page.relative_to(ROOT)}:{block.line}: {block.skip}")
    work = _scratch(tmp_path)
    script = tmp_path / f"block.{'py' if block.language == 'python' else 'sh'}"
    script.write_text(block.code)
    if block.language == "python":
        _run([sys.executable, str(script)], work)
    else:
        _run(["bash", "-eo", "pipefail", str(script)], work, bin_dir=tmp_path / "bin")


def test_the_block_finder_sees_skips_languages_and_unlabelled_blocks(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Text.\n\n```python\nprint(1)\n```\n\n<!-- skip: needs 8 devices -->\n```bash\nls\n```\n"
        "\n```\nsample output\n```\n\n```json\n{}\n```\n\n```sh\necho 2\n```\n"
    )
    found = blocks(page)
    assert [(b.line, b.language, b.code, b.skip) for b in found] == [
        (3, "python", "print(1)\n", None),
        (8, "bash", "ls\n", "needs 8 devices"),
        (20, "sh", "echo 2\n", None),
    ]


def test_every_page_is_found() -> None:
    names = {str(page.relative_to(ROOT)) for page in PAGES}
    assert {"README.md", "docs/speed.md", "docs/seed-documents.md"} <= names


def _modules_with_examples() -> list[str]:
    """Every module of jaxbp, subpackages included, whose docstrings hold a doctest example."""
    modules = pkgutil.walk_packages(jaxbp.__path__, "jaxbp.")
    # __main__ runs the command line when imported
    names = ["jaxbp", *(info.name for info in modules if not info.name.endswith(".__main__"))]
    return sorted(
        name
        for name in names
        if any(t.examples for t in doctest.DocTestFinder().find(importlib.import_module(name)))
    )


MODULES_WITH_EXAMPLES = _modules_with_examples()


def test_docstring_examples_exist() -> None:
    assert "jaxbp.model.mlp" in MODULES_WITH_EXAMPLES


@pytest.mark.parametrize("name", MODULES_WITH_EXAMPLES)
def test_docstring_examples_run(name: str) -> None:
    module: ModuleType = importlib.import_module(name)
    result = doctest.testmod(module, verbose=False)
    assert result.attempted > 0 and result.failed == 0


def test_worked_example_script_prints_published_and_computed(tmp_path: Path) -> None:
    stdout = _run([sys.executable, str(ROOT / "examples" / "worked_example.py")], tmp_path)
    assert "loss: jax 0.1279264550  manual 0.1279264550" in stdout
    assert "published numbers are wrong" in stdout
