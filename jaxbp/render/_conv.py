"""A :class:`jaxbp.conv_trace.SequentialTrace` as Markdown (and, through rich, in the terminal).

The document follows the order a student works: the network, the forward pass layer by layer
(a convolution as im2col: the patches matrix, ``z = patches @ K + b``, the activation), the loss,
the backward pass from the output down (``dK = patches^T @ delta``, ``d(patches) = delta @ K^T``
and the col2im scatter-add into the input gradient), the SGD update, the forward pass after it
and the check against ``jax.grad``. Each table row is a quantity's jaxbp name, what it is, its
formula and its value, a matrix written ``[row; row]`` and a 3-D array ``(batch, positions,
channels)`` one matrix per example; one number per layer is worked out in full below its table.
A conv layer's ``W (kernel, C_in, C_out)`` is shown as its kernel matrix ``K (kernel * C_in,
C_out)``, whose column ``c`` is filter ``c``.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from jaxbp.conv_trace import LayerStep, SequentialTrace
from jaxbp.render.plot import text_plot

LOSS_FORMULAS = {
    "half_se": ("½ Σ_outputs (a − y)², averaged over the batch", "(a − y) / batch"),
    "mse": (
        "mean over outputs of (a − y)², averaged over the batch",
        "2 (a − y) / (outputs · batch)",
    ),
    "cross_entropy": ("−Σ y log a, averaged over the batch", "−y / a / batch"),
    "binary_cross_entropy": (
        "−Σ [y log a + (1 − y) log(1 − a)], averaged over the batch",
        "(a − y) / (a (1 − a)) / batch",
    ),
    "softmax_cross_entropy": (
        "−Σ y log softmax(a), averaged over the batch",
        "(softmax(a) Σy − y) / batch",
    ),
}
DERIVATIVE_FORMULAS = {
    "linear": "1",
    "relu": "1 where z > 0, else 0",
    "sigmoid": "a (1 − a)",
    "tanh": "1 − a²",
    "softmax": "the Jacobian a_i (δ_ij − a_j)",
}


def number(value: float, digits: int) -> str:
    """``value`` to ``digits`` significant digits, without a ``-0``."""
    text = f"{float(value):.{digits}g}"
    return "0" if text in ("-0", "0", "-0e+00") else text


def array_text(value: Any, digits: int) -> str:
    """``[1 2]``, ``[1 2; 3 4]``, and one such matrix per example (first axis) when 3-D."""
    value = np.asarray(value)
    if value.ndim == 0:
        return number(float(value), digits)
    if value.ndim == 1:
        return "[" + " ".join(number(v, digits) for v in value) + "]"
    if value.ndim == 2:
        return "[" + "; ".join(" ".join(number(v, digits) for v in row) for row in value) + "]"
    return ", ".join(array_text(block, digits) for block in value)


def _row(key: str, title: str, formula: str, value: Any, digits: int) -> str:
    formula = formula.replace("|", "\\|")
    return f"| `{key}` {title} | {formula} | `{array_text(value, digits)}` |"


_HEADER = ["| quantity | formula | value |", "| --- | --- | --- |"]


def _kernel(q: dict[str, np.ndarray], name: str) -> np.ndarray:
    """A conv weight ``(kernel, C_in, C_out)`` as its kernel matrix ``(kernel * C_in, C_out)``."""
    return q[name].reshape(-1, q[name].shape[-1]) if q[name].ndim == 3 else q[name]


def _worked_product(row: np.ndarray, column: np.ndarray, bias: float | None, digits: int) -> str:
    terms = " + ".join(
        f"{_paren(a, digits)}·{_paren(b, digits)}" for a, b in zip(row, column, strict=True)
    )
    total = float(row @ column) + (bias or 0.0)
    bias_text = "" if bias is None else f" + {_paren(bias, digits)}"
    return f"{terms}{bias_text} = {number(total, digits)}"


def _paren(value: float, digits: int) -> str:
    text = number(value, digits)
    return f"({text})" if text.startswith("-") else text


def _forward(step: LayerStep, trace: SequentialTrace, digits: int) -> list[str]:
    n, q, kind = step.index, step.quantities, step.kind
    prev = "x" if n == 1 else f"a{n - 1}"
    lines = [f"## Forward, layer {n}: {step.description}", "", *_HEADER]
    if kind == "conv1d":
        k, stride = q[f"W{n}"].shape[0], _stride(trace, n)
        source = f"a{n - 1}_pad" if f"a{n - 1}_pad" in q else f"a{n - 1}"
        if n == 1:
            lines.append(_row("a0", "input x", "(batch, length, channels)", trace.x, digits))
        if source != f"a{n - 1}":
            lines.append(
                _row(source, "padded input", "zeros added at both ends", q[source], digits)
            )
        lines += [
            _row(
                f"patches{n}",
                "im2col",
                f"row (n, i) = {source}[n, {_start(stride)} : {_start(stride)} + {k}, :], flattened",
                q[f"patches{n}"],
                digits,
            ),
            _row(
                f"K{n}",
                "kernel matrix",
                f"W{n} {q[f'W{n}'].shape} as {q[f'K{n}'].shape}; column c is filter c",
                q[f"K{n}"],
                digits,
            ),
        ]
        if f"b{n}" in q:
            lines.append(_row(f"b{n}", "bias", "one per filter", q[f"b{n}"], digits))
        lines += [
            _row(f"xw{n}", "patches times kernel", f"patches{n} @ K{n}", q[f"xw{n}"], digits),
            _row(
                f"z{n}",
                "pre-activation",
                f"patches{n} @ K{n} + b{n}" if f"b{n}" in q else f"xw{n}",
                q[f"z{n}"],
                digits,
            ),
            _row(f"a{n}", "activation", f"{_activation(trace, n)}(z{n})", q[f"a{n}"], digits),
            "",
        ]
        bias = float(q[f"b{n}"][0]) if f"b{n}" in q else None
        worked = _worked_product(q[f"patches{n}"][0], q[f"K{n}"][:, 0], bias, digits)
        lines += [
            f"One output worked out: `z{n}[0, 0, 0]` = row 0 of patches{n} · column 0 of K{n}"
            f"{' + b' + str(n) + '[0]' if bias is not None else ''} = `{worked}`.",
            "",
        ]
    elif kind == "dense":
        lines += [_row(f"W{n}", "weights", "(fan_in, units)", q[f"W{n}"], digits)]
        if f"b{n}" in q:
            lines.append(_row(f"b{n}", "bias", "one per unit", q[f"b{n}"], digits))
        lines += [
            _row(f"xw{n}", "inputs times weights", f"{prev} @ W{n}", q[f"xw{n}"], digits),
            _row(
                f"z{n}",
                "pre-activation",
                f"xw{n} + b{n}" if f"b{n}" in q else f"xw{n}",
                q[f"z{n}"],
                digits,
            ),
            _row(f"a{n}", "activation", f"{_activation(trace, n)}(z{n})", q[f"a{n}"], digits),
            "",
        ]
        inputs = (
            trace.x.reshape(len(trace.x), -1) if n == 1 else trace.layers[n - 2].quantities[prev]
        )
        bias = float(q[f"b{n}"][0]) if f"b{n}" in q else None
        worked = _worked_product(inputs[0], q[f"W{n}"][:, 0], bias, digits)
        lines += [f"One output worked out: `z{n}[0, 0]` = `{worked}`.", ""]
    elif kind == "flatten":
        lines += [
            _row(
                f"a{n}",
                "flattened",
                f"{prev} (batch, positions, channels) as (batch, positions·channels), channels fastest",
                q[f"a{n}"],
                digits,
            ),
            "",
        ]
    else:
        window, stride = _pool(trace, n)
        what = "max" if kind == "maxpool1d" else "mean"
        lines.append(
            _row(
                f"a{n}",
                "pooled",
                f"{what} of {prev}[n, {_start(stride)} : {_start(stride)} + {window}, c]",
                q[f"a{n}"],
                digits,
            )
        )
        if kind == "maxpool1d":
            lines.append(
                _row(
                    f"argmax{n}",
                    "where the maximum is",
                    f"its offset in the window, 0 to {window - 1}",
                    q[f"argmax{n}"],
                    digits,
                )
            )
        lines.append("")
    return lines


def _backward(step: LayerStep, trace: SequentialTrace, digits: int) -> list[str]:
    n, q, kind = step.index, step.quantities, step.kind
    above = "the loss" if n == len(trace.layers) else f"layer {n + 1}"
    lines = [f"## Backward, layer {n}: {step.description}", "", *_HEADER]
    lines.append(_row(f"dL_da{n}", "dLoss/d(output)", f"from {above}", q[f"dL_da{n}"], digits))
    if kind in ("conv1d", "dense"):
        act = _activation(trace, n)
        lines += [
            _row(
                f"da_dz{n}",
                "activation derivative",
                f"{act}'(z{n}) = {DERIVATIVE_FORMULAS[act]}",
                q[f"da_dz{n}"],
                digits,
            ),
            _row(
                f"delta{n}",
                "dLoss/d(pre-activation)",
                f"dL_da{n} ⊙ da_dz{n}" if act != "softmax" else f"da_dz{n}ᵀ dL_da{n}",
                q[f"delta{n}"],
                digits,
            ),
        ]
    if kind == "conv1d":
        lines += [
            _row(
                f"dK{n}",
                "kernel gradient",
                f"patches{n}ᵀ @ delta{n} (delta as one row per patch)",
                q[f"dK{n}"],
                digits,
            ),
            *(
                [
                    _row(
                        f"db{n}",
                        "bias gradient",
                        f"Σ over the rows of delta{n}",
                        q[f"db{n}"],
                        digits,
                    )
                ]
                if f"db{n}" in q
                else []
            ),
            _row(
                f"dpatches{n}", "dLoss/d(patches)", f"delta{n} @ K{n}ᵀ", q[f"dpatches{n}"], digits
            ),
        ]
        if f"dL_da{n - 1}_pad" in q:
            lines.append(
                _row(
                    f"dL_da{n - 1}_pad",
                    "col2im",
                    f"each dpatches{n} entry added back where im2col read it",
                    q[f"dL_da{n - 1}_pad"],
                    digits,
                )
            )
            lines.append(
                _row(
                    f"dL_da{n - 1}",
                    "dLoss/d(input)",
                    "the padding's entries dropped",
                    q[f"dL_da{n - 1}"],
                    digits,
                )
            )
        else:
            lines.append(
                _row(
                    f"dL_da{n - 1}",
                    "col2im",
                    f"each dpatches{n} entry added back where im2col read it",
                    q[f"dL_da{n - 1}"],
                    digits,
                )
            )
        lines += ["", _scatter_line(q, n, trace, digits), ""]
        lines.append(f"`dW{n}` is `dK{n}` as {q[f'W{n}'].shape}, the shape of W{n}.")
        lines.append("")
        return lines
    if kind == "dense":
        prev = "x" if n == 1 else f"a{n - 1}"
        lines += [
            _row(f"dW{n}", "weight gradient", f"{prev}ᵀ @ delta{n}", q[f"dW{n}"], digits),
            *(
                [
                    _row(
                        f"db{n}",
                        "bias gradient",
                        f"Σ over the batch of delta{n}",
                        q[f"db{n}"],
                        digits,
                    )
                ]
                if f"db{n}" in q
                else []
            ),
            _row(
                f"dL_da{n - 1}", "dLoss/d(input)", f"delta{n} @ W{n}ᵀ", q[f"dL_da{n - 1}"], digits
            ),
        ]
    elif kind == "flatten":
        shape = trace.shapes[n - 1]
        lines.append(
            _row(
                f"dL_da{n - 1}",
                "unflattened",
                f"dL_da{n} as (batch, {', '.join(map(str, shape))})",
                q[f"dL_da{n - 1}"],
                digits,
            )
        )
    elif kind == "maxpool1d":
        lines.append(
            _row(
                f"dL_da{n - 1}",
                "routed",
                f"each dL_da{n} entry goes to its window's maximum (argmax{n}), 0 elsewhere",
                q[f"dL_da{n - 1}"],
                digits,
            )
        )
    else:
        window = _pool(trace, n)[0]
        lines.append(
            _row(
                f"dL_da{n - 1}",
                "spread",
                f"each dL_da{n} entry / {window} to every entry of its window",
                q[f"dL_da{n - 1}"],
                digits,
            )
        )
    return [*lines, ""]


def _scatter_line(q: dict[str, np.ndarray], n: int, trace: SequentialTrace, digits: int) -> str:
    """The col2im sum for the input entry (example 0, channel 0) that most windows read."""
    name = f"dL_da{n - 1}_pad" if f"dL_da{n - 1}_pad" in q else f"dL_da{n - 1}"
    k, stride = q[f"W{n}"].shape[0], _stride(trace, n)
    length, channels = q[name].shape[1], q[name].shape[2]
    positions = len(q[f"delta{n}"][0])
    reads = {
        j: [(i, j - stride * i) for i in range(positions) if 0 <= j - stride * i < k]
        for j in range(length)
    }

    def weight(j: int) -> tuple[int, int]:  # most windows, then most non-zero shares
        shares = [q[f"dpatches{n}"][i, tap * channels] for i, tap in reads[j]]
        return len(shares), int(np.count_nonzero(shares))

    j = max(reads, key=weight)
    terms = [
        (f"dpatches{n}[{i}, {tap * channels}]", q[f"dpatches{n}"][i, tap * channels])
        for i, tap in reads[j]
    ]
    symbols = " + ".join(t for t, _ in terms)
    values = " + ".join(_paren(v, digits) for _, v in terms)
    return (
        f"col2im worked out: `{name}[0, {j}, 0]` = `{symbols}` = `{values}` = "
        f"`{number(q[name][0, j, 0], digits)}` (every window that read entry {j} adds its share)."
    )


def _start(stride: int) -> str:
    return "i" if stride == 1 else f"{stride}i"


def _stride(trace: SequentialTrace, n: int) -> int:
    return int(trace.layers[n - 1].stride or 1)


def _pool(trace: SequentialTrace, n: int) -> tuple[int, int]:
    return int(trace.layers[n - 1].window or 1), _stride(trace, n)


def _activation(trace: SequentialTrace, n: int) -> str:
    return str(trace.layers[n - 1].activation)


def _loss(trace: SequentialTrace, digits: int) -> list[str]:
    last = len(trace.layers)
    value, derivative = LOSSES_TEXT(trace.loss_name)
    return [
        f"## Loss: {trace.loss_name}",
        "",
        *_HEADER,
        _row("y", "target", "(batch, outputs)", trace.y, digits),
        _row("loss", "the loss", value.replace("a ", f"a{last} ", 1), trace.loss, digits),
        _row(
            f"dL_da{last}",
            "dLoss/d(prediction)",
            derivative,
            trace.layers[-1].quantities[f"dL_da{last}"],
            digits,
        ),
        "",
    ]


def LOSSES_TEXT(name: str) -> tuple[str, str]:
    return LOSS_FORMULAS.get(name, (name, f"dLoss/d(prediction) of {name}, / batch"))


def _update(trace: SequentialTrace, digits: int) -> list[str]:
    lr = number(trace.learning_rate, digits)
    lines = [f"## SGD update, learning rate {lr}", "", *_HEADER]
    for step in trace.layers:
        q, n = step.quantities, step.index
        for name in (f"W{n}", f"b{n}"):
            if name not in q:
                continue
            shown = "K" if step.kind == "conv1d" and name[0] == "W" else name[0]
            title = (
                "updated kernel matrix"
                if shown == "K"
                else "updated " + ("weights" if name[0] == "W" else "bias")
            )
            lines.append(
                _row(
                    f"{name}_new",
                    title,
                    f"{name} − {lr}·d{name}" + (f", shown as K{n}" if shown == "K" else ""),
                    _kernel(q, f"{name}_new"),
                    digits,
                )
            )
    return [*lines, ""]


def _after(trace: SequentialTrace, digits: int) -> list[str]:
    lines = ["## Forward pass after the update", "", *_HEADER]
    for step in trace.layers:
        n, q = step.index, step.quantities
        if f"z{n}_new" in q:
            lines.append(
                _row(
                    f"z{n}_new",
                    "pre-activation",
                    f"layer {n} with the updated parameters",
                    q[f"z{n}_new"],
                    digits,
                )
            )
        lines.append(
            _row(f"a{n}_new", "output", f"layer {n} after the update", q[f"a{n}_new"], digits)
        )
    lines.append(
        _row(
            "loss_new",
            "the loss after the step",
            f"{trace.loss_name}(a{len(trace.layers)}_new, y)",
            trace.loss_after,
            digits,
        )
    )
    change = "down" if trace.loss_after < trace.loss else "up"
    lines += [
        "",
        f"The loss went {change} from {number(trace.loss, digits)} to {number(trace.loss_after, digits)}.",
        "",
    ]
    return lines


def _checks(trace: SequentialTrace) -> list[str]:
    lines = [
        "## Check against jax.grad",
        "",
        "JAX recomputes every quantity in float64: the forward pass with lax.conv_general_dilated "
        "(not im2col), the gradients with jax.grad. Within round-off means |manual − JAX| ≤ "
        "1e-12 + 1e-10 · max|manual|.",
        "",
        "| quantity | largest abs difference | within round-off |",
        "| --- | --- | --- |",
    ]
    lines += [
        f"| `{check.quantity}` | {check.max_abs_diff:.1e} | {'✓' if check.verified else '✗'} |"
        for check in trace.checks
    ]
    return [*lines, ""]


def _history(history: list[float]) -> list[str]:
    rows = [f"| {step} | {loss:.6g} |" for step, loss in enumerate(history)]
    return [
        f"## Loss over {len(history) - 1} SGD steps",
        "",
        "| steps taken | loss |",
        "| --- | --- |",
        *rows,
        "",
        "```",
        text_plot(history),
        "```",
        "",
    ]


def summary(trace: SequentialTrace) -> str:
    """One line: how many quantities JAX recomputed, the largest difference, the verdict."""
    worst = float(np.max([check.max_abs_diff for check in trace.checks]))  # nan wins
    verdict = "verified" if trace.verified else "NOT verified"
    return (
        f"Every number computed by the manual chain rule in float64, the convolution as im2col; "
        f"{len(trace.checks)} quantities recomputed by JAX (jax.grad), largest difference "
        f"{worst:.1e}: {verdict}."
    )


def markdown(trace: SequentialTrace, title: str, digits: int = 4) -> str:
    """The worked example as Markdown."""
    lines = [f"# {title}", "", summary(trace), "", "## The network", ""]
    lines += ["| layer | what it does | output per example |", "| --- | --- | --- |"]
    lines.append(f"| input | x | {trace.shapes[0]} |")
    lines += [f"| {s.index} | {s.description} | {trace.shapes[s.index]} |" for s in trace.layers]
    examples = "example" if len(trace.x) == 1 else "examples"
    lines += [
        "",
        f"Loss {trace.loss_name}, learning rate {number(trace.learning_rate, digits)}, a batch of "
        f"{len(trace.x)} {examples}. Arrays are (batch, positions, channels), one matrix per "
        "example; im2col turns each window of the input into a row of `patches`, so a "
        "convolution is one matrix product.",
        "",
    ]
    for step in trace.layers:
        lines += _forward(step, trace, digits)
    lines += _loss(trace, digits)
    for step in reversed(trace.layers):
        lines += _backward(step, trace, digits)
    lines += _update(trace, digits) + _after(trace, digits) + _checks(trace)
    if len(trace.history) > 2:
        lines += _history(trace.history)
    return "\n".join(lines).rstrip() + "\n"


def text(trace: SequentialTrace, title: str, digits: int = 4, width: int = 110) -> str:
    """The terminal rendering (rich's Markdown) as plain text."""
    from rich.console import Console
    from rich.markdown import Markdown

    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(Markdown(markdown(trace, title, digits)))
    return console.file.getvalue()  # type: ignore[attr-defined]
