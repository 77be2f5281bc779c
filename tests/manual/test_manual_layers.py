"""The hand-written chain rule of every layer (jaxbp.manual.layers) against jax.grad and finite
differences, each layer alone and composed, on hypothesis-drawn shapes."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

import jaxbp
from jaxbp.layers import (
    Activation,
    AvgPool1D,
    AvgPool2D,
    Conv1D,
    Conv2D,
    Dense,
    Flatten,
    MaxPool1D,
    MaxPool2D,
    Reshape,
    Residual,
    Sequential,
)
from jaxbp.manual import layers as manual_layers
from tests.helpers import assert_close
from tests.strategies import make_targets

ELEMENTWISE = ["linear", "relu", "sigmoid", "tanh", "gelu"]
OUTPUT_FOR_LOSS = {
    "half_se": "linear",
    "mse": "tanh",
    "softmax_cross_entropy": "linear",
    "cross_entropy": "softmax",
    "binary_cross_entropy": "sigmoid",
}


def random_params(net: Sequential, rng: np.random.Generator) -> list:
    """Params in the layout of net.init, drawn from rng: weights ~ N(0, 1/fan_in), non-zero biases."""

    def draw(path, leaf):
        if path[-1].key == "b":
            return jnp.asarray(0.5 * rng.standard_normal(leaf.shape))
        fan_in = math.prod(leaf.shape[:-1])
        return jnp.asarray(rng.standard_normal(leaf.shape) / math.sqrt(fan_in))

    shapes = jax.eval_shape(lambda: net.init(jax.random.key(0), jnp.float64))
    return jax.tree_util.tree_map_with_path(draw, shapes)


def compare_with_jax(net: Sequential, loss: str, rng: np.random.Generator, batch: int) -> None:
    params = random_params(net, rng)
    x = jnp.asarray(rng.standard_normal((batch, *net.input_shape)))
    y = jnp.asarray(make_targets(loss, rng, (batch, *net.output_shape)))
    value, grads = jax.jit(jax.value_and_grad(lambda p, x, y: jaxbp.LOSSES[loss](net(p, x), y)))(
        params, x, y
    )
    manual_value, manual_grads = manual_layers.backprop(net, loss, params, x, y)
    assert np.isfinite(manual_value)
    assert_close(value, manual_value)
    assert_close(grads, manual_grads)


@st.composite
def spatial_layer(draw: st.DrawFn, shape: tuple[int, ...]) -> object:
    """One conv, pooling, activation or residual layer that fits examples of ``shape``."""
    ndim, smallest = len(shape) - 1, min(shape[:-1])
    kind = draw(st.sampled_from(["conv", "conv", "max", "avg", "activation", "residual"]))
    activation = draw(st.sampled_from([*ELEMENTWISE, "softmax"]))
    if kind == "activation":
        return Activation(activation)
    if kind == "residual":  # a SAME, stride-1 conv keeps the shape
        conv = (Conv1D if ndim == 1 else Conv2D)(
            shape[-1], draw(st.integers(1, 3)), padding="SAME", activation=activation
        )
        return Residual((conv,) if draw(st.booleans()) else (conv, Activation("tanh")))
    if kind in ("max", "avg"):
        window = tuple(draw(st.integers(1, min(3, smallest))) for _ in range(ndim))
        stride = tuple(draw(st.integers(1, 3)) for _ in range(ndim))
        pool = {(1, "max"): MaxPool1D, (2, "max"): MaxPool2D, (1, "avg"): AvgPool1D}
        return pool.get((ndim, kind), AvgPool2D)(window, stride)
    padding = draw(st.sampled_from(["VALID", "SAME", 0, 1, 2]))
    kernel = tuple(draw(st.integers(1, min(4, smallest))) for _ in range(ndim))
    return (Conv1D if ndim == 1 else Conv2D)(
        features=draw(st.integers(1, 4)),
        kernel_size=kernel,
        stride=tuple(draw(st.integers(1, 3)) for _ in range(ndim)),
        padding=padding,
        activation=activation,
        bias=draw(st.booleans()),
    )


@st.composite
def networks(draw: st.DrawFn, depth: tuple[int, int] = (1, 3)) -> dict:
    """Spatial layers on a 1-D or 2-D input, then Flatten, maybe a dense residual, then Dense."""
    ndim = draw(st.integers(1, 2))
    shape = (*(draw(st.integers(3, 8)) for _ in range(ndim)), draw(st.integers(1, 3)))
    layers: list = []
    current = shape
    for _ in range(draw(st.integers(*depth))):
        layer = draw(spatial_layer(current))
        current = Sequential(layers=(*layers, layer), input_shape=shape).output_shape
        layers.append(layer)
    layers.append(Flatten())
    width = math.prod(current)
    if draw(st.booleans()):
        layers.append(Residual((Dense(width, activation=draw(st.sampled_from(ELEMENTWISE))),)))
    loss = draw(st.sampled_from(sorted(OUTPUT_FOR_LOSS)))
    layers.append(Dense(draw(st.integers(2, 5)), activation=OUTPUT_FOR_LOSS[loss]))
    return {
        "net": Sequential(layers=tuple(layers), input_shape=shape),
        "loss": loss,
        "batch": draw(st.integers(1, 5)),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


@pytest.mark.slow
@settings(max_examples=20)
@given(case=networks(depth=(1, 1)))
def test_each_layer_alone_matches_jax_grad(case: dict) -> None:
    compare_with_jax(case["net"], case["loss"], np.random.default_rng(case["seed"]), case["batch"])


@pytest.mark.slow
@settings(max_examples=20)
@given(case=networks(depth=(2, 4)))
def test_composed_networks_match_jax_grad(case: dict) -> None:
    compare_with_jax(case["net"], case["loss"], np.random.default_rng(case["seed"]), case["batch"])


def test_the_mnist1d_cnn_matches_jax_grad_with_integer_labels() -> None:
    # The paper's CNN, integer labels through optax's loss on the JAX side, one-hot targets in
    # the manual chain rule.
    net = Sequential(
        layers=(
            Reshape((40, 1)),
            Conv1D(25, 5, stride=2, padding=1, activation="relu"),
            Conv1D(25, 3, stride=2, padding=1, activation="relu"),
            Conv1D(25, 3, stride=2, padding=1, activation="relu"),
            Flatten(),
            Dense(10),
        ),
        input_shape=(40,),
    )
    rng = np.random.default_rng(3)
    params = random_params(net, rng)
    x = rng.standard_normal((7, 40))
    labels = rng.integers(0, 10, 7)

    def loss(p):
        return optax.softmax_cross_entropy_with_integer_labels(net(p, x), labels).mean()

    value, grads = jax.jit(jax.value_and_grad(loss))(params)
    manual_value, manual_grads = manual_layers.backprop(
        net, "softmax_cross_entropy", params, x, labels
    )
    assert_close(value, manual_value)
    assert_close(grads, manual_grads)


# --- a second oracle: central differences of the manual forward pass ---------------------------
TINY = [
    ((Conv1D(2, 3, stride=2, padding=(2, 1), activation="tanh"),), (5, 2)),
    ((Conv2D(2, (2, 3), stride=(1, 2), padding="SAME", activation="sigmoid"),), (3, 4, 2)),
    ((MaxPool1D(2, stride=1),), (5, 2)),
    ((AvgPool2D((2, 2), stride=1),), (3, 3, 1)),
    ((Residual((Conv1D(2, 3, padding="SAME", activation="tanh"),)),), (4, 2)),
    ((Activation("softmax"),), (3, 3)),
    ((Reshape((6, 1)), Conv1D(1, 2, activation="relu"), AvgPool1D(2)), (6,)),
]


def _central_differences(f, value: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(value)
    for index in np.ndindex(value.shape):
        step = np.zeros_like(value)
        step[index] = eps
        grad[index] = (f(value + step) - f(value - step)) / (2 * eps)
    return grad


@pytest.mark.parametrize(
    ("layers", "shape"),
    TINY,
    ids=["conv1d", "conv2d-same", "maxpool1d", "avgpool2d", "residual", "softmax", "composed"],
)
def test_manual_gradients_match_central_differences(layers, shape) -> None:
    net = Sequential(layers=(*layers, Flatten(), Dense(2)), input_shape=shape)
    rng = np.random.default_rng(7)
    params = jax.tree.map(np.asarray, random_params(net, rng))
    x = rng.standard_normal((2, *shape))
    y = rng.standard_normal((2, 2))
    record = manual_layers.backward(net, "half_se", params, x, y)
    leaves, treedef = jax.tree.flatten(params)
    for index, leaf in enumerate(leaves):

        def loss_at(value, index=index):
            changed = [value if i == index else other for i, other in enumerate(leaves)]
            return manual_layers.backward(
                net, "half_se", jax.tree.unflatten(treedef, changed), x, y
            ).loss

        numeric = _central_differences(loss_at, leaf)
        np.testing.assert_allclose(
            jax.tree.leaves(record.grads)[index], numeric, rtol=1e-6, atol=1e-8
        )
    numeric_x = _central_differences(
        lambda v: manual_layers.backward(net, "half_se", params, v, y).loss, x
    )
    np.testing.assert_allclose(record.dloss_dinput, numeric_x, rtol=1e-6, atol=1e-8)


def test_jax_gradients_of_the_layers_pass_check_grads() -> None:
    net = Sequential(
        layers=(
            Conv2D(2, 2, padding=1, activation="tanh"),
            MaxPool2D(2),
            Residual((Conv2D(2, 3, padding="SAME", activation="sigmoid"),)),
            AvgPool2D((1, 2)),
            Flatten(),
            Dense(2),
        ),
        input_shape=(4, 5, 1),
    )
    rng = np.random.default_rng(2)
    params = random_params(net, rng)
    x = jnp.asarray(rng.standard_normal((2, 4, 5, 1)))
    check_grads(
        lambda p: jaxbp.LOSSES["half_se"](net(p, x), 0.0), (params,), order=1, modes=("rev",)
    )


# --- the pieces of the chain rule ---------------------------------------------------------------
def test_col2im_is_the_adjoint_of_im2col() -> None:
    # <im2col(x), p> == <x, col2im(p)> for every x and p: col2im adds each entry back exactly
    # where im2col read it (overlapping windows included).
    rng = np.random.default_rng(0)
    for window, stride in [((3,), (1,)), ((2, 3), (2, 1)), ((3, 3), (2, 2))]:
        x = rng.standard_normal((2, *(7,) * len(window), 3))
        windows = manual_layers.im2col(x, window, stride)
        p = rng.standard_normal(windows.shape)
        back = manual_layers.col2im(p, x.shape, window, stride)
        assert np.vdot(windows, p) == pytest.approx(np.vdot(x, back), rel=1e-12)


def test_max_pooling_routes_the_gradient_to_each_windows_maximum() -> None:
    net = Sequential(layers=(MaxPool1D(2, stride=1), Flatten()), input_shape=(4, 1))
    x = np.array([[[1.0], [3.0], [2.0], [0.0]]])  # windows [1,3], [3,2], [2,0]: maxima 3, 3, 2
    y = np.zeros((1, 3))
    record = manual_layers.backward(net, "half_se", [{}, {}], x, y)
    # dL/d(out) = out - y = (3, 3, 2); x[1] is the maximum of two windows and collects both.
    np.testing.assert_array_equal(record.dloss_dinput[0, :, 0], [0.0, 6.0, 2.0, 0.0])


def test_unknown_loss_raises() -> None:
    net = Sequential(layers=(Dense(1),), input_shape=(2,))
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        manual_layers.backprop(
            net, "hinge", [{"w": np.ones((2, 1)), "b": np.zeros(1)}], [[1, 2]], [[0]]
        )


def test_predictions_and_targets_of_the_wrong_shape_raise() -> None:
    net = Sequential(layers=(Conv1D(2, 2),), input_shape=(3, 1))
    params = [{"w": np.ones((2, 1, 2)), "b": np.zeros(2)}]
    with pytest.raises(ValueError, match=r"predictions have shape \(1, 2, 2\).*Flatten"):
        manual_layers.backprop(net, "half_se", params, np.ones((1, 3, 1)), np.ones((1, 2, 2)))
    flat = Sequential(layers=(Conv1D(2, 2), Flatten()), input_shape=(3, 1))
    with pytest.raises(ValueError, match=r"y has shape \(1, 3\).*\(1, 4\)"):
        manual_layers.backprop(flat, "half_se", [*params, {}], np.ones((1, 3, 1)), np.ones((1, 3)))


def test_jaxbp_manual_backprop_takes_a_sequential_like_loss_and_grad() -> None:
    # The entry points every network shares: jaxbp.loss_and_grad (jax.grad) and
    # jaxbp.manual.backprop (by hand), here with a loss name and one-hot targets.
    net = Sequential(
        layers=(Conv1D(3, 3, stride=2, padding="SAME", activation="tanh"), Flatten(), Dense(4)),
        input_shape=(7, 2),
    )
    rng = np.random.default_rng(11)
    params = random_params(net, rng)
    x = jnp.asarray(rng.standard_normal((5, 7, 2)))
    y = jnp.asarray(make_targets("softmax_cross_entropy", rng, (5, 4)))
    value, grads = jaxbp.loss_and_grad(net, "softmax_cross_entropy", params, x, y)
    manual_value, manual_grads = jaxbp.manual.backprop(net, "softmax_cross_entropy", params, x, y)
    assert_close(value, manual_value)
    assert_close(grads, manual_grads)
