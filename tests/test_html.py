"""The interactive HTML page: its in-browser arithmetic against the manual chain rule, in Chromium.

Oracle: :mod:`jaxbp.manual` (NumPy float64), called here on the values the page was given or the
values typed into it, and assembled under the page's names independently of the Trace. The page is
loaded from ``file://`` in headless Chromium (playwright's Python API), one browser per module.
Without Chromium the browser tests skip locally and fail in CI (``CI=true``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

import jaxbp
from jaxbp import manual
from jaxbp import trace as trace_module
from jaxbp._verify import Check
from jaxbp.render import html as html_render
from jaxbp.trace import Trace, explain

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


def _assert_matches(numbers: list[tuple[str, str, str]], expected: dict[str, np.ndarray]) -> None:
    """Every number on the page equals the oracle's to RTOL (relative to its quantity's largest
    entry), and every entry of every computed quantity is on the page."""
    seen = set()
    for q, value, _ in numbers:
        name, index = _split(q)
        want = expected[name][index]
        got = float(value)
        scale = float(np.max(np.abs(expected[name]), initial=abs(want)))
        if np.isnan(want):
            assert np.isnan(got), q
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


def test_every_activation_and_loss_is_drawn() -> None:
    nets = [_network(seed) for seed in SEEDS]
    assert {net["loss"] for net in nets} == set(LOSSES)
    assert {a for net in nets for a in net["spec"].activations} == set(ACTIVATIONS)
    assert any(not all(net["spec"].layer_bias) for net in nets)
    assert any(net["frozen"] for net in nets)
    assert any(net["x"].shape[0] > 1 for net in nets) and any(
        net["x"].shape[0] == 1 for net in nets
    )
