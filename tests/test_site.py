"""The documentation site builds with warnings as errors, offline, and shows what it should.

``mkdocs build --strict`` fails on any warning: a broken link or anchor, a page missing from the
nav, a docstring mkdocstrings cannot read. The build runs with every HTTP(S) proxy pointed at a
closed port, so a plugin that tried to download anything would fail it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import jaxbp

pytest.importorskip("mkdocs")
pytest.importorskip("material")
pytest.importorskip("mkdocstrings_handlers.python")

ROOT = Path(__file__).resolve().parents[1]
NO_NETWORK = {
    name: "http://127.0.0.1:9"
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
}


def _load(name: str):
    """A module of docs/ (the site's hooks and griffe extension), loaded from its file."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_included_files_get_links_to_site_pages(tmp_path: Path, monkeypatch) -> None:
    hooks = _load("hooks")
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "RESULTS.md").write_text(
        "[a](RESULTS_scaling.md) [b](../docs/speed.md#fit) [c](../examples/x.py) "
        "[d](https://example.org/y.md) [e](#machine)"
    )
    monkeypatch.setattr(hooks, "ROOT", tmp_path)
    assert hooks.included("benchmarks/RESULTS.md", "benchmarks.md") == (
        "[a](benchmarks-scaling.md) [b](speed.md#fit) [c](../examples/x.py) "
        "[d](https://example.org/y.md) [e](#machine)"
    )
    assert hooks.included("benchmarks/RESULTS.md", "worked/page.md").startswith(
        "[a](../benchmarks-scaling.md) [b](../speed.md#fit)"
    )


def test_api_entries_follow_all(tmp_path: Path, monkeypatch) -> None:
    hooks = _load("hooks")
    (tmp_path / "jaxbp").mkdir()
    (tmp_path / "jaxbp" / "__init__.py").write_text(
        "from jaxbp import manual\nfrom jaxbp.training.fit import fit, per_example_grads\n"
        "from jaxbp.model.mlp import MLP\n__version__ = '1'\n"
        "__all__ = ('MLP', '__version__', 'fit', 'manual')\n"
    )
    monkeypatch.setattr(hooks, "ROOT", tmp_path)
    assert hooks.public_api() == {
        "jaxbp.model.mlp": ["MLP"],
        "jaxbp.training.fit": ["fit"],
        "jaxbp": ["manual"],
    }
    assert "::: jaxbp.fit\n" in hooks.api_entries()


def test_napoleon_spellings_become_griffe_spellings() -> None:
    convert = _load("griffe_google").napoleon_to_griffe
    docstring = (
        "Train.\n\n    Args:\n        spec, loss: as for fit.\n        x: an array, y: not split.\n"
        "\n    Returns:\n        a, b: not a parameter line.\n\n    Example:\n        >>> 1\n        1"
    )
    assert convert(docstring) == (
        "Train.\n\n    Args:\n        spec: as for fit.\n        loss: as for fit.\n"
        "        x: an array, y: not split.\n\n    Returns:\n        a, b: not a parameter line.\n"
        "\n    Examples:\n        >>> 1\n        1"
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site_dir = tmp_path_factory.mktemp("site")
    env = {**os.environ, **NO_NETWORK, "NO_PROXY": "", "no_proxy": "", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    return site_dir


@pytest.mark.slow
def test_every_public_name_has_an_api_entry(site: Path) -> None:
    api = (site / "api" / "index.html").read_text()
    anchors = set(re.findall(r'id="(jaxbp\.[\w.]+)"', api))
    public = {f"jaxbp.{name}" for name in jaxbp.__all__ if name != "__version__"}
    assert public <= anchors, sorted(public - anchors)


@pytest.mark.slow
def test_every_worked_example_has_a_verified_page(site: Path) -> None:
    from jaxbp.worked.grading import EXAMPLES

    for name in EXAMPLES:
        page = (site / "worked" / name / "index.html").read_text()
        assert ": verified" in page, name
        assert "✗" in page, f"{name}: no published number is marked wrong"


@pytest.mark.slow
def test_home_page_is_the_readme_with_site_links(site: Path) -> None:
    home = (site / "index.html").read_text()
    readme = (ROOT / "README.md").read_text()
    for heading in re.findall(r"^## (.+)$", readme, re.M):
        assert f">{heading}<" in home, heading
    assert 'href="train/"' in home  # README's docs/train.md, as a page of the site
    assert 'href="docs/' not in home  # no link left relative to the repository root


@pytest.mark.slow
def test_no_page_loads_anything_from_another_site(site: Path) -> None:
    # web fonts, scripts or styles from a CDN would make the site depend on the network
    for page in site.rglob("*.html"):
        text = page.read_text()
        loaded = re.findall(r'<(?:link|script)[^>]+(?:href|src)="(https?://[^"]+)"', text)
        assert not loaded, (page.relative_to(site), loaded)
