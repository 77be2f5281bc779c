"""Bad input gets a clear ValueError/TypeError naming the problem, before anything runs."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp

SPEC = jaxbp.MLP(sizes=(2, 3, 1), activations=("relu", "linear"))


@pytest.fixture
def params():
    return SPEC.init(__import__("jax").random.key(0), jnp.float64)


X = jnp.ones((4, 2))
Y = jnp.ones((4, 1))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sizes": (2,), "activations": ()}, ValueError, "at least an input and an output"),
        ({"sizes": (2, 0, 1), "activations": ("relu", "linear")}, ValueError, "positive ints"),
        ({"sizes": (2, 3, 1), "activations": ("relu",)}, ValueError, "one activation per layer"),
        (
            {"sizes": (2, 1), "activations": ("swish",)},
            ValueError,
            "valid names are gelu, linear, relu",
        ),
        ({"sizes": (2, 1), "activations": ("relu",), "bias": (True, False)}, ValueError, "bias"),
        (
            {"sizes": (2, 1), "activations": ("relu",), "init_scheme": "xavier"},
            ValueError,
            "glorot",
        ),
    ],
)
def test_bad_spec(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        jaxbp.MLP(**kwargs)


def test_params_with_wrong_shape_name_layer_and_shapes(params) -> None:
    params[1]["w"] = jnp.ones((4, 1))
    with pytest.raises(
        ValueError, match=r'params\[1\]\["w"\] has shape \(4, 1\) but the spec expects \(3, 1\)'
    ):
        jaxbp.loss_and_grad(SPEC, "mse", params, X, Y)


def test_params_with_missing_layer_or_key(params) -> None:
    with pytest.raises(ValueError, match="params has 1 layers but the spec"):
        SPEC.apply(params[:1], X)
    del params[0]["b"]
    with pytest.raises(
        ValueError, match=r"params\[0\] has keys \['w'\] but layer 0 expects \['b', 'w'\]"
    ):
        SPEC.apply(params, X)


def test_params_of_wrong_kind() -> None:
    with pytest.raises(TypeError, match="params must be a list"):
        SPEC.apply({"w": 1}, X)


def test_input_feature_count(params) -> None:
    with pytest.raises(
        ValueError, match=r"x has shape \(4, 3\) but the network expects 2 input features"
    ):
        SPEC.apply(params, jnp.ones((4, 3)))


def test_target_shape(params) -> None:
    with pytest.raises(
        ValueError, match=r"y has shape \(4, 2\) but .* need targets of shape \(4, 1\)"
    ):
        jaxbp.loss_and_grad(SPEC, "mse", params, X, jnp.ones((4, 2)))


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.bool_])
def test_integer_input_is_a_type_error(params, dtype) -> None:
    with pytest.raises(TypeError, match=r"x has dtype .* but a floating-point array is needed"):
        SPEC.apply(params, jnp.ones((4, 2), dtype))


def test_complex_input_and_target(params) -> None:
    with pytest.raises(TypeError, match="x has complex dtype"):
        SPEC.apply(params, np.ones((4, 2), np.complex64))
    with pytest.raises(TypeError, match="y has dtype int"):
        jaxbp.loss_and_grad(SPEC, "mse", params, X, np.ones((4, 1), np.int32))


def test_unknown_loss_lists_valid_names(params) -> None:
    with pytest.raises(ValueError, match="unknown loss 'l2'; valid names are binary_cross_entropy"):
        jaxbp.loss_and_grad(SPEC, "l2", params, X, Y)


@pytest.mark.parametrize("lr", [0.0, -0.1, math.nan, math.inf])
def test_bad_learning_rate(params, lr) -> None:
    _, grads = jaxbp.loss_and_grad(SPEC, "mse", params, X, Y)
    with pytest.raises(ValueError, match="learning rate must be finite and > 0"):
        jaxbp.sgd(params, grads, lr)
    with pytest.raises(ValueError, match="learning rate must be finite and > 0"):
        jaxbp.train_step(SPEC, "mse", params, X, Y, lr)


def test_sgd_with_mismatched_trees_prints_both(params) -> None:
    _, grads = jaxbp.loss_and_grad(SPEC, "mse", params, X, Y)
    with pytest.raises(ValueError, match="params and grads differ in structure"):
        jaxbp.sgd(params, grads[:1], 0.1)


def test_params_from_checks_counts_and_bias() -> None:
    with pytest.raises(ValueError, match="got 1 weight matrices for 2 layers"):
        SPEC.params_from([np.ones((2, 3))])
    with pytest.raises(ValueError, match=r"layer 0 has bias=True but bs\[0\] is None"):
        SPEC.params_from([np.ones((2, 3)), np.ones((3, 1))], [None, np.ones(1)])
    with pytest.raises(ValueError, match=r'params\[0\]\["w"\] has shape \(3, 2\)'):
        SPEC.params_from([np.ones((3, 2)), np.ones((3, 1))], [np.ones(3), np.ones(1)])
