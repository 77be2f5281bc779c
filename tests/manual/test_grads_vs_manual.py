"""jax.grad against the manual chain rule (NumPy float64) on many random networks."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from jax.test_util import check_grads

import jaxbp
from tests.helpers import assert_close
from tests.strategies import ACTIVATION_NAMES, LOSS_NAMES, networks

PAIRS = list(itertools.product(ACTIVATION_NAMES, LOSS_NAMES))


def _compare(net: dict) -> None:
    spec, loss, params, x, y = net["spec"], net["loss"], net["params"], net["x"], net["y"]
    if spec.output_activation == "softmax" and loss == "softmax_cross_entropy":
        # training refuses the softmax applied twice; its chain rule is still checked, by jax.grad
        with pytest.raises(ValueError, match="applied twice"):
            jaxbp.loss_and_grad(spec, loss, params, x, y)
        value, grads = jax.value_and_grad(lambda p: jaxbp.LOSSES[loss](spec.apply(p, x), y))(params)
    else:
        value, grads = jaxbp.loss_and_grad(spec, loss, params, x, y)
    manual_value, manual_grads = jaxbp.manual.backprop(spec, loss, params, x, y)
    assert np.isfinite(manual_value)
    assert_close(value, manual_value)
    assert_close(grads, manual_grads)


@given(net=networks())
def test_random_networks_match_manual_chain_rule(net: dict) -> None:
    _compare(net)


@pytest.mark.parametrize(("activation", "loss"), PAIRS, ids=[f"{a}-{name}" for a, name in PAIRS])
def test_every_activation_loss_pair_matches_manual(activation: str, loss: str) -> None:
    @settings(max_examples=4)
    @given(net=networks(activation=activation, loss=loss))
    def check(net: dict) -> None:
        assert activation in net["spec"].activations
        _compare(net)

    check()


def test_gradients_of_a_non_square_network_with_negative_relu_inputs() -> None:
    # Widths [3, 5, 4, 2], batch 7 (equal to no width), biases that push relu inputs below zero.
    spec = jaxbp.MLP(sizes=(3, 5, 4, 2), activations=("relu", "tanh", "linear"))
    key_w, key_x, key_y = jax.random.split(jax.random.key(1), 3)
    params = spec.init(key_w, jnp.float64)
    params[0]["b"] = jnp.array([-0.5, 0.3, -1.0, 0.2, 0.0])
    x = jax.random.normal(key_x, (7, 3), jnp.float64)
    y = jax.random.normal(key_y, (7, 2), jnp.float64)
    z1 = x @ params[0]["w"] + params[0]["b"]
    assert (z1 < 0).any() and (z1 > 0).any()
    _compare({"spec": spec, "loss": "mse", "params": params, "x": x, "y": y})


@pytest.mark.parametrize(
    ("activations", "loss"),
    [
        (("tanh", "sigmoid"), "binary_cross_entropy"),
        (("sigmoid", "softmax"), "cross_entropy"),
        (("tanh", "linear"), "softmax_cross_entropy"),
        (("relu", "linear"), "half_se"),
    ],
)
def test_gradients_match_finite_differences(activations: tuple[str, str], loss: str) -> None:
    spec = jaxbp.MLP(sizes=(3, 4, 2), activations=activations)
    key_w, key_x, key_y = jax.random.split(jax.random.key(2), 3)
    params = spec.init(key_w, jnp.float64)
    x = jax.random.normal(key_x, (5, 3), jnp.float64)
    y = jax.nn.softmax(jax.random.normal(key_y, (5, 2), jnp.float64))

    def batch_loss(p):
        return jaxbp.LOSSES[loss](spec.apply(p, x), y)

    check_grads(batch_loss, (params,), order=1, modes=("rev",))
    # and the manual chain rule agrees with the same function
    _, manual_grads = jaxbp.manual.backprop(spec, loss, params, x, y)
    assert_close(jax.grad(batch_loss)(params), manual_grads)
