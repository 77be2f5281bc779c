"""The manual chain rule's own pieces against first principles."""

from __future__ import annotations

import numpy as np
import pytest

import jaxbp
from jaxbp import manual


def test_softmax_jacobian_by_finite_differences() -> None:
    z = np.array([[0.3, -1.2, 2.0]])
    jacobian = manual.softmax_jacobian(z)[0]
    eps = 1e-6
    for j in range(3):
        step = np.zeros_like(z)
        step[0, j] = eps
        column = (
            manual.ACTIVATIONS["softmax"](z + step) - manual.ACTIVATIONS["softmax"](z - step)
        ) / (2 * eps)
        np.testing.assert_allclose(jacobian[:, j], column[0], rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("name", ["linear", "relu", "sigmoid", "tanh", "gelu"])
def test_elementwise_derivatives_by_finite_differences(name) -> None:
    z = np.array([[-2.0, -0.3, 0.4, 1.7]])
    eps = 1e-6
    numeric = (manual.ACTIVATIONS[name](z + eps) - manual.ACTIVATIONS[name](z - eps)) / (2 * eps)
    np.testing.assert_allclose(manual.DERIVATIVES[name](z), numeric, rtol=1e-7, atol=1e-10)


def test_softmax_cross_entropy_simplified_delta_equals_full_jacobian_route() -> None:
    spec = jaxbp.MLP(sizes=(2, 3), activations=("softmax",))
    rng = np.random.default_rng(0)
    params = [{"w": rng.standard_normal((2, 3)), "b": rng.standard_normal(3)}]
    x = rng.standard_normal((4, 2))
    t = np.eye(3)[[0, 2, 1, 1]]
    record = manual.backward(spec, "cross_entropy", params, x, t)
    probabilities = record.forward.activations[-1]
    np.testing.assert_allclose(
        record.deltas[0],
        (probabilities - t) / len(t),  # dL/dz = (p - t) / batch when each row of t sums to one
        rtol=1e-12,
        atol=1e-15,
    )


def test_sigmoid_is_stable_for_large_inputs() -> None:
    with np.errstate(over="raise"):
        values = manual.ACTIVATIONS["sigmoid"](np.array([[-1000.0, 0.0, 1000.0]]))
    np.testing.assert_allclose(values, [[0.0, 0.5, 1.0]])


def test_unknown_loss() -> None:
    spec = jaxbp.MLP(sizes=(1, 1), activations=("linear",))
    with pytest.raises(ValueError, match="unknown loss 'l1'"):
        manual.backprop(spec, "l1", [{"w": np.ones((1, 1)), "b": np.zeros(1)}], [[1.0]], [[1.0]])
