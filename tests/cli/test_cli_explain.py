"""``jaxbp explain`` end to end: the published numbers, user network files, usage errors, --steps.

Oracles: the seed documents' records (``jaxbp.worked.grading``: which published numbers are wrong, and
their correct values), ``worked.quantities`` (the manual chain rule, called independently of the
Trace) and ``jaxbp.manual`` loops written out here.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxbp import cli, manual
from jaxbp.worked import conv_file
from jaxbp.worked import grading as worked
from jaxbp.worked.trace import Trace

EXAMPLES = list(worked.EXAMPLES.values())
ROOT = Path(__file__).resolve().parents[2]

USER_NETWORK = {
    "name": "my 3-4-2 net",
    "sizes": [3, 4, 2],
    "activations": ["tanh", "sigmoid"],
    "bias": [True, False],
    "params": [
        {
            "w": [[0.1, -0.2, 0.3, 0.5], [0.4, 0.1, -0.6, 0.2], [-0.3, 0.2, 0.1, 0.7]],
            "b": [0.1, 0.0, -0.1, 0.2],
        },
        {"w": [[0.5, -0.4], [0.3, 0.2], [-0.1, 0.6], [0.2, 0.1]]},
    ],
    "x": [[1.0, 2.0, -1.0], [0.5, -0.5, 1.5], [2.0, 0.0, 1.0]],
    "y": [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
    "loss": "binary_cross_entropy",
    "lr": 0.5,
    "units": ["x", "h", "o"],
}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["explain", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_compare_published_marks_exactly_the_wrong_numbers(example, capsys) -> None:
    code, out, _ = run(capsys, example.name, "--compare-published", "--format", "json")
    assert code == 0
    payload = json.loads(out)
    rows, names = payload["published"], worked.quantities(example)
    assert len(rows) == len(example.published)
    for row, record in zip(rows, example.published, strict=True):  # every step, in document order
        assert (row["document"], row["step"], row["symbol"]) == (
            record.document,
            record.step,
            record.symbol,
        )
        assert row["published"] == record.text
        assert row["computed"] == pytest.approx(worked.exact_value(record, names), abs=1e-12)
        assert row["matches"] == (record.erratum is None)
        if record.erratum is not None:
            assert row["explanation"] == record.erratum
            assert row["correct_text"] == record.correct
    assert Trace.from_dict(payload["trace"]).verified


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_compare_published_markdown_walks_every_document_in_order(example, capsys) -> None:
    code, out, _ = run(capsys, example.name, "--compare-published", "--format", "markdown")
    assert code == 0
    comparison = out[out.index("## Document") :]
    documents = re.findall(r"^## Document (\d{3}): published against computed$", comparison, re.M)
    assert documents == list(example.documents)
    rows = [line for line in comparison.splitlines() if line.startswith("| `")]
    assert len(rows) == len(example.published)
    for line, record in zip(rows, example.published, strict=True):
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert cells[0] == f"`{record.symbol.replace('|', '')}`" or record.symbol in line
        assert cells[1] == record.text
        if record.erratum is None:
            assert line.endswith("| ✓ |")
        else:
            assert f"✗ should be {record.correct}: " in line
            assert record.erratum.replace("|", "\\|") in line
    for document in example.documents:
        wrong = sum(r.erratum is not None for r in example.published if r.document == document)
        total = sum(r.document == document for r in example.published)
        assert f"{total} published numbers, {wrong} wrong (marked ✗)." in comparison


def test_compare_published_text_counts_the_wrong_numbers(capsys) -> None:
    example = worked.EXAMPLES["relu-sigmoid-linear"]
    code, out, _ = run(capsys, example.name, "--compare-published")
    assert code == 0
    assert out.count("✗ should be") == sum(r.erratum is not None for r in example.published)
    for section in ("Forward, layer 1", "Loss", "Backward, layer 3", "Backward, layer 1"):
        assert section in out
    assert (
        out.index("Forward, layer 3")
        < out.index("Backward, layer 3")
        < out.index("Backward, layer 1")
    )


def test_user_network_file_is_explained(tmp_path, capsys) -> None:
    path = tmp_path / "net.json"
    path.write_text(json.dumps(USER_NETWORK))
    code, out, err = run(capsys, "--network", str(path), "--format", "json")
    assert (code, err) == (0, "")
    trace = Trace.from_dict(json.loads(out))
    spec = trace.spec
    params = [{k: np.asarray(v) for k, v in layer.items()} for layer in USER_NETWORK["params"]]
    record = manual.backward(
        spec, "binary_cross_entropy", params, USER_NETWORK["x"], USER_NETWORK["y"]
    )
    assert trace.loss == pytest.approx(record.loss, rel=1e-12)
    for layer, grads in zip(trace.layers, record.grads, strict=True):
        np.testing.assert_allclose(layer.dloss_dweights, grads["w"], rtol=1e-10, atol=1e-12)
    assert trace.units == ("x", "h", "o") and trace.verified
    code, out, _ = run(capsys, "--network", str(path), "--format", "markdown")
    assert code == 0 and out.startswith("# my 3-4-2 net")
    assert "Chain rule `dW1-chain`: `∂Loss/∂w_x1h1 = Σ_n ∂Loss/∂h1_in[n] · x1[n]`" in out


def test_written_network_file_reproduces_the_builtin_example(tmp_path, capsys) -> None:
    path = tmp_path / "start.json"
    assert run(capsys, "sigmoid-softmax", "--write-network", str(path))[0] == 0
    _, from_file, _ = run(capsys, "--network", str(path), "--format", "json")
    _, builtin, _ = run(capsys, "sigmoid-softmax", "--format", "json")
    assert json.loads(from_file)["layers"] == json.loads(builtin)["layers"]


def _mutate(change):
    data = copy.deepcopy(USER_NETWORK)
    change(data)
    return data


BAD_NETWORKS = {
    "missing-key": (_mutate(lambda d: d.pop("lr")), "missing key 'lr' (the SGD learning rate"),
    "unknown-key": (
        _mutate(lambda d: d.update(lrate=0.1)),
        "unknown key 'lrate' (did you mean 'lr'?)",
    ),
    "unknown-activation": (
        _mutate(lambda d: d["activations"].__setitem__(0, "relu6")),
        "unknown activation 'relu6'; valid names are gelu, linear, relu, sigmoid, softmax, tanh.",
    ),
    "unknown-loss": (_mutate(lambda d: d.update(loss="hinge")), "unknown loss 'hinge'"),
    "wrong-weight-shape": (
        _mutate(lambda d: d["params"][1].update(w=[[0.5, -0.4, 0.1]] * 4)),
        'params[1]["w"] has shape (4, 3) but the spec expects (4, 2).',
    ),
    "wrong-x-shape": (
        _mutate(lambda d: d.update(x=[[1.0, 2.0]])),
        "x has shape (1, 2) but the network expects 3 input features; pass x of shape (3,) or (batch, 3).",
    ),
    "wrong-y-shape": (_mutate(lambda d: d.update(y=[[1.0, 0.0]])), "y has shape (1, 2)"),
    "missing-bias": (
        _mutate(lambda d: d["params"][0].pop("b")),
        "params[0] has keys ['w'] but layer 0 expects ['b', 'w']",
    ),
    "non-numeric-weight": (
        _mutate(lambda d: d["params"][0]["w"][1].__setitem__(0, "abc")),
        "params[0][\"w\"][1][0] is 'abc', not a number.",
    ),
    "non-numeric-lr": (
        _mutate(lambda d: d.update(lr="0.1")),
        "lr must be a number like 0.1, got '0.1'.",
    ),
    "boolean-input": (
        _mutate(lambda d: d["x"][0].__setitem__(1, True)),
        "x[0][1] is True, not a number.",
    ),
    "ragged-input": (
        _mutate(lambda d: d["x"].__setitem__(1, [1.0])),
        "x is not a rectangular array",
    ),
    "bad-sizes": (
        _mutate(lambda d: d.update(sizes=[3, "4", 2])),
        "sizes must be a list of positive integers",
    ),
    "activation-count": (
        _mutate(lambda d: d.update(activations=["tanh"])),
        "define 2 layers but 1 activations were given",
    ),
    "negative-lr": (_mutate(lambda d: d.update(lr=-0.1)), "learning rate must be finite and > 0"),
    "bad-units": (_mutate(lambda d: d.update(units=["x", "o"])), "units must be a list of 3 names"),
    "not-an-object": ([1, 2, 3], "expected a JSON object {...}, got a list."),
}


@pytest.mark.parametrize(("data", "message"), BAD_NETWORKS.values(), ids=BAD_NETWORKS.keys())
def test_bad_network_file_gives_one_clear_line_and_exit_2(data, message, tmp_path, capsys) -> None:
    path = tmp_path / "net.json"
    path.write_text(json.dumps(data))
    code, out, err = run(capsys, "--network", str(path))
    assert (code, out) == (2, "")
    assert err.startswith(f"jaxbp explain: error: {path}: ") or err.startswith(
        "jaxbp explain: error: "
    )
    assert message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_unreadable_or_invalid_json_file(tmp_path, capsys) -> None:
    code, _, err = run(capsys, "--network", str(tmp_path / "missing.json"))
    assert code == 2 and "cannot read network file" in err and "No such file" in err
    path = tmp_path / "broken.json"
    path.write_text('{"sizes": [1, 1],\n "x": [1 2]}')
    code, _, err = run(capsys, "--network", str(path))
    assert code == 2 and "is not valid JSON: Expecting ',' delimiter at line 2, column 10." in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "give either a built-in example"),
        (("relu-2-2-1", "--network", "x.json"), "not both or neither"),
        (("relu-9-9",), "unknown example 'relu-9-9'; built-in examples are relu-sigmoid-linear"),
        (("--network", "x.json", "--compare-published"), "--compare-published needs a built-in"),
        (("relu-2-2-1", "--precision", "0"), "--precision must be between 1 and 17"),
        (("relu-2-2-1", "--steps", "0"), "--steps must be between 1 and 100000"),
    ],
    ids=["nothing", "both", "unknown-example", "compare-network", "precision", "steps"],
)
def test_usage_errors(argv, message, capsys) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert err == f"jaxbp explain: error: {err.split('error: ', 1)[1]}" and message in err


def test_no_traceback_from_the_installed_entry_point(tmp_path) -> None:
    path = tmp_path / "net.json"
    path.write_text(json.dumps(_mutate(lambda d: d["params"][0]["w"][0].__setitem__(0, None))))
    result = subprocess.run(
        [sys.executable, "-m", "jaxbp", "explain", "--network", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"},
        timeout=120,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert (
        result.stderr
        == f'jaxbp explain: error: {path}: params[0]["w"][0][0] is None, not a number.\n'
    )


def test_steps_show_the_loss_falling_and_plot_it(tmp_path, capsys) -> None:
    example = worked.EXAMPLES["relu-sigmoid-linear"]
    png = tmp_path / "loss.png"
    code, out, _ = run(
        capsys, example.name, "--steps", "20", "--format", "markdown", "--plot", str(png)
    )
    assert code == 0
    table = re.findall(r"^\| (\d+) \| (\S+) \|$", out, re.M)
    spec, losses = worked.spec_of(example), []
    params = [
        {"w": np.asarray(w), "b": np.asarray(b)}
        for w, b in zip(example.weights, example.biases, strict=True)
    ]
    for _ in range(20):
        loss, grads = manual.backprop(spec, "half_se", params, example.x, example.y)
        losses.append(loss)
        params = [{k: p[k] - 0.25 * g[k] for k in p} for p, g in zip(params, grads, strict=True)]
    losses.append(manual.backprop(spec, "half_se", params, example.x, example.y)[0])
    assert [int(step) for step, _ in table] == list(range(21))
    np.testing.assert_allclose([float(v) for _, v in table], losses, rtol=1e-5)
    assert losses[-1] < 1e-10
    assert "loss (log scale)" in out
    pytest.importorskip("matplotlib")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_list_names_the_builtin_examples(capsys) -> None:
    code, out, _ = run(capsys, "--list")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert names == [*worked.EXAMPLES, *conv_file.CONV_EXAMPLES]


def test_text_format_without_rich_falls_back_to_markdown(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "rich.console", None)  # makes `import rich.console` fail
    code, out, err = run(capsys, "relu-2-2-1")
    assert code == 0 and out.startswith("# relu-2-2-1") and "pip install 'jaxbp[cli]'" in err


def test_a_network_with_a_non_finite_loss_is_not_verified_and_exits_1(tmp_path, capsys) -> None:
    # cross-entropy of a linear output -1: log(-1) is nan, so nothing can be verified
    network = {
        "sizes": [1, 1], "activations": ["linear"], "params": [{"w": [[-1.0]], "b": [0.0]}],
        "x": [[1.0]], "y": [[1.0]], "loss": "cross_entropy", "lr": 0.1,
    }  # fmt: skip
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(network))
    code, out, err = run(capsys, "--network", str(path), "--format", "markdown")
    assert code == 1
    assert "NOT verified" in out and "The loss (nan) or a gradient is not finite" in out
    assert err == (
        "jaxbp explain: warning: not verified: the manual chain rule and jax.grad differ by more "
        "than float64 round-off (or give nan) on loss; see the diagnostics.\n"
    )


def test_compare_published_shows_small_updates_to_six_digits(capsys) -> None:
    # b2' = 1 - 0.25 * dL/db2: the manual chain rule gives 1.0003119 and 1.0004203, which four
    # significant digits would show as 1; the documents print 1.00031 and 1.00042.
    code, out, _ = run(capsys, "relu-sigmoid-linear", "--compare-published", "--format", "markdown")
    assert code == 0
    assert "| b2 − 0.25 db2 | `[1.00031 1.00042]` |" in out
    code, out, _ = run(capsys, "relu-sigmoid-linear", "--format", "markdown")
    assert "| b2 − 0.25 db2 | `[1 1]` |" in out


# --- hostile input: one line, exit 2, nothing computed or written -------------------------------
def _one_error_line(capsys, *argv: str) -> str:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, ""), err
    assert err.startswith("jaxbp explain: error: ") and err.count("\n") == 1, err
    return err


def test_deep_nesting_is_refused_without_recursion(tmp_path, capsys) -> None:
    path = tmp_path / "nested.json"
    path.write_text("[" * 100_000)
    err = _one_error_line(capsys, "--network", str(path))
    assert f"{path}: brackets nested 100000 deep; a network file needs 5 at most" in err


def test_brackets_inside_strings_do_not_count_as_nesting(tmp_path, capsys) -> None:
    path = tmp_path / "net.json"
    path.write_text(json.dumps(USER_NETWORK | {"name": '[[[[[[[[[[[[ \\" {{{{{{{{{{'}))
    code, _, err = run(capsys, "--network", str(path), "--format", "json")
    assert (code, err) == (0, "")


def test_a_binary_file_is_refused_by_name(tmp_path, capsys) -> None:
    path = tmp_path / "picture.json"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    err = _one_error_line(capsys, "--network", str(path))
    assert f"{path} is not a UTF-8 text file" in err


def test_a_folder_as_network_is_refused(tmp_path, capsys) -> None:
    assert f"{tmp_path} is a folder" in _one_error_line(capsys, "--network", str(tmp_path))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"sizes": [3000, 3000, 2]},
            "sizes [3000, 3000, 2] is larger than jaxbp explain prints: at most 16 units per layer and 6 layers",
        ),
        (
            {"sizes": [3, *[4] * 7, 2], "activations": ["tanh"] * 7 + ["sigmoid"]},
            "at most 16 units per layer and 6 layers",
        ),
        (
            {"x": [[1.0, 2.0, -1.0]] * 17, "y": [[1.0, 0.0]] * 17},
            "x holds 17 examples; jaxbp explain prints every number of the step for at most 16",
        ),
    ],
    ids=["units", "layers", "examples"],
)
def test_networks_beyond_the_printing_limits_are_refused_before_reading_params(
    change, message, tmp_path, capsys
) -> None:
    path = tmp_path / "net.json"
    path.write_text(json.dumps(USER_NETWORK | change | {"params": "not read"}))
    assert message in _one_error_line(capsys, "--network", str(path))


def test_a_file_over_the_size_limit_is_refused(tmp_path, capsys) -> None:
    path = tmp_path / "net.json"
    path.write_text(json.dumps(USER_NETWORK | {"name": "x" * 1_000_001}))
    assert "is larger than 1,000,000 bytes" in _one_error_line(capsys, "--network", str(path))


def test_huge_weights_are_explained_with_a_warning_not_a_traceback(tmp_path, capsys) -> None:
    network = {
        "sizes": [1, 1, 1], "activations": ["sigmoid", "linear"],
        "params": [{"w": [[1e308]], "b": [0.0]}, {"w": [[0.5]], "b": [0.0]}],
        "x": [[1.0]], "y": [[0.0]], "loss": "half_se", "lr": 0.1,
    }  # fmt: skip
    path = tmp_path / "big.json"
    path.write_text(json.dumps(network))
    code, out, err = run(capsys, "--network", str(path), "--format", "markdown")
    assert code == 0 and "Traceback" not in err
    assert "the weight gradient of layer 1 is exactly zero" in out


@pytest.mark.parametrize(
    ("flag", "name", "message"),
    [
        (
            "--plot",
            "loss.txt",
            "--plot {p}: the file name must end in .png, .pdf, .svg, got '.txt'.",
        ),
        ("--plot", "", "--plot {p} is a folder; give a file name inside it."),
        ("--plot", "missing/loss.png", "--plot {p}: the folder {parent} does not exist."),
        ("--write-network", "", "--write-network {p} is a folder; give a file name inside it."),
        ("--write-network", "start.txt", "--write-network {p}: the file name must end in .json"),
    ],
    ids=["plot-suffix", "plot-folder", "plot-no-parent", "write-folder", "write-suffix"],
)
def test_output_paths_are_checked_before_anything_is_computed(
    flag, name, message, tmp_path, capsys
) -> None:
    target = tmp_path / name if name else tmp_path
    argv = ["relu-2-2-1", flag, str(target)] + (["--steps", "3"] if flag == "--plot" else [])
    err = _one_error_line(capsys, *argv)
    assert message.format(p=target, parent=target.parent) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written anywhere


def test_written_files_are_named_on_stderr(tmp_path, capsys) -> None:
    pytest.importorskip("matplotlib")
    png, start = tmp_path / "loss.png", tmp_path / "start.json"
    code, _, err = run(capsys, "relu-2-2-1", "--steps", "3", "--plot", str(png))
    assert code == 0 and err == f"wrote {png}: the loss over 3 SGD steps\n"
    code, _, err = run(capsys, "relu-2-2-1", "--write-network", str(start))
    assert code == 0 and err == f"wrote {start}: the network file of relu-2-2-1\n"
    assert json.loads(start.read_text())["sizes"] == [2, 2, 1]


def test_the_plot_title_wraps_instead_of_being_cut() -> None:
    from jaxbp.worked.render.plot import TITLE_WIDTH, wrap_title

    title = "relu-sigmoid-linear: " + worked.EXAMPLES["relu-sigmoid-linear"].title
    lines = wrap_title(title).splitlines()
    assert len(lines) > 1 and all(len(line) <= TITLE_WIDTH for line in lines)
    assert " ".join(lines) == title


def test_long_runs_report_progress_on_stderr(capsys) -> None:
    code, _, err = run(capsys, "relu-2-2-1", "--steps", "1000", "--format", "json")
    lines = err.splitlines()
    assert code == 0 and len(lines) == 10
    assert lines[0].startswith("jaxbp explain: step 100/1000, loss ")
    assert lines[-1].startswith("jaxbp explain: step 1000/1000, loss ")
    code, _, err = run(capsys, "relu-2-2-1", "--steps", "999", "--format", "json")
    assert (code, err) == (0, "")


def test_rich_markup_in_names_is_printed_as_text_or_refused(tmp_path, capsys) -> None:
    path = tmp_path / "net.json"
    path.write_text(json.dumps(USER_NETWORK | {"name": "[/bold] [red]my net"}))
    code, out, err = run(capsys, "--network", str(path))
    assert (code, err) == (0, "") and "[/bold] [red]my net" in out
    path.write_text(json.dumps(USER_NETWORK | {"units": ["[/]", "h", "o"]}))
    err = _one_error_line(capsys, "--network", str(path))
    assert "units must be a list of 3 names" in err and "a letter and up to 7" in err


def test_write_network_never_replaces_a_file(tmp_path, capsys) -> None:
    path = tmp_path / "mine.json"
    path.write_text('{"my": "edits"}')
    err = _one_error_line(capsys, "relu-2-2-1", "--write-network", str(path))
    assert "the file exists; a network file may hold your edits, so it is never replaced" in err
    assert path.read_text() == '{"my": "edits"}'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            json.dumps(USER_NETWORK)[:-1] + ', "lr": 0.1}',
            "the key 'lr' appears twice in one object",
        ),
        (
            json.dumps(USER_NETWORK).replace('"lr": 0.5', '"lr": 1' + "0" * 5000),
            "a number too long to read",
        ),
        (
            json.dumps(USER_NETWORK | {"bias": "yes"}),
            "bias must be true, false or one of them per layer",
        ),
    ],
    ids=["duplicate-key", "huge-integer", "bias-string"],
)
def test_more_malformed_network_files_name_the_file(text, message, tmp_path, capsys) -> None:
    path = tmp_path / "net.json"
    path.write_text(text)
    err = _one_error_line(capsys, "--network", str(path))
    assert err.startswith(f"jaxbp explain: error: {path}") and message in err, err


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="named pipes")
def test_a_plot_that_is_a_named_pipe_is_never_replaced(tmp_path, capsys) -> None:
    import os

    pipe = tmp_path / "loss.png"
    os.mkfifo(pipe)
    err = _one_error_line(capsys, "relu-2-2-1", "--plot", str(pipe))
    assert "is a named pipe, not a file" in err and pipe.is_fifo(), err


def test_an_unwritable_plot_folder_is_refused_before_computing(tmp_path, capsys) -> None:
    import os

    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):  # root writes anywhere: nothing to test
            pytest.skip("running as a user who can write into a read-only folder")
        err = _one_error_line(capsys, "relu-2-2-1", "--plot", str(folder / "loss.png"))
        assert "no permission to write there" in err
    finally:
        folder.chmod(0o700)


def test_a_reader_that_goes_away_gets_the_broken_pipe_line_not_exit_1() -> None:
    # rich's own handling exits 1 in silence, and 1 means "not verified" to jaxbp explain
    process = subprocess.Popen(
        [sys.executable, "-m", "jaxbp", "explain", "relu-2-2-1"],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # `jaxbp explain | head -0`: the reader is gone before the first line
    with process.stderr:
        err = process.stderr.read()
    assert process.wait(timeout=120) == 141, err
    assert err == "jaxbp explain: output closed (broken pipe); stopped, saved files whole\n", err
