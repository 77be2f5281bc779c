"""The per-layer sections of the conv worked example: the forward and backward tables of a Conv1D,
pooling, Flatten or Dense layer, one number of each worked out, and the number formatting.

A table row is a quantity's jaxbp name, what it is, its formula and its value (a matrix written
``[row; row]``, a 3-D array ``(batch, positions, channels)`` one matrix per example).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from jaxbp.worked.render._notation import matrix_text, number

if TYPE_CHECKING:
    from jaxbp.worked.conv_trace import LayerStep, SequentialTrace

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
    "gelu": "Φ(z) + z φ(z), Φ and φ the normal CDF and density",
}


def table_row(key: str, title: str, formula: str, value: Any, digits: int) -> str:
    formula = formula.replace("|", "\\|")
    return f"| `{key}` {title} | {formula} | `{matrix_text(value, digits)}` |"


HEADER = ["| quantity | formula | value |", "| --- | --- | --- |"]


def kernel_matrix(q: dict[str, np.ndarray], name: str) -> np.ndarray:
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


def forward_section(step: LayerStep, trace: SequentialTrace, digits: int) -> list[str]:
    n, q, kind = step.index, step.quantities, step.kind
    prev = "x" if n == 1 else f"a{n - 1}"
    lines = [f"## Forward, layer {n}: {step.description}", "", *HEADER]
    if kind == "conv1d":
        k, stride = q[f"W{n}"].shape[0], _stride(trace, n)
        source = f"a{n - 1}_pad" if f"a{n - 1}_pad" in q else f"a{n - 1}"
        if n == 1:
            lines.append(table_row("a0", "input x", "(batch, length, channels)", trace.x, digits))
        if source != f"a{n - 1}":
            lines.append(
                table_row(source, "padded input", "zeros added at both ends", q[source], digits)
            )
        lines += [
            table_row(
                f"patches{n}",
                "im2col",
                f"row (n, i) = {source}[n, {_start(stride)} : {_start(stride)} + {k}, :], flattened",
                q[f"patches{n}"],
                digits,
            ),
            table_row(
                f"K{n}",
                "kernel matrix",
                f"W{n} {q[f'W{n}'].shape} as {q[f'K{n}'].shape}; column c is filter c",
                q[f"K{n}"],
                digits,
            ),
        ]
        if f"b{n}" in q:
            lines.append(table_row(f"b{n}", "bias", "one per filter", q[f"b{n}"], digits))
        lines += [
            table_row(f"xw{n}", "patches times kernel", f"patches{n} @ K{n}", q[f"xw{n}"], digits),
            table_row(
                f"z{n}",
                "pre-activation",
                f"patches{n} @ K{n} + b{n}" if f"b{n}" in q else f"xw{n}",
                q[f"z{n}"],
                digits,
            ),
            table_row(f"a{n}", "activation", f"{_activation(trace, n)}(z{n})", q[f"a{n}"], digits),
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
        lines += [table_row(f"W{n}", "weights", "(fan_in, units)", q[f"W{n}"], digits)]
        if f"b{n}" in q:
            lines.append(table_row(f"b{n}", "bias", "one per unit", q[f"b{n}"], digits))
        lines += [
            table_row(f"xw{n}", "inputs times weights", f"{prev} @ W{n}", q[f"xw{n}"], digits),
            table_row(
                f"z{n}",
                "pre-activation",
                f"xw{n} + b{n}" if f"b{n}" in q else f"xw{n}",
                q[f"z{n}"],
                digits,
            ),
            table_row(f"a{n}", "activation", f"{_activation(trace, n)}(z{n})", q[f"a{n}"], digits),
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
            table_row(
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
            table_row(
                f"a{n}",
                "pooled",
                f"{what} of {prev}[n, {_start(stride)} : {_start(stride)} + {window}, c]",
                q[f"a{n}"],
                digits,
            )
        )
        if kind == "maxpool1d":
            lines.append(
                table_row(
                    f"argmax{n}",
                    "where the maximum is",
                    f"its offset in the window, 0 to {window - 1}",
                    q[f"argmax{n}"],
                    digits,
                )
            )
        lines.append("")
    return lines


def backward_section(step: LayerStep, trace: SequentialTrace, digits: int) -> list[str]:
    n, q, kind = step.index, step.quantities, step.kind
    above = "the loss" if n == len(trace.layers) else f"layer {n + 1}"
    lines = [f"## Backward, layer {n}: {step.description}", "", *HEADER]
    lines.append(table_row(f"dL_da{n}", "dLoss/d(output)", f"from {above}", q[f"dL_da{n}"], digits))
    if kind in ("conv1d", "dense"):
        act = _activation(trace, n)
        lines += [
            table_row(
                f"da_dz{n}",
                "activation derivative",
                f"{act}'(z{n}) = {DERIVATIVE_FORMULAS[act]}",
                q[f"da_dz{n}"],
                digits,
            ),
            table_row(
                f"delta{n}",
                "dLoss/d(pre-activation)",
                f"dL_da{n} ⊙ da_dz{n}" if act != "softmax" else f"da_dz{n}ᵀ dL_da{n}",
                q[f"delta{n}"],
                digits,
            ),
        ]
    if kind == "conv1d":
        lines += [
            table_row(
                f"dK{n}",
                "kernel gradient",
                f"patches{n}ᵀ @ delta{n} (delta as one row per patch)",
                q[f"dK{n}"],
                digits,
            ),
            *(
                [
                    table_row(
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
            table_row(
                f"dpatches{n}", "dLoss/d(patches)", f"delta{n} @ K{n}ᵀ", q[f"dpatches{n}"], digits
            ),
        ]
        if f"dL_da{n - 1}_pad" in q:
            lines.append(
                table_row(
                    f"dL_da{n - 1}_pad",
                    "col2im",
                    f"each dpatches{n} entry added back where im2col read it",
                    q[f"dL_da{n - 1}_pad"],
                    digits,
                )
            )
            lines.append(
                table_row(
                    f"dL_da{n - 1}",
                    "dLoss/d(input)",
                    "the padding's entries dropped",
                    q[f"dL_da{n - 1}"],
                    digits,
                )
            )
        else:
            lines.append(
                table_row(
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
            table_row(f"dW{n}", "weight gradient", f"{prev}ᵀ @ delta{n}", q[f"dW{n}"], digits),
            *(
                [
                    table_row(
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
            table_row(
                f"dL_da{n - 1}", "dLoss/d(input)", f"delta{n} @ W{n}ᵀ", q[f"dL_da{n - 1}"], digits
            ),
        ]
    elif kind == "flatten":
        shape = trace.shapes[n - 1]
        lines.append(
            table_row(
                f"dL_da{n - 1}",
                "unflattened",
                f"dL_da{n} as (batch, {', '.join(map(str, shape))})",
                q[f"dL_da{n - 1}"],
                digits,
            )
        )
    elif kind == "maxpool1d":
        lines.append(
            table_row(
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
            table_row(
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
