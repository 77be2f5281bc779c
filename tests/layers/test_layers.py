"""Layer specs and the JAX forward pass: shapes, errors, and outputs against independent oracles.

The oracles: convolution and pooling written as explicit loops over output positions in NumPy,
``lax.conv_general_dilated`` for the im2col path, and first principles for the rest.
"""

from __future__ import annotations

import dataclasses
import doctest

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    ops,
    sequential,
)
from tests.helpers import assert_close
from tests.layers.loops import loop_conv as _loop_conv
from tests.layers.loops import loop_pool as _loop_pool


@st.composite
def conv_cases(draw: st.DrawFn) -> dict:
    ndim = draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(ndim))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(ndim))
    padding = draw(st.sampled_from(["VALID", "SAME", 0, 1, 2]))
    spatial = tuple(draw(st.integers(k, k + 5)) for k in kernel)
    return {
        "layer": (Conv1D if ndim == 1 else Conv2D)(
            features=draw(st.integers(1, 4)), kernel_size=kernel, stride=stride, padding=padding
        ),
        "shape": (*spatial, draw(st.integers(1, 3))),
        "batch": draw(st.integers(1, 4)),
        "seed": draw(st.integers(0, 2**16)),
    }


@pytest.mark.slow
@settings(max_examples=15)
@given(case=conv_cases())
def test_im2col_and_lax_convolutions_equal_the_loop_definition(case: dict) -> None:
    layer = case["layer"]
    net = Sequential(layers=(layer,), input_shape=case["shape"], conv_impl="im2col")
    rng = np.random.default_rng(case["seed"])
    params = [
        {
            "w": rng.standard_normal((*layer.kernel_size, case["shape"][-1], layer.features)),
            "b": rng.standard_normal(layer.features),
        }
    ]
    x = rng.standard_normal((case["batch"], *case["shape"]))
    pads = jaxbp.layers.specs.conv_pads(layer, case["shape"][:-1])
    expected = _loop_conv(x, params[0]["w"], params[0]["b"], layer.stride, pads)
    assert_close(net(params, x), expected)
    assert_close(dataclasses.replace(net, conv_impl="lax")(params, x), expected)


def test_same_padding_keeps_ceil_length_over_stride() -> None:
    for length, stride in [(7, 1), (7, 2), (8, 3), (5, 5)]:
        net = Sequential(
            layers=(Conv1D(2, kernel_size=3, stride=stride, padding="SAME"),),
            input_shape=(length, 1),
        )
        assert net.output_shape == (-(-length // stride), 2)


@pytest.mark.parametrize(
    ("layer", "reduce"),
    [
        (MaxPool1D(2), np.max),
        (MaxPool1D(3, stride=1), np.max),
        (AvgPool1D(3, stride=2), np.mean),
        (MaxPool2D((2, 3)), np.max),
        (AvgPool2D(2, stride=1), np.mean),
    ],
    ids=["max1d", "max1d-overlap", "avg1d", "max2d", "avg2d-overlap"],
)
def test_pooling_equals_the_loop_definition(layer, reduce) -> None:
    shape = (7, 3) if layer.ndim == 1 else (5, 7, 2)
    x = np.random.default_rng(0).standard_normal((3, *shape))
    net = Sequential(layers=(layer,), input_shape=shape)
    assert_close(net([{}], x), _loop_pool(x, layer.window, layer.stride, reduce))


def test_flatten_reshape_activation_dense_residual_by_first_principles() -> None:
    rng = np.random.default_rng(1)
    w1, b1 = rng.standard_normal((6, 6)), rng.standard_normal(6)
    w2 = rng.standard_normal((6, 3))
    net = Sequential(
        layers=(
            Flatten(),
            Residual((Dense(6, activation="tanh"), Activation("relu"))),
            Dense(3, activation="softmax", bias=False),
            Reshape((3, 1)),
        ),
        input_shape=(2, 3),
    )
    x = rng.standard_normal((4, 2, 3))
    flat = x.reshape(4, 6)
    hidden = flat + np.maximum(np.tanh(flat @ w1 + b1), 0.0)
    logits = hidden @ w2
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    params = [{}, {"layers": [{"w": w1, "b": b1}, {}]}, {"w": w2}, {}]
    assert_close(net(params, x), expected[:, :, None])
    assert_close(net(params, x[0]), expected[0, :, None])  # one example, no batch axis


def test_init_gives_the_documented_layout_and_dtype(key) -> None:
    net = Sequential(
        layers=(
            Conv2D(2, kernel_size=(3, 2), activation="relu"),
            MaxPool2D(2),
            Flatten(),
            Residual((Dense(8, activation="tanh"), Dense(8, bias=False))),
            Dense(3),
        ),
        input_shape=(7, 6, 2),
    )
    params = net.init(key, jnp.float64)
    shapes = jax.tree.map(lambda leaf: leaf.shape, params)
    assert shapes == [
        {"w": (3, 2, 2, 2), "b": (2,)},
        {},
        {},
        {"layers": [{"w": (8, 8), "b": (8,)}, {"w": (8, 8)}]},
        {"w": (8, 3), "b": (3,)},
    ]
    assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(params))
    assert not np.any(params[0]["b"]) and np.std(params[0]["w"]) > 0
    # He initialisation on the relu conv: variance 2 / fan_in with fan_in = 3 * 2 * 2.
    big = Sequential(layers=(Conv1D(4000, 3, activation="relu"),), input_shape=(5, 4))
    w = big.init(key, jnp.float64)[0]["w"]
    assert np.var(w) == pytest.approx(2 / 12, rel=0.05)


def test_a_sequential_is_hashable_and_static_under_jit(key) -> None:
    net = Sequential(layers=(Conv1D(2, 3), Flatten(), Dense(1)), input_shape=(5, 1))
    same = Sequential(layers=[Conv1D(2, (3,)), Flatten(), Dense(1)], input_shape=[5, 1])
    assert net == same and hash(net) == hash(same)
    params = net.init(key)
    x = jnp.ones((2, 5, 1))
    jitted = jax.jit(lambda spec, p, v: spec(p, v), static_argnums=0)
    assert_close(jitted(net, params, x), net(params, x), jnp.float32)


def test_conv_impl_auto_resolves_per_backend() -> None:
    chosen = ops.resolve_conv_impl("auto")
    assert chosen == ops.CONV_IMPL_BY_BACKEND.get(jax.default_backend(), "lax")
    assert ops.resolve_conv_impl("lax") == "lax"


@pytest.mark.parametrize(
    ("layers", "input_shape", "match"),
    [
        ((Dense(3),), (4, 2), r"layer 0 \(Dense\).*\(4, 2\).*Flatten"),
        ((Flatten(), Conv1D(2, 3)), (5, 1), r"layer 1 \(Conv1D\).*\(5,\).*Reshape"),
        ((Conv1D(2, 6),), (5, 1), r"layer 0 \(Conv1D\).*window \(6,\).*\(5,\)"),
        ((Conv1D(2, 3), MaxPool1D(4)), (5, 1), r"layer 1 \(MaxPool1D\).*\(3,\)"),
        ((Conv2D(2, 3),), (5, 1), r"layer 0 \(Conv2D\).*\(height, width, channels\)"),
        ((Reshape((3, 2)),), (5,), r"layer 0 \(Reshape\).*5 values, not 6"),
        (
            (Flatten(), Residual((Dense(3),))),
            (2, 2),
            r"layer 1 \(Residual\).*\(4,\) to \(3,\)",
        ),
    ],
    ids=["dense-rank", "conv-rank", "kernel", "pool", "conv2d-rank", "reshape", "residual"],
)
def test_impossible_shapes_raise_naming_the_layer(layers, input_shape, match) -> None:
    with pytest.raises(ValueError, match=match):
        Sequential(layers=layers, input_shape=input_shape)


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: Conv1D(0, 3), ValueError, "features"),
        (lambda: Conv1D(2, 3, padding="FULL"), ValueError, "padding"),
        (lambda: Conv1D(2, 3, padding=-1), ValueError, "padding"),
        (lambda: Conv2D(2, (3, 3, 3)), ValueError, "kernel_size"),
        (lambda: Dense(3, activation="swish"), ValueError, "unknown activation 'swish'"),
        (lambda: MaxPool2D(2, stride=0), ValueError, "stride"),
        (lambda: Residual(()), ValueError, "non-empty"),
        (lambda: Residual((3,)), TypeError, r"layers\[0\] is int"),
        (lambda: Sequential(layers=("dense",), input_shape=(2,)), TypeError, "not a layer"),
        (lambda: Sequential(layers=(Dense(1),), input_shape=(0,)), ValueError, "input_shape"),
        (
            lambda: Sequential(layers=(Dense(1),), input_shape=(2,), conv_impl="fft"),
            ValueError,
            "conv_impl",
        ),
    ],
    ids=[
        "features",
        "padding-name",
        "padding-negative",
        "kernel-rank",
        "activation",
        "stride",
        "empty-residual",
        "residual-item",
        "sequential-item",
        "input-shape",
        "conv-impl",
    ],
)
def test_bad_specs_raise_clear_errors(build, error, match) -> None:
    with pytest.raises(error, match=match):
        build()


def test_apply_checks_params_and_x(key) -> None:
    net = Sequential(layers=(Conv1D(2, 3), Flatten(), Dense(1)), input_shape=(5, 1))
    params = net.init(key)
    x = jnp.ones((4, 5, 1))
    with pytest.raises(ValueError, match=r"x has shape \(4, 6, 1\).*\(batch, 5, 1\)"):
        net(params, jnp.ones((4, 6, 1)))
    with pytest.raises(TypeError, match="x has dtype int"):
        net(params, jnp.ones((4, 5, 1), int))
    with pytest.raises(ValueError, match="params has 2 entries but the network has 3"):
        net(params[:2], x)
    with pytest.raises(ValueError, match=r'params\[0\]\["w"\] has shape \(3, 1, 3\).*\(3, 1, 2\)'):
        net([{"w": jnp.ones((3, 1, 3)), "b": jnp.ones(2)}, *params[1:]], x)
    with pytest.raises(ValueError, match=r"params\[2\] has keys \['w'\].*\['b', 'w'\]"):
        net([*params[:2], {"w": params[2]["w"]}], x)
    with pytest.raises(TypeError, match="params must be a list"):
        net({"w": 1}, x)


def test_docstring_examples_run() -> None:
    result = doctest.testmod(sequential, verbose=False)
    assert result.attempted > 0 and result.failed == 0
