"""``jaxbp.ops``: convolution and pooling on arrays, against their definitions written as loops.

The oracles (``tests/layers/loops.py``) compute every output position, and every gradient by the
chain rule, one window at a time in NumPy float64; both convolution implementations, ``"im2col"``
and ``"lax"``, must equal them, forward and through ``jax.grad``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from jaxbp import ops
from tests.helpers import assert_close
from tests.layers.loops import loop_conv, loop_conv_grads, loop_pool, loop_pool_grad

IMPLS = ("im2col", "lax")
# x shape, w shape, stride, padding as passed, the same padding as (low, high) pairs
CONV_CASES = {
    "1d-paper-layer": ((3, 11, 2), (5, 2, 4), 2, 1, ((1, 1),)),
    "1d-asymmetric": ((2, 7, 3), (3, 3, 2), 1, (0, 2), ((0, 2),)),
    "1d-same": ((2, 8, 1), (4, 1, 3), 1, "SAME", ((1, 2),)),  # kernel 4 needs 3: 1 low, 2 high
    "1d-same-stride-3": ((2, 8, 2), (4, 2, 3), 3, "SAME", ((1, 1),)),  # out ceil(8 / 3) = 3
    "2d-valid": ((2, 6, 5, 2), (3, 2, 2, 3), (2, 1), "VALID", ((0, 0), (0, 0))),
    "2d-per-axis": ((1, 5, 4, 3), (2, 3, 3, 2), 1, (1, (0, 2)), ((1, 1), (0, 2))),
    "3d": ((2, 4, 3, 5, 2), (2, 2, 3, 2, 3), (1, 2, 1), 0, ((0, 0),) * 3),
}


def _conv_case(name: str):
    x_shape, w_shape, stride, padding, pads = CONV_CASES[name]
    rng = np.random.default_rng(sorted(CONV_CASES).index(name))
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[-1])
    ndim = len(x_shape) - 2
    strides = (stride,) * ndim if isinstance(stride, int) else stride
    return x, w, b, stride, padding, strides, pads


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", sorted(CONV_CASES))
def test_conv_equals_the_loop_definition(name: str, impl: str) -> None:
    x, w, b, stride, padding, strides, pads = _conv_case(name)
    expected = loop_conv(x, w, b, strides, pads)
    assert_close(ops.conv(x, w, b, stride=stride, padding=padding, impl=impl), expected)
    assert_close(ops.conv(x, w, stride=stride, padding=padding, impl=impl), expected - b)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", sorted(CONV_CASES))
def test_grad_through_conv_equals_the_chain_rule_by_loops(name: str, impl: str) -> None:
    x, w, b, stride, padding, strides, pads = _conv_case(name)
    out_shape = loop_conv(x, w, b, strides, pads).shape
    g = np.random.default_rng(7).standard_normal(out_shape)  # weights every output differently

    def weighted(x, w, b):
        return jnp.sum(ops.conv(x, w, b, stride=stride, padding=padding, impl=impl) * g)

    grads = jax.grad(weighted, argnums=(0, 1, 2))(x, w, b)
    assert_close(grads, loop_conv_grads(x, w, g, strides, pads))


@pytest.mark.parametrize(
    ("x_shape", "window", "stride", "kind"),
    [
        ((3, 7, 2), 2, None, "max"),
        ((2, 9, 3), 3, 2, "avg"),
        ((2, 5, 7, 2), (2, 3), None, "max"),
        ((1, 6, 5, 3), 2, 1, "avg"),
    ],
    ids=["max1d", "avg1d-stride", "max2d", "avg2d-overlap"],
)
def test_pool_and_its_grad_equal_the_loop_definitions(x_shape, window, stride, kind) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape)
    ndim = len(x_shape) - 2
    windows = (window,) * ndim if isinstance(window, int) else window
    strides = windows if stride is None else (stride,) * ndim
    reduce = np.max if kind == "max" else np.mean
    expected = loop_pool(x, windows, strides, reduce)
    got = ops.pool(x, window=window, stride=stride, kind=kind)
    assert_close(got, expected)
    g = rng.standard_normal(expected.shape)
    grad = jax.grad(lambda v: jnp.sum(ops.pool(v, window=window, stride=stride, kind=kind) * g))
    assert_close(grad(x), loop_pool_grad(x, g, windows, strides, kind))


def test_float32_stays_float32_and_the_impls_agree_under_jit() -> None:
    x, w, b, *_ = _conv_case("1d-paper-layer")
    x, w, b = (jnp.asarray(a, jnp.float32) for a in (x, w, b))
    step = jax.jit(lambda x, w, b, impl: ops.conv(x, w, b, stride=2, padding=1, impl=impl),
                   static_argnums=3)  # fmt: skip
    out = {impl: step(x, w, b, impl) for impl in IMPLS}
    assert all(o.dtype == jnp.float32 for o in out.values())
    assert_close(out["im2col"], out["lax"], jnp.float32)


def test_the_public_module_is_the_layers_own() -> None:
    assert jaxbp.ops.conv is jaxbp.layers.ops.conv and jaxbp.ops.pool is jaxbp.layers.ops.pool
    assert set(jaxbp.ops.__all__) >= {"conv", "pool", "CONV_IMPL_BY_BACKEND", "resolve_conv_impl"}


X = np.ones((2, 9, 3))
W = np.ones((3, 3, 4))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: ops.conv(np.ones((9, 3)), W), r"conv: x has shape \(9, 3\).*\(batch, \*spatial"),
        (lambda: ops.conv(X, np.ones((3, 4))), r"conv: w has shape \(3, 4\).*1 spatial axes"),
        (lambda: ops.conv(X, np.ones((3, 2, 4))), r"x has 3 channels.*expects 2"),
        (lambda: ops.conv(X, W, np.ones(3)), r"b has shape \(3,\).*pass b of shape \(4,\)"),
        (lambda: ops.conv(X, np.ones((10, 3, 4))), r"kernel \(10,\) is larger.*\(9,\)"),
        (lambda: ops.conv(X, W, stride=0), "stride must be a positive int"),
        (lambda: ops.conv(X, W, stride=(1, 1)), "stride must be a positive int or 1"),
        (lambda: ops.conv(X, W, padding="FULL"), "padding must be"),
        (lambda: ops.conv(X, W, padding=-1), "padding must be"),
        (lambda: ops.conv(X, W, impl="fft"), "unknown impl 'fft'"),
        (lambda: ops.pool(np.ones((9, 3)), window=2), r"pool: x has shape \(9, 3\)"),
        (lambda: ops.pool(X, window=10), r"pool: the window \(10,\) is larger.*\(9,\)"),
        (lambda: ops.pool(X, window=(2, 2)), "window must be a positive int or 1"),
        (lambda: ops.pool(X, window=2, stride=0), "stride must be"),
        (lambda: ops.pool(X, window=2, kind="min"), "unknown kind 'min'"),
    ],
    ids=[
        "x-rank",
        "w-rank",
        "channels",
        "bias",
        "kernel-too-large",
        "stride-zero",
        "stride-length",
        "padding-name",
        "padding-negative",
        "impl",
        "pool-x-rank",
        "pool-window-too-large",
        "pool-window-length",
        "pool-stride",
        "pool-kind",
    ],
)
def test_bad_arguments_raise_naming_the_argument(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_shape_errors_raise_while_tracing_under_jit() -> None:
    # shapes are static, so the check runs when jit traces, before anything compiles
    with pytest.raises(ValueError, match="x has 3 channels"):
        jax.jit(lambda x: ops.conv(x, jnp.ones((3, 2, 4))))(X)
