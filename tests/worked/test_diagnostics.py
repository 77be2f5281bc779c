"""Diagnostics of a Trace against first principles: sigmoid'(z) by hand, norms of manual gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest

import jaxbp
from jaxbp import manual
from jaxbp.worked import grading as worked
from jaxbp.worked.diagnostics import diagnose


def _sigmoid_derivative(z: float) -> float:
    s = 1.0 / (1.0 + math.exp(-z))
    return s * (1.0 - s)


def _explain(sizes, activations, ws, bs, x, y, loss="half_se", lr=0.1):
    spec = jaxbp.MLP(sizes=sizes, activations=activations, bias=bs is not None)
    params = [
        {"w": np.asarray(w, float)} | ({} if bs is None else {"b": np.asarray(b, float)})
        for w, b in zip(ws, bs or [None] * len(ws), strict=True)
    ]
    return spec, params, jaxbp.explain(spec, loss, params, x, y, lr)


def test_worked_network_sigmoid_saturates_and_the_gradient_vanishes() -> None:
    example = worked.EXAMPLES["relu-sigmoid-linear"]
    spec, params, trace = _explain(
        example.sizes, example.activations, example.weights, example.biases, example.x, example.y
    )
    result = diagnose(trace)
    hidden2 = result.layers[1]
    assert hidden2.derivative_min == pytest.approx(_sigmoid_derivative(6.0), rel=1e-12)  # ≈ 0.0025
    assert hidden2.derivative_max == pytest.approx(_sigmoid_derivative(5.0), rel=1e-12)
    assert round(hidden2.derivative_min, 4) == 0.0025
    _, grads = manual.backprop(spec, "half_se", params, example.x, example.y)
    norms = [np.linalg.norm(g["w"]) for g in grads]
    assert [layer.grad_norm for layer in result.layers] == pytest.approx(norms, rel=1e-12)
    assert result.layers[1].ratio_to_above == pytest.approx(norms[1] / norms[2], rel=1e-12)
    assert result.layers[2].ratio_to_above is None
    assert any(w.startswith("Layer 2 (sigmoid) is saturated") for w in result.warnings)
    assert any(
        w.startswith("Vanishing gradient: the weight gradient of layer 2") for w in result.warnings
    )
    assert not any("Dead ReLU" in w or "Exploding" in w for w in result.warnings)


def test_dead_relu_unit_is_named() -> None:
    # unit h2 has z = -x - 0.5 < 0 on both examples: it outputs 0 and gets no gradient
    spec, params, trace = _explain(
        (1, 3, 1), ("relu", "linear"), [[[1.0, -1.0, 2.0]], [[1.0], [1.0], [1.0]]],
        [[0.0, -0.5, 0.0], [0.0]], [[1.0], [2.0]], [[0.0], [1.0]],
    )  # fmt: skip
    result = diagnose(trace)
    assert result.layers[0].dead_units == (1,)
    _, grads = manual.backprop(spec, "half_se", params, [[1.0], [2.0]], [[0.0], [1.0]])
    assert np.all(grads[0]["w"][:, 1] == 0) and grads[0]["b"][1] == 0
    assert any(w.startswith("Dead ReLU in layer 1: unit(s) h2 ") for w in result.warnings)


def test_exploding_gradient_is_flagged() -> None:
    # dW1 / dW2 = (x W2 delta) / (x W1 delta) = W2 / W1 = 1000 for a 1-1-1 linear network
    _, _, trace = _explain(
        (1, 1, 1), ("linear", "linear"), [[[0.01]], [[10.0]]], None, [[1.0]], [[0.0]]
    )
    result = diagnose(trace)
    assert result.layers[0].ratio_to_above == pytest.approx(1000.0, rel=1e-12)
    assert any(
        w.startswith("Exploding gradient: the weight gradient of layer 1 is 1e+03")
        for w in result.warnings
    )


def test_a_healthy_network_gets_no_warning() -> None:
    example = worked.EXAMPLES["relu-2-2-1"]
    _, _, trace = _explain(
        example.sizes, example.activations, example.weights, None, example.x, example.y
    )
    assert diagnose(trace).warnings == ()


def test_a_zero_gradient_below_a_nonzero_one_is_a_warning_not_a_crash() -> None:
    # sigmoid'(1e308) is exactly 0 in float64, so dW1 = 0 while dW2 = a1 (a2 - y) = 1 * 0.5
    _, _, trace = _explain(
        (1, 1, 1), ("sigmoid", "linear"), [[[1e308]], [[0.5]]], [[0.0], [0.0]], [[1.0]], [[0.0]]
    )
    result = diagnose(trace)
    assert result.layers[0].grad_norm == 0.0 and result.layers[1].grad_norm == pytest.approx(0.5)
    assert result.layers[0].ratio_to_above == 0.0
    assert any(
        w.startswith("Vanishing gradient: the weight gradient of layer 1 is exactly zero")
        for w in result.warnings
    )


def test_huge_weights_give_a_not_finite_warning_and_no_ratio() -> None:
    # z2 = 1e308 * 2 overflows to inf: the loss and the gradients are not finite
    _, _, trace = _explain(
        (1, 1, 1), ("linear", "linear"), [[[1e308]], [[2.0]]], None, [[1.0]], [[0.0]]
    )
    result = diagnose(trace)
    assert all(layer.ratio_to_above is None for layer in result.layers)
    assert result.warnings[0].startswith("The loss (inf) or a gradient is not finite")
