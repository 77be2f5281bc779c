"""``jaxbp explain conv1d`` and conv network files end to end: the golden Markdown, whose every
number is checked against the loop oracle of ``tests/conv_oracle.py``, JSON, the formats and
flags that are refused, and bad files (exit 2, one line)."""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxbp import cli
from jaxbp.worked import conv_file
from jaxbp.worked.grading.expression import parse
from tests.conv_oracle import oracle, table_rows_match

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "conv1d.md"
LAYERS = [("conv", 3, 1, (0, 0), "relu"), ("flatten",), ("dense", "linear")]
ROUND_OFF = re.compile(r"\d\.\de[+-]\d\d")  # the differences from JAX vary between machines


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["explain", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def expected() -> dict:
    data = conv_file.CONV1D
    params = [{k: np.asarray(v, float) for k, v in p.items()} for p in data["params"]]
    x, y = np.asarray(data["x"], float), np.asarray(data["y"], float)
    return oracle(LAYERS, params, x, y, data["loss"], data["lr"])


def _four_digits(value: float) -> str:
    text = f"{value:.4g}"
    return "0" if text in ("-0", "0") else text


def test_markdown_is_the_golden_file(capsys) -> None:
    code, out, err = run(capsys, "conv1d", "--format", "markdown")
    assert code == 0, err
    assert ROUND_OFF.sub("<diff>", out) == ROUND_OFF.sub("<diff>", GOLDEN.read_text())


def test_every_number_of_the_golden_file_is_the_oracle_s(expected) -> None:
    golden = GOLDEN.read_text()
    shown = table_rows_match(golden, expected)
    assert len(shown) > 30
    for name in ("patches1", "K1", "z1", "a1", "delta1", "dK1", "dpatches1", "dL_da0", "W1_new"):
        assert name in shown, name
    assert "The loss went down from 0.245 to 0.01188." in golden


def test_the_worked_lines_add_up(expected) -> None:
    golden = GOLDEN.read_text()
    for name, index in (("z1", (0, 0, 0)), ("z3", (0, 0))):
        label = f"`{name}[{', '.join(map(str, index))}]`"
        (line,) = [line for line in golden.splitlines() if f"worked out: {label}" in line]
        expression, result = line.rsplit("`", 2)[-2].rsplit(" = ", 1)
        value = parse(expression.replace("·", "*")).evaluate({})
        assert value == pytest.approx(expected[name][index], rel=1e-12)
        assert result == _four_digits(expected[name][index])
    (line,) = [line for line in golden.splitlines() if line.startswith("col2im worked out")]
    target, symbols, numbers, total = re.findall(r"`([^`]*)`", line)
    entry = tuple(int(i) for i in re.findall(r"\d+", target.split("[")[1]))
    terms = [re.match(r"dpatches1\[(\d+), (\d+)\]", t.strip()) for t in symbols.split("+")]
    shares = [expected["dpatches1"][int(m.group(1)), int(m.group(2))] for m in terms if m]
    assert len(shares) == 3  # entry 2 of a length-6 input is read by three windows of width 3
    assert sum(shares) == pytest.approx(expected["dL_da0"][entry], rel=1e-12)
    assert [n.strip(" ()") for n in numbers.split(" + ")] == [_four_digits(s) for s in shares]
    assert total == _four_digits(expected["dL_da0"][entry])


def test_json_holds_every_number(capsys, expected) -> None:
    code, out, _ = run(capsys, "conv1d", "--format", "json")
    assert code == 0
    payload = json.loads(out)
    assert payload["loss"] == pytest.approx(expected["loss"], rel=1e-12)
    assert payload["loss_after"] == pytest.approx(expected["loss_new"], rel=1e-12)
    for layer in payload["layers"]:
        for name, value in layer["quantities"].items():
            np.testing.assert_allclose(value, expected[name], rtol=1e-12, atol=1e-14)
    assert all(check["max_abs_diff"] <= check["tolerance"] for check in payload["checks"])


def test_text_and_list(capsys) -> None:
    code, out, _ = run(capsys, "conv1d")
    assert code == 0
    assert ": verified." in " ".join(out.split()) and "patches1" in out
    code, out, _ = run(capsys, "--list")
    assert code == 0 and any(line.startswith("conv1d ") for line in out.splitlines())


def test_steps_and_plot(capsys, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    plot = tmp_path / "loss.png"
    code, out, err = run(
        capsys, "conv1d", "--steps", "3", "--format", "markdown", "--plot", str(plot)
    )
    assert code == 0, err
    assert "## Loss over 3 SGD steps" in out and "| 1 | 0.0118751 |" in out
    assert plot.stat().st_size > 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "latex"], "--format latex is not available for a conv network"),
        (["--format", "html"], "--format html is not available for a conv network"),
        (["--compare-published"], "has no published numbers"),
        (["--check", "numbers.csv"], "--check grades MLP worked examples only"),
        (["--precision", "0"], "--precision"),
    ],
    ids=["latex", "html", "published", "check", "precision"],
)
def test_refused_flags(capsys, argv, message) -> None:
    code, out, err = run(capsys, "conv1d", *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err


def test_write_network_round_trip(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "conv1d", "--write-network", "cnn.json")
    assert code == 0 and "wrote cnn.json" in err
    assert json.loads(Path("cnn.json").read_text()) == conv_file.CONV1D
    _, builtin, _ = run(capsys, "conv1d", "--format", "json")
    code, from_file, _ = run(capsys, "--network", "cnn.json", "--format", "json")
    assert code == 0 and json.loads(from_file) == json.loads(builtin)
    code, _, err = run(capsys, "conv1d", "--write-network", "cnn.json")
    assert code == 2 and "the file exists" in err


def _edit(path: str, value: object) -> dict:
    data = copy.deepcopy(conv_file.CONV1D)
    *parents, last = path.split(".")
    target: object = data
    for key in parents:
        target = target[int(key) if key.isdigit() else key]  # type: ignore[index]
    if value is KeyError:
        del target[int(last) if last.isdigit() else last]  # type: ignore[attr-defined]
    else:
        target[int(last) if last.isdigit() else last] = value  # type: ignore[index]
    return data


BAD_CONV_NETWORKS = {
    "unknown layer type": (
        _edit("layers.0.type", "conv2d"),
        'layers[0] must be an object with "type"',
    ),
    "missing kernel": (
        _edit("layers.0.kernel_size", KeyError),
        "layers[0] (conv1d) needs 'kernel_size'",
    ),
    "layer key": (_edit("layers.0.dilation", 2), "layers[0] (conv1d) has unknown key 'dilation'"),
    "stride 0": (_edit("layers.0.stride", 0), "layers[0] (conv1d): stride must be a positive int"),
    "bias not bool": (_edit("layers.2.bias", "yes"), "bias must be true or false"),
    "softmax conv": (_edit("layers.0.activation", "softmax"), "softmax activation"),
    "kernel too wide": (_edit("layers.0.kernel_size", 9), "does not fit"),
    "no flatten": (_edit("layers.1", {"type": "maxpool1d", "window": 2}), "Dense needs"),
    "ends in conv": (
        _edit("layers", [{"type": "conv1d", "features": 1, "kernel_size": 3}]),
        "end it with Flatten() or Dense",
    ),
    "w shape": (
        _edit("params.0.w", [[[1.0, 0.5]], [[0.5, 1.0]]]),
        'params[0]["w"] has shape (2, 1, 2)',
    ),
    "flatten params": (_edit("params.1", {"w": [1.0]}), "params[1] has keys ['w']"),
    "x shape": (_edit("x", [[1.0, 2.0, 3.0]]), "x has shape (1, 3)"),
    "y shape": (_edit("y", [[1.0, 2.0]]), "y has shape (1, 2)"),
    "not a number": (_edit("x.0.2.0", "a"), "x[0][2][0] is 'a', not a number"),
    "top key": (_edit("lrate", 0.1), "unknown key 'lrate' (did you mean 'lr'?)"),
    "missing lr": (_edit("lr", KeyError), "missing key 'lr'"),
    "input shape": (_edit("input_shape", [6]), "input_shape must be [length, channels]"),
    "too wide": (_edit("layers.0.features", 40), "at most 16"),
    "loss": (_edit("loss", "hinge"), "unknown loss 'hinge'"),
}


@pytest.mark.parametrize("name", list(BAD_CONV_NETWORKS))
def test_bad_conv_network_files_exit_2_with_one_line(name, capsys, tmp_path) -> None:
    data, message = BAD_CONV_NETWORKS[name]
    path = tmp_path / "cnn.json"
    path.write_text(json.dumps(data))
    code, out, err = run(capsys, "--network", str(path), "--format", "markdown")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"jaxbp explain: error: {path}: "), err
    assert message in lines[0], lines[0]


DOC = (Path(__file__).resolve().parents[2] / "docs" / "explain.md").read_text()
SECTION = DOC.split("\n## Convolution, worked")[1].split("\n## Example output")[0]


def test_docs_conv_file_runs_and_is_verified(capsys, tmp_path) -> None:
    (block,) = re.findall(r"```json\n(.*?)```", SECTION, re.S)
    path = tmp_path / "cnn.json"
    path.write_text(block)
    code, out, err = run(capsys, "--network", str(path), "--format", "json")
    assert code == 0, err
    kinds = [layer["kind"] for layer in json.loads(out)["layers"]]
    assert kinds == ["conv1d", "maxpool1d", "flatten", "dense"]


def test_docs_conv_excerpt_and_error_are_the_real_ones(capsys, tmp_path) -> None:
    (excerpt,) = re.findall(r"```markdown\n(.*?)```", SECTION, re.S)
    golden = GOLDEN.read_text()
    for line in excerpt.splitlines():
        assert line in golden, line
    (quoted,) = re.findall(r"`(jaxbp explain: error: cnn.json: [^`]*)`", SECTION)
    data, _ = BAD_CONV_NETWORKS["w shape"]
    (tmp_path / "cnn.json").write_text(json.dumps(data))
    code, _, err = run(capsys, "--network", str(tmp_path / "cnn.json"))
    assert code == 2
    assert err.strip().replace(str(tmp_path / "cnn.json"), "cnn.json") == quoted


def test_text_without_rich_falls_back_to_markdown(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "rich.console", None)  # makes `import rich.console` fail
    code, out, err = run(capsys, "conv1d")
    assert code == 0 and "rich is not installed" in err
    assert ROUND_OFF.sub("<diff>", out) == ROUND_OFF.sub("<diff>", GOLDEN.read_text())


def test_example_and_network_together_are_refused(capsys, tmp_path) -> None:
    path = tmp_path / "cnn.json"
    path.write_text(json.dumps(conv_file.CONV1D))
    code, out, err = run(capsys, "conv1d", "--network", str(path))
    assert code == 2 and out == "" and "not both or neither" in err
