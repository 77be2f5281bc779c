"""An independent oracle for the conv worked example: NumPy loops over examples, output positions,
kernel taps and channels (no im2col), and ``jax.grad`` through a JAX forward pass written here.

``oracle(layers, params, x, y, loss, lr)`` returns every quantity of one SGD step under the names
``jaxbp.worked.conv_trace`` uses. ``layers`` are plain tuples, so nothing of jaxbp is shared:
``("conv", kernel, stride, (pad_low, pad_high), activation)``, ``("maxpool", window, stride)``,
``("avgpool", window, stride)``, ``("flatten",)``, ``("dense", activation)``.
"""

from __future__ import annotations

import math
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

ACT = {
    "linear": (lambda z: z, lambda z: np.ones_like(z)),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2),
}
JAX_ACT = {
    "linear": lambda z: z,
    "relu": lambda z: jnp.maximum(z, 0.0),
    "tanh": jnp.tanh,
    "sigmoid": lambda z: 1 / (1 + jnp.exp(-z)),
    "softmax": lambda z: jnp.exp(z) / jnp.sum(jnp.exp(z), axis=-1, keepdims=True),
}


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _loss(loss: str, a: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Batch-mean loss and its derivative with respect to the prediction."""
    batch = len(a)
    if loss == "half_se":
        return float(np.mean(0.5 * np.sum((a - y) ** 2, axis=1))), (a - y) / batch
    if loss == "cross_entropy":
        return float(np.mean(-np.sum(y * np.log(a), axis=1))), -y / a / batch
    if loss == "binary_cross_entropy":
        per = -np.sum(y * np.log(a) + (1 - y) * np.log(1 - a), axis=1)
        return float(np.mean(per)), (a - y) / (a * (1 - a)) / batch
    raise ValueError(loss)


def _jax_loss(loss: str, a: Any, y: Any) -> Any:
    if loss == "half_se":
        return jnp.mean(0.5 * jnp.sum((a - y) ** 2, axis=1))
    if loss == "cross_entropy":
        return jnp.mean(-jnp.sum(y * jnp.log(a), axis=1))
    return jnp.mean(-jnp.sum(y * jnp.log(a) + (1 - y) * jnp.log(1 - a), axis=1))


def _forward(layers: list, params: list, x: np.ndarray) -> list[dict[str, Any]]:
    """Per layer, its input, output and what the loops below need, by explicit loops."""
    records = []
    a = x
    for layer, p in zip(layers, params, strict=True):
        rec: dict[str, Any] = {"in": a}
        if layer[0] == "conv":
            _, k, s, (low, high), act = layer
            xp = np.concatenate(
                [np.zeros((len(a), low, a.shape[2])), a, np.zeros((len(a), high, a.shape[2]))],
                axis=1,
            )
            batch, length, cin = xp.shape
            cout = p["w"].shape[2]
            positions = (length - k) // s + 1
            patches = np.zeros((batch * positions, k * cin))
            xw = np.zeros((batch, positions, cout))
            for i_n in range(batch):
                for i in range(positions):
                    for tap in range(k):
                        for c in range(cin):
                            patches[i_n * positions + i, tap * cin + c] = xp[i_n, i * s + tap, c]
                    for o in range(cout):
                        total = 0.0
                        for tap in range(k):
                            for c in range(cin):
                                total += xp[i_n, i * s + tap, c] * p["w"][tap, c, o]
                        xw[i_n, i, o] = total
            z = xw + p.get("b", 0.0)
            rec |= {"xp": xp, "patches": patches, "xw": xw, "z": z, "a": ACT[act][0](z)}
        elif layer[0] in ("maxpool", "avgpool"):
            _, w, s = layer
            batch, length, channels = a.shape
            positions = (length - w) // s + 1
            out = np.zeros((batch, positions, channels))
            argmax = np.zeros((batch, positions, channels))
            for i_n in range(batch):
                for i in range(positions):
                    for c in range(channels):
                        window = [a[i_n, i * s + t, c] for t in range(w)]
                        if layer[0] == "maxpool":
                            argmax[i_n, i, c] = int(np.argmax(window))
                            out[i_n, i, c] = max(window)
                        else:
                            out[i_n, i, c] = sum(window) / w
            rec |= {"a": out, "argmax": argmax}
        elif layer[0] == "flatten":
            rec["a"] = np.array([[v for row in example for v in row] for example in a])
        else:
            xw = a @ p["w"]
            z = xw + p.get("b", 0.0)
            out = _softmax(z) if layer[1] == "softmax" else ACT[layer[1]][0](z)
            rec |= {"xw": xw, "z": z, "a": out}
        records.append(rec)
        a = rec["a"]
    return records


def oracle(
    layers: list, params: list, x: np.ndarray, y: np.ndarray, loss: str, lr: float
) -> dict[str, Any]:
    """Every quantity of one SGD step, under the names of ``jaxbp.worked.conv_trace``."""
    records = _forward(layers, params, x)
    names: dict[str, Any] = {"x": x, "y": y, "a0": x}
    value, upstream = _loss(loss, records[-1]["a"], y)
    names["loss"] = value
    grads: list[dict[str, np.ndarray]] = [{} for _ in layers]
    for n in range(len(layers), 0, -1):
        layer, p, rec = layers[n - 1], params[n - 1], records[n - 1]
        names[f"dL_da{n}"] = upstream
        a_in = rec["in"]
        if layer[0] in ("conv", "dense"):
            act = layer[-1]
            names |= {f"xw{n}": rec["xw"], f"z{n}": rec["z"], f"W{n}": p["w"]}
            if act == "softmax":
                out = rec["a"]
                jac = np.array(
                    [[[o[i] * ((i == j) - o[j]) for j in range(len(o))] for i in range(len(o))]
                     for o in out]
                )  # fmt: skip
                delta = np.array([jac[b].T @ upstream[b] for b in range(len(out))])
                names[f"da_dz{n}"] = jac
            else:
                names[f"da_dz{n}"] = ACT[act][1](rec["z"])
                delta = upstream * names[f"da_dz{n}"]
            names[f"delta{n}"] = delta
            if "b" in p:
                names[f"b{n}"] = p["b"]
                grads[n - 1]["b"] = delta.reshape(-1, delta.shape[-1]).sum(axis=0)
        if layer[0] == "conv":
            _, k, s, (low, high), _ = layer
            xp = rec["xp"]
            batch, positions, cout = delta.shape
            cin = xp.shape[2]
            dw = np.zeros_like(p["w"])
            dxp = np.zeros_like(xp)
            dpatches = np.zeros((batch * positions, k * cin))
            for i_n in range(batch):
                for i in range(positions):
                    for tap in range(k):
                        for c in range(cin):
                            for o in range(cout):
                                share = delta[i_n, i, o] * p["w"][tap, c, o]
                                dw[tap, c, o] += xp[i_n, i * s + tap, c] * delta[i_n, i, o]
                                dxp[i_n, i * s + tap, c] += share
                                dpatches[i_n * positions + i, tap * cin + c] += share
            grads[n - 1]["w"] = dw
            names |= {f"patches{n}": rec["patches"], f"K{n}": p["w"].reshape(k * cin, cout)}
            names |= {f"dK{n}": dw.reshape(k * cin, cout), f"dpatches{n}": dpatches}
            if low or high:
                names[f"a{n - 1}_pad"] = xp
                names[f"dL_da{n - 1}_pad"] = dxp
            upstream = dxp[:, low : xp.shape[1] - high, :]
        elif layer[0] == "dense":
            grads[n - 1]["w"] = a_in.T @ delta
            upstream = delta @ p["w"].T
        elif layer[0] == "flatten":
            upstream = upstream.reshape(a_in.shape)
        else:
            _, w, s = layer
            down = np.zeros_like(a_in)
            for i_n, i, c in np.ndindex(*upstream.shape):
                for t in range(w):
                    if layer[0] == "avgpool":
                        down[i_n, i * s + t, c] += upstream[i_n, i, c] / w
                    elif t == rec["argmax"][i_n, i, c]:
                        down[i_n, i * s + t, c] += upstream[i_n, i, c]
            if layer[0] == "maxpool":
                names[f"argmax{n}"] = rec["argmax"]
            upstream = down
        names[f"a{n}"] = rec["a"]
        names[f"dL_da{n - 1}"] = upstream
        for key, g in grads[n - 1].items():
            names[f"d{key.upper() if key == 'w' else key}{n}"] = g
    new = [{k: v - lr * grads[i][k] for k, v in p.items()} for i, p in enumerate(params)]
    after = _forward(layers, new, x)
    for n, (p, rec) in enumerate(zip(new, after, strict=True), start=1):
        names |= {f"{k.upper() if k == 'w' else k}{n}_new": v for k, v in p.items()}
        names[f"a{n}_new"] = rec["a"]
        if "z" in rec:
            names[f"z{n}_new"] = rec["z"]
    names["loss_new"] = _loss(loss, after[-1]["a"], y)[0]
    return names


def jax_grads(layers: list, params: list, x: np.ndarray, y: np.ndarray, loss: str) -> tuple:
    """``jax.grad`` of the loss with respect to params and x, through a forward pass written
    here with one slice per output position (float64)."""

    def forward(params: list, a: Any) -> Any:
        for layer, p in zip(layers, params, strict=True):
            if layer[0] == "conv":
                _, k, s, (low, high), act = layer
                a = jnp.pad(a, ((0, 0), (low, high), (0, 0)))
                positions = (a.shape[1] - k) // s + 1
                z = jnp.stack(
                    [jnp.einsum("nkc,kco->no", a[:, i * s : i * s + k, :], p["w"])
                     for i in range(positions)],
                    axis=1,
                )  # fmt: skip
                a = JAX_ACT[act](z + p.get("b", 0.0))
            elif layer[0] in ("maxpool", "avgpool"):
                _, w, s = layer
                positions = (a.shape[1] - w) // s + 1
                reduce = jnp.max if layer[0] == "maxpool" else jnp.mean
                a = jnp.stack(
                    [reduce(a[:, i * s : i * s + w, :], axis=1) for i in range(positions)], axis=1
                )
            elif layer[0] == "flatten":
                a = a.reshape(a.shape[0], -1)
            else:
                a = JAX_ACT[layer[1]](a @ p["w"] + p.get("b", 0.0))
        return _jax_loss(loss, a, y)

    jax_params = [{k: jnp.asarray(v) for k, v in p.items()} for p in params]
    return jax.grad(forward, argnums=(0, 1))(jax_params, jnp.asarray(x))


ROW = re.compile(r"^\| `(\w+)` [^|]*\|.*\| `([^`]*)` \|$")


def rounds_to(text: str, value: float, digits: int = 4) -> bool:
    """Whether ``text`` is ``value`` to ``digits`` significant digits (either way at a tie: the
    oracle's last bit may differ from the trace's)."""
    if value == 0:
        return text == "0"
    half_unit = 0.5 * 10 ** (math.floor(math.log10(abs(value))) - digits + 1)
    mantissa = text.split("e")[0].replace("-", "").replace(".", "").lstrip("0")
    return len(mantissa) <= digits and abs(float(text) - value) <= half_unit * (1 + 1e-9)


def table_rows_match(markdown: str, expected: dict[str, Any], digits: int = 4) -> set[str]:
    """Check every table row ``| `name` ... | `value` |`: ``name`` has an oracle value and each
    number shown is it to ``digits`` significant digits. Returns the names shown."""
    shown = set()
    for line in markdown.splitlines():
        match = ROW.match(line)
        if not match:
            continue
        name, text = match.groups()
        assert name in expected, name
        numbers = [t for t in re.split(r"[\[\];, ]+", text) if t]
        values = np.ravel(expected[name])
        assert len(numbers) == len(values), name
        for number, value in zip(numbers, values, strict=True):
            assert rounds_to(number, float(value), digits), (name, number, value)
        shown.add(name)
    return shown


def _index(text: str) -> tuple[str, tuple[int, ...]]:
    name, rest = text.split("[")
    return name, tuple(int(i) for i in re.findall(r"\d+", rest))


def worked_lines_match(markdown: str, expected: dict[str, Any], digits: int) -> int:
    """Check the worked-out lines: each ``z`` sum, evaluated, is the oracle's ``z`` (up to the
    rounding of its terms), and each col2im line names the ``dpatches`` entries whose oracle
    values add up to the oracle's input gradient. Returns how many lines were checked."""
    from jaxbp.worked.grading.expression import parse

    checked = 0
    for line in markdown.splitlines():
        if line.startswith("One output worked out:"):
            spans = re.findall(r"`([^`]*)`", line)
            name, index = _index(spans[0])
            expression = spans[-1].rsplit(" = ", 1)[0].replace("·", "*")
            value, exact = parse(expression).evaluate({}), float(expected[name][index])
            terms = [abs(float(t)) for t in re.findall(r"\d+\.?\d*(?:e[+-]?\d+)?", expression)]
            # each term a product of two numbers rounded to `digits` significant digits
            bound = len(terms) * 10 ** (1 - digits) * max([*terms, 1.0]) ** 2
            assert abs(value - exact) <= bound, line
            checked += 1
        elif line.startswith("col2im worked out:"):
            target, symbols, _, _ = re.findall(r"`([^`]*)`", line)
            name, index = _index(target)
            shares = [expected[n][i] for n, i in map(_index, symbols.split(" + "))]
            assert sum(shares) == pytest_approx(float(expected[name][index])), line
            checked += 1
    return checked


def pytest_approx(value: float) -> Any:
    import pytest

    return pytest.approx(value, rel=1e-12, abs=1e-15)
