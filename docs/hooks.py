"""MkDocs hooks: the pages of the site that are generated from the project itself at build time.

- ``<!-- include: PATH -->`` in a page: the repository file PATH (the README on the home page, the
  benchmark results), with its links rewritten from the repository to the site.
- ``api.md``: one ``::: jaxbp.NAME`` entry per name of ``jaxbp.__all__``, read from
  ``jaxbp/__init__.py`` without importing it, grouped by the module each name is imported from;
  mkdocstrings then renders each entry from its docstring.
- ``worked/<example>.md``: the Markdown that ``python -m jaxbp explain <example>
  --compare-published --format markdown`` prints, for every built-in worked example
  (``conv1d``, which has no published numbers, without ``--compare-published``).

Nothing here reaches the network: the README and ``__all__`` are read from the checkout, and the
worked examples are computed by the checkout's own ``jaxbp``.
"""

from __future__ import annotations

import ast
import os
import posixpath
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = re.compile(r"<!-- include: (\S+) -->")
API_MARKER = "<!-- one entry per name of jaxbp.__all__, generated at build time -->"
# repository files that are pages of the site, for the links of included files
SITE_PAGES = {
    "README.md": "index.md",
    "benchmarks/RESULTS.md": "benchmarks.md",
    "benchmarks/RESULTS_scaling.md": "benchmarks-scaling.md",
    "benchmarks/RESULTS_streaming.md": "benchmarks-streaming.md",
    "benchmarks/RESULTS_mnist1d.md": "benchmarks-mnist1d.md",
}


def _jaxbp_command(*args: str) -> str:
    """Run ``python -m jaxbp ARGS`` with the checkout's jaxbp first on the path; its stdout."""
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "jaxbp", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": pythonpath},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"python -m jaxbp {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def worked_example_names() -> list[str]:
    """The built-in worked examples, as ``jaxbp explain --list`` names them (first column)."""
    return [line.split()[0] for line in _jaxbp_command("explain", "--list").splitlines() if line]


def on_config(config: Any) -> Any:
    """Put the worked-example pages first in the nav's "Worked examples" section."""
    pages = [{name: f"worked/{name}.md"} for name in worked_example_names()]
    for section in config["nav"] or []:
        if isinstance(section, dict) and "Worked examples" in section:
            section["Worked examples"][:0] = pages
    return config


def on_files(files: Files, config: Any) -> Files:
    """Add the worked-example pages that ``on_config`` put in the nav, rendered by ``jaxbp explain``."""
    names = [
        name
        for section in config["nav"] or []
        if isinstance(section, dict) and "Worked examples" in section
        for entry in section["Worked examples"]
        if isinstance(entry, dict)
        for name, page in entry.items()
        if page == f"worked/{name}.md"
    ]
    listing = _jaxbp_command("explain", "--list").splitlines()
    # the seed documents' examples name their documents; the conv example has none to compare
    published = {line.split()[0] for line in listing if "(documents" in line}
    with ThreadPoolExecutor(max_workers=len(names) or 1) as pool:
        pages = pool.map(
            lambda name: _jaxbp_command(
                "explain",
                name,
                *(["--compare-published"] if name in published else []),
                "--format",
                "markdown",
            ),
            names,
        )
        for name, markdown in zip(names, pages, strict=True):
            files.append(File.generated(config, f"worked/{name}.md", content=markdown))
    return files


def included(path: str, page_path: str) -> str:
    """The repository file ``path`` with its relative links rewritten for the page ``page_path``.

    A link is resolved against the included file's folder; a target under ``docs/`` or listed in
    ``SITE_PAGES`` becomes a link to that page, relative to ``page_path``. Other links stay as they
    are, so that ``mkdocs build --strict`` reports any that the site cannot resolve.
    """
    folder = posixpath.dirname(path)
    page_folder = posixpath.dirname(page_path)

    def relink(match: re.Match[str]) -> str:
        text, target = match.group(1), match.group(2)
        if "://" in target or target.startswith(("#", "mailto:")):
            return match.group(0)
        file_part, _, anchor = target.partition("#")
        in_repo = posixpath.normpath(posixpath.join(folder, file_part))
        page = SITE_PAGES.get(in_repo)
        if page is None and in_repo.startswith("docs/"):
            page = in_repo.removeprefix("docs/")
        if page is None:
            return match.group(0)
        relative = posixpath.relpath(page, page_folder or ".")
        return f"[{text}]({relative}{'#' + anchor if anchor else ''})"

    return re.sub(r"\[([^\]]*)\]\(([^)\s]+)\)", relink, (ROOT / path).read_text())


def public_api() -> dict[str, list[str]]:
    """``jaxbp.__all__`` grouped by the module each name comes from, in the order of ``__all__``.

    Read with ``ast`` from ``jaxbp/__init__.py``: a name imported as ``from jaxbp.training.fit import fit``
    (at the top level or under ``if TYPE_CHECKING:``) goes under ``jaxbp.training.fit``; a submodule (``from jaxbp import manual``) and anything defined in
    ``jaxbp/__init__.py`` itself go under ``jaxbp``. ``__version__`` is left out.
    """
    tree = ast.parse((ROOT / "jaxbp" / "__init__.py").read_text())
    source: dict[str, str] = {}
    exported: list[str] = []
    for node in ast.walk(tree):  # the imports may sit under `if TYPE_CHECKING:`
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                source[alias.asname or alias.name] = node.module
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(target, ast.Name) and target.id == "__all__" for target in targets):
            exported = list(ast.literal_eval(node.value))  # type: ignore[union-attr]
    if not exported:
        raise RuntimeError("jaxbp/__init__.py has no literal __all__ to build the API page from")
    groups: dict[str, list[str]] = {}
    for name in exported:
        if name != "__version__":
            groups.setdefault(source.get(name, "jaxbp"), []).append(name)
    # modules in alphabetical order, then the submodules themselves
    return dict(sorted(groups.items(), key=lambda item: (item[0] == "jaxbp", item[0])))


def api_entries() -> str:
    """The API page body: a section per source module, a ``::: jaxbp.NAME`` entry per name."""
    lines = []
    for module, names in public_api().items():
        title = "Submodules" if module == "jaxbp" else f"From `{module}`"
        lines.append(f"## {title}\n")
        lines.extend(f"::: jaxbp.{name}\n" for name in names)
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Fill in included repository files and the entries of the API page."""
    markdown = INCLUDE.sub(lambda m: included(m.group(1), page.file.src_uri), markdown)
    if API_MARKER in markdown:
        markdown = markdown.replace(API_MARKER, api_entries())
    return markdown
