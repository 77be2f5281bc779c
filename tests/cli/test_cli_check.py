"""``jaxbp explain --check FILE.csv`` grades hand-computed numbers; ``"frozen"`` parameters.

Oracles: every right value comes from ``jaxbp.manual`` (the chain rule in NumPy) or ``jax.grad``
called here; every wrong value is made from it by the slip under test, written out in the test
(a sign flipped, the transposed entry, ``W - lr*lr*dW``, ``delta`` without ``f'(z)``, ...).
"""

from __future__ import annotations

import csv
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp import cli, manual
from jaxbp.model.mlp import MLP
from jaxbp.worked import grading as worked
from jaxbp.worked.trace import Trace

NETWORK = {
    "name": "2-3-2 sigmoid / linear",
    "sizes": [2, 3, 2],
    "activations": ["sigmoid", "linear"],
    "params": [
        {"w": [[0.1, -0.4, 0.3], [0.5, 0.2, -0.6]], "b": [0.1, -0.2, 0.05]},
        {"w": [[0.7, -0.3], [0.2, 0.4], [-0.5, 0.6]], "b": [0.3, -0.1]},
    ],
    "x": [[1.5, -2.0]],
    "y": [[1.0, 0.0]],
    "loss": "half_se",
    "lr": 0.5,
}
SPEC = MLP(sizes=(2, 3, 2), activations=("sigmoid", "linear"))


def _manual() -> dict[str, np.ndarray | float]:
    """The right numbers, by the manual chain rule and one SGD step written here."""
    params = [{k: np.asarray(v) for k, v in layer.items()} for layer in NETWORK["params"]]
    x, y = np.asarray(NETWORK["x"]), np.asarray(NETWORK["y"])
    record = manual.backward(SPEC, "half_se", params, x, y)
    lr = NETWORK["lr"]
    new = [
        {k: v - lr * record.grads[i][k] for k, v in layer.items()} for i, layer in enumerate(params)
    ]
    after = manual.forward(SPEC, new, x)
    return {
        "x": x,
        "W1": params[0]["w"],
        "W2": params[1]["w"],
        "z1": record.forward.pre_activations[0],
        "a1": record.forward.activations[0],
        "a2": record.forward.activations[1],
        "y": y,
        "loss": record.loss,
        "dL_da1": record.dloss_dactivations[0],
        "delta2": record.deltas[1],
        "dW1": record.grads[0]["w"],
        "dW2": record.grads[1]["w"],
        "db2": record.grads[1]["b"],
        "W1_new": new[0]["w"],
        "W2_new": new[1]["w"],
        "b1_new": new[0]["b"],
        "loss_new": manual.loss_value("half_se", after.activations[-1], y),
    }


RIGHT = _manual()


def _write(tmp_path, rows: list[tuple[str, str, str]], name: str = "numbers.csv"):
    path = tmp_path / name
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["quantity", "value", "symbol"])
        writer.writerows(rows)
    return path


def _network(tmp_path, **changes) -> str:
    path = tmp_path / "net.json"
    path.write_text(json.dumps(NETWORK | changes))
    return str(path)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["explain", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_right_numbers_all_match_and_exit_0(tmp_path, capsys) -> None:
    r = RIGHT
    rows = [
        ("z1[0, 0]", f"{r['z1'][0, 0]:.6f}", "h1_in"),
        ("a1[0, 2]", f"{r['a1'][0, 2]:.5f}", "h3_out"),
        ("loss", f"{r['loss']:.4f}", "E"),
        ("0.5*(y[0,0]-a2[0,0])**2 + 0.5*(y[0,1]-a2[0,1])**2", f"{r['loss']:.6f}", "E again"),
        ("dW2[1, 0]", f"{r['dW2'][1, 0]:.6e}", "dE/dw"),
        ("W1_new[0, 1]", f"{r['W1_new'][0, 1]:.6f}", "w'"),
        ("b1_new[2]", f"{r['b1_new'][2]:.6f}", "b3'"),
        ("W2[0, 0] - W2_new[0, 0]", f"{r['W2'][0, 0] - r['W2_new'][0, 0]:.6f}", "step"),
        ("loss_new", f"{r['loss_new']:.6f}", "E after"),
    ]
    path = _write(tmp_path, rows)
    code, out, err = run(
        capsys, "--network", _network(tmp_path), "--check", str(path), "--format", "json"
    )
    assert (code, err) == (0, "")
    payload = json.loads(out)
    assert Trace.from_dict(payload["trace"]).verified
    assert [entry["quantity"] for entry in payload["published"]] == [row[0] for row in rows]
    assert all(entry["matches"] for entry in payload["published"])
    assert payload["published"][2]["computed"] == pytest.approx(r["loss"], abs=1e-12)


def _slips() -> list[tuple[str, str, float, str]]:
    """(quantity, id, wrong value made by the slip, the mistake it must be named)."""
    r, lr = RIGHT, NETWORK["lr"]
    # delta1 without sigmoid'(z1): dL/da1 itself, so dW1 = x^T dL/da1
    dw1_no_derivative = (r["x"].T @ r["dL_da1"])[0, 1]
    return [
        ("dW1[0, 1]", "sign", -r["dW1"][0, 1], "sign"),
        ("W1_new[0, 1]", "transposed", r["W1_new"][1, 0], "transposed index"),
        ("W2_new[2, 1]", "lr-twice", r["W2"][2, 1] - lr * lr * r["dW2"][2, 1], "learning rate"),
        ("W2_new[1, 0]", "step-twice", r["W2"][1, 0] - 2 * lr * r["dW2"][1, 0], "learning rate"),
        ("W2_new[0, 1]", "lr-left-out", r["W2"][0, 1] - r["dW2"][0, 1], "learning rate"),
        ("dW1[0, 1]", "no-derivative", dw1_no_derivative, "activation derivative"),
        ("loss", "fewer-digits", r["loss"] + 4e-5, "rounding"),
        ("dW2[0, 0]", "arithmetic", 1.5 * r["dW2"][0, 0], "arithmetic"),
    ]


@pytest.mark.parametrize(
    ("quantity", "slip", "wrong", "mistake"), _slips(), ids=[s[1] for s in _slips()]
)
def test_each_kind_of_slip_is_named_with_the_correct_value(
    quantity, slip, wrong, mistake, tmp_path, capsys
) -> None:
    path = _write(
        tmp_path, [("loss", f"{RIGHT['loss']:.6f}", "E"), (quantity, f"{wrong:.6f}", slip)]
    )
    code, out, err = run(
        capsys, "--network", _network(tmp_path), "--check", str(path), "--format", "json"
    )
    assert code == 1
    assert err == f"jaxbp explain: 1 of 2 numbers in {path} are wrong.\n"
    right, entry = json.loads(out)["published"]
    assert right["matches"] and right["mistake"] == ""
    assert not entry["matches"] and entry["mistake"] == mistake, entry["explanation"]
    assert entry["quantity"] == quantity and entry["symbol"] == slip
    exact = worked.expression.parse(quantity).evaluate(RIGHT)
    assert entry["computed"] == pytest.approx(exact, abs=1e-12)
    assert entry["correct_text"] == f"{exact:.6f}"


def test_rounded_intermediates_carried_forward_are_named(tmp_path, capsys) -> None:
    # a hand computation that keeps 2 decimals at every step of the forward pass
    # and writes the loss, computed from them, to 6 decimals
    x, params = np.asarray(NETWORK["x"]), NETWORK["params"]
    z1 = np.round(np.round(x @ np.asarray(params[0]["w"]), 2) + params[0]["b"], 2)
    a1 = np.round(1 / (1 + np.exp(-z1)), 2)
    a2 = np.round(np.round(a1 @ np.asarray(params[1]["w"]), 2) + params[1]["b"], 2)
    loss = 0.5 * np.sum((a2 - np.asarray(NETWORK["y"])) ** 2)
    assert abs(loss - RIGHT["loss"]) > 1e-4  # wrong at the 6 decimals written
    path = _write(tmp_path, [("loss", f"{loss:.6f}", "E")])
    code, out, _ = run(
        capsys, "--network", _network(tmp_path), "--check", str(path), "--format", "json"
    )
    (entry,) = json.loads(out)["published"]
    assert code == 1 and entry["mistake"] == "rounding"
    assert "rounded to 2 decimals" in entry["explanation"]


def test_text_output_shows_the_correct_value_and_the_diagnosis(tmp_path, capsys) -> None:
    path = _write(tmp_path, [("dW1[0, 1]", f"{-RIGHT['dW1'][0, 1]:.6f}", "dE/dw12")])
    code, out, _ = run(capsys, "--network", _network(tmp_path), "--check", str(path))
    assert code == 1
    words = " ".join(out.split())  # the table wraps the reason over lines
    assert "numbers.csv: written against computed" in words
    assert f"should be {RIGHT['dW1'][0, 1]:.6f}: sign flipped" in words


def test_check_works_for_a_builtin_example_like_compare_published(tmp_path, capsys) -> None:
    example = worked.EXAMPLES["relu-2-2-1"]
    rows = [(r.expression, r.text, r.symbol) for r in example.published]
    path = _write(tmp_path, rows, "document-001.csv")
    code, out, _ = run(capsys, example.name, "--check", str(path), "--format", "json")
    entries = json.loads(out)["published"]
    assert code == 1
    # A student's number must also hold 2 significant digits of the correct value. The document
    # writes two hidden-layer steps with one: lr*i1*Delta*w5 = 0.05*2*(-0.7963)*0.11 = -0.0087593
    # as -0.008 and lr*i1*Delta*w6 = 0.05*2*(-0.7963)*0.12 = -0.0095556 as -0.009, each more
    # than 1e-4 (one unit of the second significant digit) off: wrong for a student.
    short = {"W1[0, 0] - W1_new[0, 0]": "-0.0088", "W1[0, 1] - W1_new[0, 1]": "-0.0096"}
    assert [e["matches"] for e in entries] == [
        r.erratum is None and r.expression not in short for r in example.published
    ]
    assert [e["correct_text"] for e in entries if not e["matches"]] == [
        r.correct or short[r.expression]
        for r in example.published
        if r.erratum or r.expression in short
    ]
    assert [e["mistake"] for e in entries if not e["matches"]] == [
        "rounding" if r.expression in short else "arithmetic"
        for r in example.published
        if r.erratum or r.expression in short
    ]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("b3[0]", "1.0", "")], "row 2: quantity 'b3[0]': unknown name 'b3'"),
        (
            [("loss", "0.1", ""), ("W1[5, 0]", "1", "")],
            r"row 3: quantity 'W1[5, 0]': index [5, 0] is out of range",
        ),
        ([("__import__('os').getcwd()", "1", "")], "Call is not allowed"),
        ([("loss", "0,12", "")], "row 2: value '0,12' is not a number"),
        ([("z1", "1", "")], "row 2: quantity 'z1' is an array of shape (1, 3)"),
    ],
    ids=["unknown-name", "out-of-range", "call", "decimal-comma", "array"],
)
def test_a_bad_numbers_file_is_one_line_naming_file_and_row_exit_2(
    rows, message, tmp_path, capsys
) -> None:
    path = _write(tmp_path, rows)
    code, out, err = run(capsys, "--network", _network(tmp_path), "--check", str(path))
    assert (code, out) == (2, "")
    assert err.startswith(f"jaxbp explain: error: {path}, row ") and err.count("\n") == 1
    assert message in err, err


def test_a_missing_numbers_file_is_refused_before_computing(tmp_path, capsys) -> None:
    code, out, err = run(capsys, "relu-2-2-1", "--check", str(tmp_path / "none.csv"))
    assert (code, out) == (2, "") and "cannot read numbers file" in err


def test_check_and_compare_published_together_are_refused(tmp_path, capsys) -> None:
    path = _write(tmp_path, [("loss", "0.1", "")])
    code, _, err = run(capsys, "relu-2-2-1", "--check", str(path), "--compare-published")
    assert code == 2 and "not both" in err


# --- frozen parameters -------------------------------------------------------------------------
def _jax_steps(frozen: set[str], steps: int) -> tuple[list, list[float]]:
    """SGD with a mask written here: frozen leaves get a zero update."""
    params = [
        {k: jnp.asarray(v, jnp.float64) for k, v in layer.items()} for layer in NETWORK["params"]
    ]
    x, y = jnp.asarray(NETWORK["x"]), jnp.asarray(NETWORK["y"])

    def loss(p):
        a1 = jax.nn.sigmoid(x @ p[0]["w"] + p[0]["b"])
        return 0.5 * jnp.sum((a1 @ p[1]["w"] + p[1]["b"] - y) ** 2)

    mask = [
        {k: 0.0 if f"{'W' if k == 'w' else 'b'}{i + 1}" in frozen else 1.0 for k in layer}
        for i, layer in enumerate(params)
    ]
    history = []
    first = None
    for _ in range(steps):
        history.append(float(loss(params)))
        grads = jax.grad(loss)(params)
        params = jax.tree.map(lambda p, g, m: p - NETWORK["lr"] * m * g, params, grads, mask)
        first = first or params
    history.append(float(loss(params)))
    return first, history


def test_frozen_biases_take_no_update(tmp_path, capsys) -> None:
    net = _network(tmp_path, frozen=["b1", "b2"])
    code, out, err = run(capsys, "--network", net, "--format", "json", "--steps", "3")
    assert (code, err) == (0, "")
    trace = Trace.from_dict(json.loads(out))
    expected, history = _jax_steps({"b1", "b2"}, 3)
    assert trace.frozen == ("b1", "b2")
    for layer, want in zip(trace.layers, expected, strict=True):
        np.testing.assert_array_equal(layer.new_bias, layer.bias)  # exactly unchanged
        np.testing.assert_allclose(layer.new_weights, want["w"], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(layer.new_bias, want["b"], rtol=1e-12, atol=1e-14)
    assert trace.loss_after == pytest.approx(history[1], rel=1e-12)
    np.testing.assert_allclose(trace.history, history, rtol=1e-12)
    assert trace.loss_after != pytest.approx(RIGHT["loss_new"], rel=1e-6)  # the biases mattered


def test_frozen_parameters_are_shown_in_the_document(tmp_path, capsys) -> None:
    code, out, _ = run(
        capsys, "--network", _network(tmp_path, frozen=["b1", "W2"]), "--format", "markdown"
    )
    assert code == 0
    assert "b1 frozen: the gradient above is computed but not applied" in out
    assert "W2 frozen: the gradient above is computed but not applied" in out
    assert "W2 (frozen)" in out and "b2 − 0.5 db2" in out


@pytest.mark.parametrize(
    ("frozen", "message"),
    [
        (
            ["b3"],
            "frozen names 'b3', which is not a parameter of this network; its parameters are W1, W2, b1, b2",
        ),
        ("b1", 'frozen must be a list of parameter names like ["b1", "b2"]'),
        ([1], 'frozen must be a list of parameter names like ["b1", "b2"]'),
    ],
)
def test_bad_frozen_names_are_refused(frozen, message, tmp_path, capsys) -> None:
    code, out, err = run(capsys, "--network", _network(tmp_path, frozen=frozen))
    assert (code, out) == (2, "") and message in err, err


def test_frozen_check_uses_the_frozen_update(tmp_path, capsys) -> None:
    # with b2 frozen its right value after the step is its old value
    path = _write(tmp_path, [("b2_new[0]", "0.3", "b2'")])
    code, out, _ = run(capsys, "--network", _network(tmp_path, frozen=["b2"]), "--check", str(path))
    assert code == 0, out


@pytest.mark.parametrize("example", list(worked.EXAMPLES.values()), ids=lambda e: e.name)
def test_the_slip_replay_without_a_slip_gives_the_traces_own_numbers(example) -> None:
    from jaxbp.worked.grading.mistakes import replay
    from jaxbp.worked.trace import explain

    params = [
        {"w": np.asarray(w)} | ({} if b is None else {"b": np.asarray(b)})
        for w, b in zip(example.weights, example.biases or [None] * 3, strict=False)
    ]
    trace = explain(
        worked.spec_of(example), example.loss, params, example.x, example.y,
        example.learning_rate, frozen=("W1",),
    )  # fmt: skip
    names, replayed = trace.names(), replay(trace)
    assert set(replayed) == set(names)
    for key, value in names.items():
        np.testing.assert_allclose(replayed[key], value, rtol=1e-12, atol=1e-15, err_msg=key)


def test_document_option_shows_one_document(capsys) -> None:
    code, out, _ = run(
        capsys,
        "relu-sigmoid-linear",
        "--compare-published",
        "--document",
        "002",
        "--format",
        "json",
    )
    rows = json.loads(out)["published"]
    example = worked.EXAMPLES["relu-sigmoid-linear"]
    assert code == 0 and {row["document"] for row in rows} == {"002"}
    assert len(rows) == sum(r.document == "002" for r in example.published) == 85
    code, out, _ = run(capsys, "relu-sigmoid-linear", "--compare-published", "--document", "002")
    assert code == 0 and "Document 002" in out and "Document 000" not in out
    code, _, err = run(capsys, "relu-sigmoid-linear", "--compare-published", "--document", "001")
    assert code == 2 and "one of the documents of the example (000, 002, 004)" in err


def test_reasons_wrap_in_their_own_column_of_the_terminal_table(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    code, out, _ = run(capsys, "relu-sigmoid-linear", "--compare-published", "--document", "000")
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if "should be -0.00250:" in line)
    column = lines[start].index("✗")
    continuation = lines[start + 1]
    assert code == 0 and all(len(line) <= 100 for line in lines)
    # the reason goes on under its own column, never under the numbers
    assert continuation[:column].strip() == "" and continuation[column:].strip()
    assert column < 60


def _strict_json(text: str) -> dict:
    """JSON as a browser's JSON.parse reads it: no Infinity or NaN literals."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_json_of_a_network_that_overflows_is_strict_json_and_reads_back(tmp_path, capsys) -> None:
    """1e200 * 1e200 overflows float64 (its largest number is about 1.8e308): z1 is inf, and so is
    the half squared error. JSON has no inf: it is written "inf" and read back as inf."""
    net = {
        "name": "overflow", "sizes": [1, 1], "activations": ["linear"], "bias": False,
        "params": [{"w": [[1e200]]}], "x": [[1e200]], "y": [[0.0]], "loss": "half_se", "lr": 0.1,
    }  # fmt: skip
    path = tmp_path / "net.json"
    path.write_text(json.dumps(net))
    _, out, _ = run(capsys, "--network", str(path), "--format", "json")
    payload = _strict_json(out)
    assert payload["layers"][0]["pre_activations"] == [["inf"]]
    assert payload["loss"] == "inf"
    trace = Trace.from_dict(payload)
    assert trace.layers[0].pre_activations[0, 0] == np.inf and trace.loss == np.inf
