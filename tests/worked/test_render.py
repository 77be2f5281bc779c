"""Markdown and LaTeX renderings against golden files whose numbers are checked by the manual chain rule.

How the goldens are checked. ``tests/golden/<example>.md`` and ``.tex`` are the renderer's output,
committed so that any change in the layout shows up as a diff (regenerate them with
``JAXBP_UPDATE_GOLDEN=1 pytest tests/worked/test_render.py`` and review the diff). They are *not* trusted:
every test below also parses the golden file and checks each number in it against values this
file computes itself from ``jaxbp.manual.backward`` (the SGD step and the forward pass after it
are written out here), never from the Trace or the renderer:

- each quantity row (Markdown) or ``% key`` equation (LaTeX): the set of keys must be exactly the
  expected set, the shape must match, and every entry must be the exact value correctly rounded
  to the rendered precision (4 significant digits);
- each chain-rule line: every factor and the result, in order;
- the header line (sizes, activations, loss, learning rate, batch) and the diagnostics table
  (gradient norms, their ratios, activation-derivative ranges, dead ReLUs; 3 digits).

The only other numbers, the largest |manual - JAX| differences, depend on the platform's
round-off; they are replaced by ``<diff>`` before the golden comparison and checked below 1e-12.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import jaxbp
from jaxbp import manual
from jaxbp.worked import grading as worked
from jaxbp.worked import render

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
UPDATE = os.environ.get("JAXBP_UPDATE_GOLDEN") == "1"
EXAMPLES = list(worked.EXAMPLES.values())
NUMBER = r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?"
DIFF = re.compile(r"(is|difference) (\d\.\de[+-]\d\d)")


def _params(example):
    biases = example.biases or [None] * len(example.weights)
    return [
        {"w": np.asarray(w, np.float64)} | ({} if b is None else {"b": np.asarray(b, np.float64)})
        for w, b in zip(example.weights, biases, strict=True)
    ]


@pytest.fixture(scope="module")
def traces() -> dict[str, jaxbp.Trace]:
    result = {}
    for example in EXAMPLES:
        spec = worked.spec_of(example)
        result[example.name] = jaxbp.explain(
            spec, example.loss, _params(example), example.x, example.y, example.learning_rate
        )
    return result


def expected_quantities(example) -> dict[str, np.ndarray]:
    """Every rendered quantity, from manual.backward, under the renderer's keys."""
    spec, params, lr = worked.spec_of(example), _params(example), example.learning_rate
    x, y = np.asarray(example.x, np.float64), np.asarray(example.y, np.float64)
    record = manual.backward(spec, example.loss, params, x, y)
    new = [{k: p[k] - lr * g[k] for k in p} for p, g in zip(params, record.grads, strict=True)]
    after = manual.forward(spec, new, x)
    names = {"x": x, "y": y, "loss": np.asarray(record.loss), "dL_da0": record.dloss_dinputs[0]}
    names["loss_new"] = np.asarray(manual.loss_value(example.loss, after.activations[-1], y))
    for i, layer in enumerate(params):
        n = i + 1
        names |= {f"W{n}": layer["w"], f"W{n}_new": new[i]["w"], f"dW{n}": record.grads[i]["w"]}
        if "b" in layer:
            names |= {f"b{n}": layer["b"], f"b{n}_new": new[i]["b"], f"db{n}": record.grads[i]["b"]}
            names[f"xw{n}"] = record.forward.products[i]
        names |= {
            f"z{n}": record.forward.pre_activations[i],
            f"a{n}": record.forward.activations[i],
            f"dL_da{n}": record.dloss_dactivations[i],
            f"da_dz{n}": record.activation_derivatives[i],
            f"delta{n}": record.deltas[i],
            f"z{n}_new": after.pre_activations[i],
            f"a{n}_new": after.activations[i],
        }
    return names


def expected_chains(example) -> dict[str, list[float]]:
    """The factors and result of every chain-rule line, in order (one example per batch)."""
    q = expected_quantities(example)
    chains = {}
    layers = len(example.sizes) - 1
    for n in range(1, layers + 1):
        below = q["x"] if n == 1 else q[f"a{n - 1}"]
        if example.activations[n - 1] == "softmax":
            pairs = zip(q[f"dL_da{n}"][0], q[f"da_dz{n}"][0][:, 0], strict=True)
            factors = [v for pair in pairs for v in pair] + [below[0, 0]]
        else:
            factors = [q[f"dL_da{n}"][0, 0], q[f"da_dz{n}"][0, 0], below[0, 0]]
        chains[f"dW{n}-chain"] = [*factors, q[f"dW{n}"][0, 0]]
        if n < layers:
            pairs = zip(q[f"delta{n + 1}"][0], q[f"W{n + 1}"][0], strict=True)
            chains[f"dL_da{n}-chain"] = [v for pair in pairs for v in pair] + [q[f"dL_da{n}"][0, 0]]
    return chains


def assert_rounded(shown: float, exact: float, digits: int, what: str) -> None:
    """``shown`` is ``exact`` correctly rounded to ``digits`` significant digits."""
    if exact == 0:
        assert shown == 0, what
        return
    unit = 10.0 ** (math.floor(math.log10(abs(exact))) - digits + 1)
    assert abs(shown - exact) <= 0.5 * unit * (1 + 1e-9), f"{what}: shown {shown}, exact {exact}"


def check_values(found: dict[str, list[list[list[float]]]], example, digits: int) -> None:
    """``found[key]`` is a list of blocks of rows of numbers, as parsed from a rendering."""
    expected = expected_quantities(example)
    assert set(found) == set(expected)
    for key, blocks in found.items():
        value = np.asarray(expected[key])
        shape = value.shape if value.ndim == 3 else (1, *np.atleast_2d(value).shape)
        if value.ndim == 0:
            shape = (1, 1, 1)
        assert (len(blocks), len(blocks[0]), len(blocks[0][0])) == shape, key
        shown = [v for block in blocks for row in block for v in row]
        for position, (s, e) in enumerate(zip(shown, value.ravel(), strict=True)):
            assert_rounded(s, float(e), digits, f"{example.name} {key}[{position}]")


def check_chains(found: dict[str, list[float]], example, digits: int) -> None:
    expected = expected_chains(example)
    assert set(found) == set(expected)
    for key, numbers in found.items():
        assert len(numbers) == len(expected[key]), key
        for s, e in zip(numbers, expected[key], strict=True):
            assert_rounded(s, float(e), digits, f"{example.name} {key}")


def check_diagnostics(rows: list[list[str]], example) -> None:
    q = expected_quantities(example)
    layers = len(example.sizes) - 1
    norms = [float(np.linalg.norm(q[f"dW{n}"])) for n in range(1, layers + 1)]
    assert len(rows) == layers
    for n, row in enumerate(rows, start=1):
        assert row[:2] == [str(n), example.activations[n - 1]]
        assert_rounded(float(row[2]), norms[n - 1], 3, f"norm {n}")
        if n < layers:
            assert_rounded(float(row[3]), norms[n - 1] / norms[n], 3, f"ratio {n}")
        derivative = q[f"da_dz{n}"]
        if derivative.ndim == 3:
            derivative = np.diagonal(derivative, axis1=1, axis2=2)
        low, high = (float(v) for v in re.findall(NUMBER, row[4]))
        assert_rounded(low, derivative.min(), 3, "derivative min")
        assert_rounded(high, derivative.max(), 3, "derivative max")
        dead = (
            np.flatnonzero(np.all(q[f"z{n}"] <= 0, axis=0))
            if example.activations[n - 1] == "relu"
            else []
        )
        assert row[5] == (", ".join(str(j + 1) for j in dead) or "none")


def header_line(example) -> str:
    return (
        f"Sizes {'-'.join(map(str, example.sizes))}, activations {', '.join(example.activations)}; "
        f"loss {example.loss}; learning rate {example.learning_rate:g}; batch of {len(example.x)}."
    )


def compare_golden(text: str, path: Path) -> None:
    for match in DIFF.finditer(text):
        assert float(match.group(2)) < 1e-12
    normalised = DIFF.sub(r"\1 <diff>", text)
    if UPDATE:
        path.write_text(normalised)
    assert normalised == path.read_text(), f"{path.name} differs; see the module docstring"


# --- Markdown ---------------------------------------------------------------------------------
def parse_markdown(text: str):
    values, chains, diagnostics = {}, {}, []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        row = re.match(r"^\| `([^`]+)` .*\| `([^`]*)` \|$", line)
        if row:
            blocks = re.findall(r"\[([^\]]*)\]", row.group(2)) or [row.group(2)]
            values[row.group(1)] = [
                [[float(v) for v in part.split()] for part in block.split(";")] for block in blocks
            ]
        chain = re.match(r"^Chain rule `([^`]+)`", line)
        if chain:
            chains[chain.group(1)] = [float(v) for v in re.findall(NUMBER, lines[index + 2])]
        if re.match(r"^\| \d+ \| [a-z]+ \|", line):
            diagnostics.append([cell.strip() for cell in line.strip("|").split("|")])
    return values, chains, diagnostics


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_markdown_golden_numbers_come_from_the_manual_chain_rule(example, traces) -> None:
    path = GOLDEN / f"{example.name}.md"
    compare_golden(render.markdown(traces[example.name], example.title), path)
    golden = path.read_text()
    values, chains, diagnostics = parse_markdown(golden)
    check_values(values, example, 4)
    check_chains(chains, example, 4)
    check_diagnostics(diagnostics, example)
    assert header_line(example) in golden.splitlines()


def test_precision_flag_gives_more_digits(traces) -> None:
    example = worked.EXAMPLES["relu-sigmoid-linear"]
    text = render.markdown(traces[example.name], example.title, digits=7)
    values, chains, _ = parse_markdown(text)
    check_values(values, example, 7)
    check_chains(chains, example, 7)
    assert "`[0.002466509 0.006648057]`" in text  # sigma'(6), sigma'(5) to 7 digits


# --- LaTeX ------------------------------------------------------------------------------------
LATEX_NUMBER = re.compile(rf"({NUMBER})(?: \\times 10\^\{{(-?\d+)\}})?")


def _latex_numbers(text: str) -> list[float]:
    return [float(m) * 10.0 ** int(e or 0) for m, e in LATEX_NUMBER.findall(text)]


def parse_latex(text: str):
    values, chains = {}, {}
    lines = text.splitlines()
    for index, line in enumerate(lines):
        key = re.match(r"^% (\S+)$", line)
        if not key:
            continue
        if key.group(1).endswith("-chain"):
            chains[key.group(1)] = _latex_numbers(lines[index + 3].split("\\quad", 1)[1])
            continue
        equation = lines[index + 2]
        bodies = re.findall(r"\\begin\{bmatrix\}(.*?)\\end\{bmatrix\}", equation)
        if not bodies:  # a scalar: the number after the last "="
            bodies = [equation.rsplit("=", 1)[1]]
        values[key.group(1)] = [
            [[*_latex_numbers(row)] for row in body.split("\\\\")] for body in bodies
        ]
    diagnostics = [
        [cell.strip().rstrip("\\").strip() for cell in line.split("&")]
        for line in lines
        if re.match(r"^\d+ & [a-z]+ &", line)
    ]
    return values, chains, diagnostics


def assert_balanced(text: str) -> None:
    """Environments nest properly, braces balance, inline math opens and closes on each line."""
    stack = []
    for kind, name in re.findall(r"\\(begin|end)\{([^}]*)\}", text):
        if kind == "begin":
            stack.append(name)
        else:
            assert stack and stack.pop() == name, f"\\end{{{name}}} does not close the open one"
    assert not stack, f"unclosed environments {stack}"
    unescaped = re.sub(
        r"\\[{}$%&_#]", "", "\n".join(line.split("%")[0] for line in text.splitlines())
    )
    depth = 0
    for char in unescaped:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0
    for line in unescaped.splitlines():
        assert line.count("$") % 2 == 0, line


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_latex_golden_numbers_come_from_the_manual_chain_rule(example, traces) -> None:
    path = GOLDEN / f"{example.name}.tex"
    compare_golden(render.latex(traces[example.name], example.title), path)
    golden = path.read_text()
    assert_balanced(golden)
    values, chains, diagnostics = parse_latex(golden)
    check_values(values, example, 4)
    check_chains(chains, example, 4)
    check_diagnostics(diagnostics, example)


def _full_latex(traces) -> str:
    example = worked.EXAMPLES["relu-sigmoid-linear"]
    spec = worked.spec_of(example)
    trace = jaxbp.explain(spec, example.loss, _params(example), example.x, example.y, 0.25, steps=5)
    return render.latex(trace, example.title, rows=render.compare(example, trace))


def test_latex_with_comparison_and_history_is_balanced(traces) -> None:
    assert_balanced(_full_latex(traces))


def test_latex_parses_with_pylatexenc(traces) -> None:
    latexwalker = pytest.importorskip("pylatexenc.latexwalker")
    for text in [_full_latex(traces), *(render.latex(t, name) for name, t in traces.items())]:
        walker = latexwalker.LatexWalker(text, tolerant_parsing=False)
        nodes, _, _ = walker.get_latex_nodes()
        environments = {
            n.environmentname for n in nodes if n.isNodeType(latexwalker.LatexEnvironmentNode)
        }
        assert environments == {"document"}


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no TeX engine installed")
def test_latex_compiles_with_pdflatex(traces, tmp_path) -> None:
    documents = {"full": _full_latex(traces)} | {
        name: render.latex(trace, name) for name, trace in traces.items()
    }
    for name, text in documents.items():
        (tmp_path / f"{name}.tex").write_text(text)
        result = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout[-2000:]
        assert (tmp_path / f"{name}.pdf").stat().st_size > 1000


# --- terminal ---------------------------------------------------------------------------------
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_terminal_text_shows_every_quantity_and_its_numbers(example, traces) -> None:
    text = render.text(traces[example.name], example.title, width=160)
    for key, value in expected_quantities(example).items():
        assert re.search(rf"^{re.escape(key)}\s", text, re.MULTILINE), key
        for number in np.ravel(value):
            shown = "0" if number == 0 else f"{number:.4g}"
            assert shown in text, f"{key}: {shown}"
    assert "verified" in text and "NOT verified" not in text


def test_comparison_table_says_the_same_in_every_format(traces) -> None:
    # Document 001 publishes 19 numbers, 2 of them wrong (docs/errata.md); the rounding rule is
    # the one the comparison applies: one unit of the last printed digit.
    example = worked.EXAMPLES["relu-2-2-1"]
    trace = traces[example.name]
    rows = render.compare(example, trace)
    count = "19 published numbers, 2 wrong (marked ✗). ✓: within one unit of the last printed digit"
    assert count in render.markdown(trace, example.title, rows=rows)
    assert (
        " ".join(render.text(trace, example.title, rows=rows, width=400).split()).count(count) == 1
    )
    latex_count = count.replace("✗", "$\\times$").replace("✓", "$\\checkmark$")
    assert latex_count in render.latex(trace, example.title, rows=rows)
    for output in (
        render.markdown(trace, example.title, rows=rows),
        render.latex(trace, example.title, rows=rows),
        render.text(trace, example.title, rows=rows, width=400),
    ):
        assert "Document 001: published against computed" in output
        assert "Back-Propagation" in output  # the document's own title
