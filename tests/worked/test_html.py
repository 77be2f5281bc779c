"""The interactive HTML page: its in-browser arithmetic against the manual chain rule, in Chromium.

Oracle: :mod:`jaxbp.manual` (NumPy float64), called here on the values the page was given or the
values typed into it, and assembled under the page's names independently of the Trace. The page is
loaded from ``file://`` in headless Chromium (playwright's Python API), one browser per module.
Without Chromium the browser tests skip locally and fail in CI (``CI=true``).
"""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import jaxbp
from jaxbp import cli, manual
from jaxbp.worked import grading as worked
from jaxbp.worked import network_file
from jaxbp.worked import trace as trace_module
from jaxbp.worked.render import html as html_render
from jaxbp.worked.render._notation import number
from jaxbp.worked.trace import Trace, explain
from jaxbp.worked.verify import Check

CHROMIUM = os.environ.get("JAXBP_CHROMIUM", "/usr/bin/chromium")
ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")
LOSSES = tuple(jaxbp.LOSSES)
# output activations that keep each loss finite (cross-entropies need probabilities)
OUTPUTS = {
    "half_se": ACTIVATIONS,
    "mse": ACTIVATIONS,
    "softmax_cross_entropy": ACTIVATIONS,
    "cross_entropy": ("softmax", "sigmoid"),
    "binary_cross_entropy": ("sigmoid",),
}
RTOL = 1e-12
SEEDS = range(20)


# --- the browser ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "playwright is not installed (pip install 'jaxbp[test]')"
    if reason is None and not os.path.exists(CHROMIUM):
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium, or set JAXBP_CHROMIUM)"
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs the browser tests: {reason}.")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def tab(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    one = context.new_page()
    one.errors, one.requests = [], []  # type: ignore[attr-defined]
    one.on("pageerror", lambda error: one.errors.append(str(error)))
    one.on("console", lambda m: one.errors.append(m.text) if m.type == "error" else None)
    one.on("request", lambda request: one.requests.append(request.url))
    yield one
    context.close()


@pytest.fixture
def page(tab):
    """The module's tab; no JavaScript error and no request but the page's own file in a test."""
    tab.errors.clear()
    tab.requests.clear()
    yield tab
    assert tab.errors == []
    assert all(url.startswith("file://") for url in tab.requests), tab.requests


def _open(tab, path: Path, text: str):
    path.write_text(text, encoding="utf-8")
    tab.goto(path.as_uri())
    tab.wait_for_function("document.querySelector('.jaxbp-page').dataset.ready === 'true'")
    return tab


def _numbers(tab) -> list[tuple[str, str, str]]:
    """``(data-q, data-value, text)`` of every computed number on the page."""
    return tab.evaluate(
        "[...document.querySelectorAll('[data-q]:not(input)')]"
        ".map(e => [e.dataset.q, e.dataset.value, e.textContent])"
    )


# --- random networks and the oracle -----------------------------------------------------------
def _network(seed: int) -> dict:
    """Structure from the seed: every loss and every activation comes up within a few seeds."""
    rng = np.random.default_rng(seed)
    loss = LOSSES[seed % len(LOSSES)]
    num_layers = int(rng.integers(1, 4))
    hidden = [ACTIVATIONS[(seed + k) % len(ACTIVATIONS)] for k in range(num_layers - 1)]
    outputs = OUTPUTS[loss]
    activations = (*hidden, outputs[seed % len(outputs)])
    sizes = (int(rng.integers(1, 5)), *(int(rng.integers(1, 6)) for _ in hidden))
    sizes = (*sizes, int(rng.integers(2 if activations[-1] == "softmax" else 1, 5)))
    bias = tuple(bool(b) for b in rng.integers(0, 2, num_layers))
    batch = int(rng.integers(1, 5))
    params = []
    for fan_in, fan_out, has_bias in zip(sizes[:-1], sizes[1:], bias, strict=True):
        layer = {"w": rng.normal(0, 0.8, (fan_in, fan_out))}
        if has_bias:
            layer["b"] = rng.normal(0, 0.5, fan_out)
        params.append(layer)
    names = [
        f"{k}{n + 1}" for n, layer in enumerate(params) for k in ("W", "b") if k.lower() in layer
    ]
    frozen = [name for name in names if rng.random() < 0.3]
    if loss in ("cross_entropy", "softmax_cross_entropy"):
        y = rng.dirichlet(np.ones(sizes[-1]), batch)
    elif loss == "binary_cross_entropy":
        y = rng.random((batch, sizes[-1]))
    else:
        y = rng.normal(size=(batch, sizes[-1]))
    return {
        "spec": jaxbp.MLP(sizes=sizes, activations=activations, bias=bias),
        "loss": loss,
        "params": params,
        "x": rng.normal(size=(batch, sizes[0])),
        "y": y,
        "lr": float(rng.uniform(0.01, 1.0)),
        "frozen": frozen,
    }


def _oracle(net: dict) -> dict[str, np.ndarray]:
    """Every quantity of the page by jaxbp.manual, under the page's names."""
    spec, loss, params, x, y, lr = (net[k] for k in ("spec", "loss", "params", "x", "y", "lr"))
    with np.errstate(all="ignore"):
        record = manual.backward(spec, loss, params, x, y)
        new = [
            {
                k: v if f"{'W' if k == 'w' else 'b'}{n + 1}" in net["frozen"] else v - lr * g[k]
                for k, v in layer.items()
            }
            for n, (layer, g) in enumerate(zip(params, record.grads, strict=True))
        ]
        after = manual.forward(spec, new, x)
        loss_new = manual.loss_value(loss, after.activations[-1], y)
    fwd = record.forward
    values = {"x": x, "y": y, "a0": x, "lr": lr, "loss": record.loss, "loss_new": loss_new}
    values["dL_da0"] = record.dloss_dinputs[0]
    for l, layer in enumerate(params):  # noqa: E741
        n = l + 1
        values |= {
            f"W{n}": layer["w"], f"xw{n}": fwd.products[l], f"z{n}": fwd.pre_activations[l],
            f"a{n}": fwd.activations[l], f"dL_da{n}": record.dloss_dactivations[l],
            f"da_dz{n}": record.activation_derivatives[l], f"delta{n}": record.deltas[l],
            f"dW{n}": record.grads[l]["w"], f"W{n}_new": new[l]["w"],
            f"xw{n}_new": after.products[l], f"z{n}_new": after.pre_activations[l],
            f"a{n}_new": after.activations[l],
        }  # fmt: skip
        if "b" in layer:
            values |= {
                f"b{n}": layer["b"],
                f"db{n}": record.grads[l]["b"],
                f"b{n}_new": new[l]["b"],
            }
    return {k: np.asarray(v, np.float64) for k, v in values.items()}


def _trace(net: dict, monkeypatch) -> Trace:
    # The jax.grad checks are not what this file tests; skipping them saves a compile per network
    # (a nan difference: the page then says "NOT verified", as it should for unchecked numbers).
    def unchecked(spec, *args):
        kinds = ("z", "a", "dL_da", "da_dz", "delta", "dW", "db")
        layers = range(1, spec.num_layers + 1)
        return [Check(q, float("nan"), 0.0) for q in ("loss", "dL_da0")] + [
            Check(f"{k}{n}", float("nan"), 0.0) for n in layers for k in kinds
        ]

    monkeypatch.setattr(trace_module, "jax_checks", unchecked)
    keys = ("spec", "loss", "params", "x", "y", "lr")
    return explain(*(net[k] for k in keys))


def _split(q: str) -> tuple[str, tuple[int, ...]]:
    match = re.fullmatch(r"(\w+)(?:\[([\d,]+)\])?", q)
    assert match, q
    return match[1], tuple(int(i) for i in match[2].split(",")) if match[2] else ()


def _assert_matches(
    numbers: list[tuple[str, str, str]], expected: dict[str, np.ndarray], digits: int = 4
) -> None:
    """Every number on the page equals the oracle's to RTOL (relative to its quantity's largest
    entry) and reads as Python rounds it, and every entry of every computed quantity is there."""
    seen = set()
    for q, value, text in numbers:
        assert text == number(float(value), digits), (q, value, text)
        name, index = _split(q)
        want = expected[name][index]
        got = float(value)
        scale = float(np.max(np.abs(expected[name]), initial=abs(want)))
        if not np.isfinite(want):  # nan and inf as Python gets them (cross-entropy of logits)
            assert got == want or (np.isnan(got) and np.isnan(want)), (q, got, want)
        else:
            assert abs(got - want) <= RTOL * scale or got == want, (q, got, want)
        seen.add((name, index))
    inputs = {"x", "y", "a0", "lr"} | {f"{k}{n}" for k in "Wb" for n in range(1, 9)}
    # a0 W without a bias is z itself: xw is shown only beside a bias
    no_bias = {f"xw{n}{s}" for n in range(1, 9) for s in ("", "_new") if f"b{n}" not in expected}
    for name in set(expected) - inputs - no_bias:
        for index in np.ndindex(expected[name].shape):
            assert (name, index) in seen, f"{name}{list(index)} is not on the page"


# --- the arithmetic in the browser ------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"net{s}")
def test_page_recomputes_as_the_manual_chain_rule(seed, page, tmp_path, monkeypatch) -> None:
    net = _network(seed)
    trace = _trace(net, monkeypatch)
    _open(page, tmp_path / "page.html", html_render.page(trace, "random", frozen=net["frozen"]))
    # the page's own computation on load, written over Python's numbers
    assert page.evaluate("document.querySelector('.jaxbp-page').jaxbp.names() !== null")
    _assert_matches(_numbers(page), _oracle(net))

    # edit a few inputs (the learning rate sometimes), each edit an `input` event
    rng = np.random.default_rng(1000 + seed)
    inputs = page.evaluate("[...document.querySelectorAll('input[data-q]')].map(e => e.dataset.q)")
    chosen = rng.choice(inputs, size=min(len(inputs), 4), replace=False)
    edited = {
        k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else v) for k, v in net.items()
    }
    edited["params"] = [{k: v.copy() for k, v in layer.items()} for layer in net["params"]]
    typed = []
    for q in chosen:
        name, index = _split(str(q))
        value = float(rng.uniform(0.05, 0.9)) if name == "lr" else float(rng.normal())
        if name == "lr":
            edited["lr"] = value
        elif name in ("x", "y"):
            edited[name][index] = value
        else:
            edited["params"][int(name[1:]) - 1][name[0].lower()][index] = value
        typed.append((str(q), repr(value)))
    page.fill(f'input[data-q="{typed[0][0]}"]', typed[0][1])  # typed, as a user does
    page.evaluate(  # the others in one go: set the value, dispatch `input`
        """edits => edits.forEach(([q, v]) => {
            const el = document.querySelector(`input[data-q="${q}"]`);
            el.value = v;
            el.dispatchEvent(new Event("input", {bubbles: true}));
        })""",
        typed[1:],
    )
    _assert_matches(_numbers(page), _oracle(edited))
    assert "jaxbp-edited" in page.evaluate("document.querySelector('.jaxbp-page').className")


def test_nan_and_inf_come_out_as_in_python(page, tmp_path, monkeypatch) -> None:
    """Cross-entropy of a tanh output takes logs of negative numbers: nan and inf downstream."""
    net = _network(0) | {"loss": "cross_entropy"}
    spec = net["spec"]
    net["spec"] = jaxbp.MLP(spec.sizes, (*spec.activations[:-1], "tanh"), spec.layer_bias)
    _open(page, tmp_path / "nan.html", html_render.page(_trace(net, monkeypatch), "nan"))
    numbers = _numbers(page)
    _assert_matches(numbers, _oracle(net | {"frozen": []}))
    assert any(value == "nan" for _, value, _ in numbers)
    assert any(text == "nan" for _, _, text in numbers)


def test_every_activation_and_loss_is_drawn() -> None:
    nets = [_network(seed) for seed in SEEDS]
    assert {net["loss"] for net in nets} == set(LOSSES)
    assert {a for net in nets for a in net["spec"].activations} == set(ACTIVATIONS)
    assert any(not all(net["spec"].layer_bias) for net in nets)
    assert any(net["frozen"] for net in nets)
    assert any(net["x"].shape[0] > 1 for net in nets) and any(
        net["x"].shape[0] == 1 for net in nets
    )


# --- the built-in examples, no browser: the numbers Python writes into the page ---------------
def _example_net(name: str) -> dict:
    example = worked.EXAMPLES[name]
    biases = example.biases or [None] * len(example.weights)
    params = [
        {"w": np.asarray(w, np.float64)} | ({} if b is None else {"b": np.asarray(b, np.float64)})
        for w, b in zip(example.weights, biases, strict=True)
    ]
    return {
        "spec": worked.spec_of(example),
        "loss": example.loss,
        "params": params,
        "x": np.asarray(example.x, np.float64),
        "y": np.asarray(example.y, np.float64),
        "lr": example.learning_rate,
        "frozen": [],
    }


class _Numbers(HTMLParser):
    """``data-q`` elements of a page as Python wrote it: computed numbers and inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.computed: list[tuple[str, str]] = []
        self.inputs: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if "data-q" in found and tag == "input":
            self.inputs[str(found["data-q"])] = str(found["value"])
        elif "data-q" in found:
            self.computed.append((str(found["data-q"]), str(found["data-value"])))


def _written(text: str) -> _Numbers:
    parser = _Numbers()
    parser.feed(text)
    return parser


@pytest.mark.parametrize("name", list(worked.EXAMPLES))
def test_python_writes_every_number_of_a_builtin_example(name) -> None:
    net = _example_net(name)
    expected = _oracle(net)
    assert all(
        expected[k].shape == np.shape(v)
        for k, v in worked.quantities(worked.EXAMPLES[name]).items()
        if k in expected
    )
    trace = explain(*(net[k] for k in ("spec", "loss", "params", "x", "y", "lr")))
    written = _written(html_render.page(trace, name))
    _assert_matches([(q, v, number(float(v), 4)) for q, v in written.computed], expected)
    for q, text in written.inputs.items():
        name_, index = _split(q)
        assert float(text) == expected[name_][index], q  # exact: the page starts from these


def test_frozen_parameters_are_written_without_update(monkeypatch) -> None:
    net = _example_net("relu-sigmoid-linear") | {"frozen": ["b1", "b2", "W3"]}
    trace = _trace(net, monkeypatch)
    text = html_render.page(trace, "frozen", frozen=net["frozen"])
    written = _written(text)
    expected = _oracle(net)
    _assert_matches([(q, v, number(float(v), 4)) for q, v in written.computed], expected)
    assert text.count('class="jaxbp-frozen"') == 3
    assert "= b1 (frozen: no update)" in text and "= W3 (frozen: no update)" in text
    assert expected["loss_new"] != _oracle(net | {"frozen": []})["loss_new"]


@pytest.mark.parametrize(
    ("frozen", "error", "match"),
    [
        (["b3"], ValueError, r"html.page: frozen has unknown parameter names \['b3'\].*W1, W2"),
        ("b1", TypeError, "html.page: frozen must be a list of names"),
    ],
)
def test_bad_frozen_names_are_refused(frozen, error, match) -> None:
    net = _example_net("relu-2-2-1")
    trace = explain(*(net[k] for k in ("spec", "loss", "params", "x", "y", "lr")))
    with pytest.raises(error, match=match):
        html_render.page(trace, "t", frozen=frozen)
    with pytest.raises(ValueError, match="digits must be an int from 1 to 17, got 0"):
        html_render.page(trace, "t", digits=0)


def test_the_page_is_self_contained() -> None:
    net = _example_net("sigmoid-softmax")
    trace = explain(*(net[k] for k in ("spec", "loss", "params", "x", "y", "lr")))
    text = html_render.page(trace, "t")
    assert text.startswith("<!DOCTYPE html>")
    for outside in ("<link", " src=", "@import", "url(", "http://", "https://", "//cdn"):
        assert outside not in text, outside


# --- the command line and Jupyter ------------------------------------------------------------
def test_cli_writes_the_page(capsys) -> None:
    assert cli.main(["explain", "relu-sigmoid-linear", "--format", "html", "--precision", "5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("<!DOCTYPE html>") and out.rstrip().endswith("</html>")
    written = _written(out)
    expected = _oracle(_example_net("relu-sigmoid-linear"))
    _assert_matches([(q, v, number(float(v), 5)) for q, v in written.computed], expected, digits=5)
    assert 'data-q="lr" value="0.25"' in out and '<option value="5" selected>' in out


def test_cli_shows_published_numbers_on_the_page(capsys) -> None:
    argv = ["explain", "relu-2-2-1", "--format", "html", "--compare-published"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("</html>")
    assert "<h2>Document 001: published against computed</h2>" in out


def test_trace_renders_itself_in_jupyter() -> None:
    net = _example_net("relu-2-2-1")
    trace = explain(*(net[k] for k in ("spec", "loss", "params", "x", "y", "lr")))
    first, second = trace._repr_html_(), trace._repr_html_()
    ids = [
        re.search(r'<div class="jaxbp-page" id="(jaxbp-[0-9a-f]+)">', t)[1] for t in (first, second)
    ]  # type: ignore[index]
    assert ids[0] != ids[1]
    assert f'jaxbpPage(document.getElementById("{ids[0]}"))' in first
    assert "<!DOCTYPE" not in first and "<body" not in first
    expected = _oracle(net)
    _assert_matches([(q, v, number(float(v), 4)) for q, v in _written(first).computed], expected)
    markdown = trace._repr_markdown_()
    assert markdown.startswith("# 2-2-1 network: relu, linear; half_se; lr 0.05\n")
    # z1 = [2 3] W1 = [1.23 0.57], a2 = 1.23 * 0.11 + 0.57 * 0.12 = 0.2037, loss 0.5 (a2 - 1)^2
    assert "## Loss" in markdown and "| `0.317` |" in markdown


# --- the page in the browser: formatting, bad input, reset, digits, several pages at once ----
TRICKY = [0.1 + 0.2, 0.125, 2.5, 0.5, 1.0, -1.5, 1e-5, 1.5e-5, 0.0001, 123456.789, 1e16, 1.5e16,
          9999999999999998.0, 1e22, 2.675, 5e-324, 1.7976931348623157e308, -0.0, 0.0, 0.3333333333333333,
          -2.220446049250313e-16, 12345.678901234567, 0.00049999999999999996, 99.995, 1.0000000000000002]  # fmt: skip


def _builtin(tab, tmp_path: Path, name: str, frozen: list[str] | None = None):
    net = _example_net(name) | {"frozen": frozen or []}
    trace = explain(*(net[k] for k in ("spec", "loss", "params", "x", "y", "lr")))
    return _open(tab, tmp_path / f"{name}.html", html_render.page(trace, name, frozen=frozen)), net


def test_numbers_are_written_as_python_writes_them(page, tmp_path) -> None:
    _builtin(page, tmp_path, "relu-2-2-1")
    rng = np.random.default_rng(7)
    drawn = rng.normal(size=200) * 10.0 ** rng.uniform(-9, 9, 200)
    # exact halves at some digit (ties), and numbers of few digits such as 0.125
    ties = rng.integers(-5000, 5000, 200) / 2.0 ** rng.integers(0, 12, 200)
    places = rng.integers(1, 6, 100)
    short = [round(float(v), int(d)) for v, d in zip(rng.normal(size=100), places, strict=True)]
    subnormal = rng.integers(1, 10**6, 20) * 5e-324
    values = [*TRICKY, float("nan"), float("inf"), float("-inf")]
    values += [float(v) for v in (*drawn, *ties, *short, *subnormal)]
    got = page.evaluate(
        """values => {
            const j = document.querySelector('.jaxbp-page').jaxbp;
            return values.map(v => [j.repr(v), [...Array(17).keys()].map(d => j.format(v, d + 1))]);
        }""",
        values,
    )
    for value, (text, formatted) in zip(values, got, strict=True):
        assert text == repr(value)
        assert formatted == [number(value, digits) for digits in range(1, 18)], value


def test_the_builtin_examples_recompute_in_the_browser(page, tmp_path) -> None:
    for name in worked.EXAMPLES:
        _, net = _builtin(page, tmp_path, name)
        _assert_matches(_numbers(page), _oracle(net))


def test_a_bad_number_is_marked_and_changes_nothing(page, tmp_path) -> None:
    _, net = _builtin(page, tmp_path, "relu-sigmoid-linear")
    before = _numbers(page)
    for q, text in (("W2[1,0]", "abc"), ("lr", "0"), ("x[0,0]", ""), ("b1[2]", "0x10")):
        page.fill(f'input[data-q="{q}"]', text)
        assert "jaxbp-invalid" in page.get_attribute(f'input[data-q="{q}"]', "class")
        assert q in page.text_content(".jaxbp-status")
        assert _numbers(page) == before
        page.fill(f'input[data-q="{q}"]', page.get_attribute(f'input[data-q="{q}"]', "value"))
    page.fill('input[data-q="W2[1,0]"]', "1e-1")  # a valid number again: recomputed
    net["params"][1]["w"][1, 0] = 0.1
    _assert_matches(_numbers(page), _oracle(net))
    assert page.query_selector(".jaxbp-invalid") is None


def test_reset_restores_the_initial_numbers(page, tmp_path) -> None:
    _builtin(page, tmp_path, "sigmoid-softmax")
    initial = _numbers(page)
    page.fill('input[data-q="W1[0,1]"]', "3")
    page.fill('input[data-q="y[0,0]"]', "0.25")
    assert _numbers(page) != initial
    changed = page.evaluate("document.querySelectorAll('.jaxbp-changed').length")
    assert changed > 10  # the numbers that changed are highlighted
    page.click(".jaxbp-reset")
    assert _numbers(page) == initial
    assert "jaxbp-edited" not in page.evaluate("document.querySelector('.jaxbp-page').className")


def test_digits_select_rounds_every_number(page, tmp_path) -> None:
    _, net = _builtin(page, tmp_path, "relu-sigmoid-linear")
    page.select_option(".jaxbp-digits", "9")
    _assert_matches(_numbers(page), _oracle(net), digits=9)


def test_download_gives_a_network_file_of_the_edited_values(page, tmp_path) -> None:
    _, net = _builtin(page, tmp_path, "relu-sigmoid-linear", frozen=["b2"])
    page.fill('input[data-q="W3[1,0]"]', "-0.75")
    page.fill('input[data-q="lr"]', "0.1")
    with page.expect_download() as download:
        page.click(".jaxbp-download")
    path = tmp_path / "network.json"
    download.value.save_as(path)
    data = json.loads(path.read_text())
    assert data["frozen"] == ["b2"] and data["lr"] == 0.1
    assert data["params"][2]["w"] == [[1.0], [-0.75]]
    if "frozen" not in network_file.OPTIONAL:  # a loader without frozen parameters
        del data["frozen"]
    path.write_text(json.dumps(data))
    loaded = network_file.load(path)
    assert loaded.learning_rate == 0.1 and loaded.spec.layer_bias == net["spec"].layer_bias
    assert (loaded.spec.sizes, loaded.spec.activations) == (
        net["spec"].sizes,
        net["spec"].activations,
    )
    np.testing.assert_array_equal(loaded.params[2]["w"], [[1.0], [-0.75]])


def test_several_pages_on_one_page_stay_apart(page, tmp_path) -> None:
    """Two notebook outputs of different traces: each script works on its own output only."""
    nets = [_example_net("relu-2-2-1"), _example_net("sigmoid-softmax")]
    traces = [explain(*(n[k] for k in ("spec", "loss", "params", "x", "y", "lr"))) for n in nets]
    body = "".join(trace._repr_html_() for trace in traces)
    _open(page, tmp_path / "notebook.html", f"<!DOCTYPE html><html><body>{body}</body></html>")
    assert page.evaluate("document.querySelectorAll('.jaxbp-page[data-ready=true]').length") == 2
    assert page.evaluate("typeof jaxbpPage") == "undefined"  # nothing global
    page.fill('.jaxbp-page:nth-of-type(2) input[data-q="W1[0,0]"]', "0.5")
    numbers = page.evaluate(
        """[...document.querySelectorAll('.jaxbp-page')].map(root =>
            [...root.querySelectorAll('[data-q]:not(input)')].map(e => [e.dataset.q, e.dataset.value, e.textContent]))"""
    )
    nets[1]["params"][0]["w"][0, 0] = 0.5
    _assert_matches(numbers[0], _oracle(nets[0]))
    _assert_matches(numbers[1], _oracle(nets[1]))


def _doc_blocks(language: str) -> list[str]:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "explain.md").read_text()
    section = doc[doc.index("## Interactive page") :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


def test_the_docs_commands_write_pages(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    for line in _doc_blocks("sh")[0].splitlines():
        command, _, target = line.split("#")[0].partition(">")
        assert cli.main(command.split()[1:]) == 0, line
        out = capsys.readouterr().out
        if target.strip():
            assert out.startswith("<!DOCTYPE html>"), line
    assert (tmp_path / "my_net.json").exists()


def test_the_docs_python_example_runs(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(_doc_blocks("python")[0], "docs/explain.md", "exec"), namespace)
    text = (tmp_path / "frozen.html").read_text(encoding="utf-8")
    written = _written(text)
    net = {
        "spec": namespace["spec"], "loss": "half_se", "params": namespace["params"],
        "x": np.array([[2.0, 3.0]]), "y": np.array([[1.0]]), "lr": 0.05, "frozen": ["b1", "b2"],
    }  # fmt: skip
    _assert_matches([(q, v, number(float(v), 6)) for q, v in written.computed], _oracle(net), 6)
    assert '<option value="6" selected>' in text


def test_a_title_cannot_break_out_of_the_page(page, tmp_path) -> None:
    net = _example_net("relu-2-2-1")
    trace = explain(*(net[k] for k in ("spec", "loss", "params", "x", "y", "lr")))
    title = 'net </script><script>window.injected = 1</script> <b>"bold"</b>'
    _open(page, tmp_path / "title.html", html_render.page(trace, title))
    assert page.evaluate("typeof window.injected") == "undefined"
    assert page.text_content("h1") == title and page.title() == title
    _assert_matches(_numbers(page), _oracle(net))


def test_a_trace_with_frozen_parameters_shows_them(page, tmp_path) -> None:
    """A trace that carries ``frozen`` (explain(..., frozen=...)): the page takes it from there."""
    import inspect

    if "frozen" not in inspect.signature(explain).parameters:
        pytest.skip("this explain has no frozen parameters")
    net = _example_net("relu-sigmoid-linear") | {"frozen": ["b1", "b3"]}
    keys = ("spec", "loss", "params", "x", "y", "lr")
    trace = explain(*(net[k] for k in keys), frozen=net["frozen"])  # type: ignore[call-arg]
    text = html_render.page(trace, "frozen biases")
    assert text.count('class="jaxbp-frozen"') == 2
    _open(page, tmp_path / "frozen.html", text)
    _assert_matches(_numbers(page), _oracle(net))
    page.fill('input[data-q="b1[0]"]', "-2")
    net["params"][0]["b"][0] = -2.0
    _assert_matches(_numbers(page), _oracle(net))


def test_a_large_page_recomputes_without_highlights(page, tmp_path, monkeypatch) -> None:
    """Thousands of numbers (three softmax Jacobians of a batch of 10): still exact; the page
    skips laying out off-screen sections and the highlight."""
    rng = np.random.default_rng(3)
    spec = jaxbp.MLP(sizes=(10, 10, 10, 10), activations=("softmax", "softmax", "softmax"))
    params = [{"w": rng.normal(0, 0.8, (10, 10)), "b": rng.normal(0, 0.5, 10)} for _ in range(3)]
    net = {
        "spec": spec, "loss": "cross_entropy", "params": params, "x": rng.normal(size=(10, 10)),
        "y": rng.dirichlet(np.ones(10), 10), "lr": 0.3, "frozen": [],
    }  # fmt: skip
    _open(page, tmp_path / "large.html", html_render.page(_trace(net, monkeypatch), "large"))
    assert "jaxbp-large" in page.evaluate("document.querySelector('.jaxbp-page').className")
    page.fill('input[data-q="W2[3,4]"]', "1.5")
    params[1]["w"][3, 4] = 1.5
    numbers = _numbers(page)
    assert len(numbers) > 3000
    _assert_matches(numbers, _oracle(net))
    assert page.evaluate("document.querySelectorAll('.jaxbp-changed').length") == 0


def test_arrow_keys_nudge_a_number(page, tmp_path) -> None:
    _, net = _builtin(page, tmp_path, "relu-sigmoid-linear")
    page.focus('input[data-q="W2[2,1]"]')
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Shift+ArrowDown")
    assert page.input_value('input[data-q="W2[2,1]"]') == "0.41"  # 0.5 + 0.01 - 0.1
    net["params"][1]["w"][2, 1] = 0.41
    _assert_matches(_numbers(page), _oracle(net))


def test_no_download_while_a_number_is_bad(page, tmp_path) -> None:
    _builtin(page, tmp_path, "relu-2-2-1")
    page.fill('input[data-q="lr"]', "-1")
    downloads: list = []

    def record(download) -> None:
        downloads.append(download)

    page.on("download", record)
    page.click(".jaxbp-download")
    page.wait_for_timeout(300)
    page.remove_listener("download", record)
    assert downloads == []
    assert "lr: the learning rate must be a number > 0" in page.text_content(".jaxbp-status")
