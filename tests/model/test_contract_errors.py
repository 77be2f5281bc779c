"""Input that breaks the model/loss contract or a run's limits: a clear error before compiling."""

from __future__ import annotations

import importlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbp
from tests.model.test_contract import FEATURES, OUTPUTS, N, init, l2, model


def _problem() -> tuple[Any, Any, Any]:
    params = init(jax.random.key(0))
    x = np.linspace(-1, 1, N * FEATURES).reshape(N, FEATURES)
    y = np.linspace(0, 1, N * OUTPUTS).reshape(N, OUTPUTS)
    return params, x, y


def _with_int_leaf(params: dict) -> dict:
    return {**params, "head": {**params["head"], "b": jnp.ones(2, jnp.int32)}}


def _mixed(params: dict) -> dict:
    return {**params, "b1": params["b1"].astype(jnp.float16)}


FIT_CASES = [
    ("loss-not-per-example", {"loss": optax.l2_loss}, ValueError,
     r"fit: loss returned shape \(12, 2\) for a batch of 12 examples.*lambda p, t: optax.l2_loss\(p, t\).sum\(-1\)"),
    ("loss-scalar", {"loss": lambda p, t: jnp.mean((p - t) ** 2)}, ValueError,
     r"loss returned shape \(\) for a batch of 12"),
    ("model-a-string", {"model": "mlp"}, TypeError, r"fit: model must be a callable .* got str"),
    ("model-not-callable", {"model": 3}, TypeError, "model must be a callable"),
    ("loss-not-callable", {"loss": 3}, TypeError, "loss must be a name in jaxbp.LOSSES or a callable"),
    ("int-param-leaf", {"params": _with_int_leaf}, TypeError,
     r"fit: params\['head'\]\['b'\] has dtype int32.*must be a float array"),
    ("mixed-float-dtypes", {"params": _mixed}, TypeError,
     r"params mixes float dtypes: params\['b1'\] is float16 but params\['head'\]\['b'\] is float64"),
    ("row-mismatch", {"y": lambda y: y[:10]}, ValueError, r"x has 12 examples .* but y has 10"),
    ("key-an-int", {"key": 0}, TypeError, r"key must be one PRNG key.*got int 0"),
    ("key-two-keys", {"key": jax.random.split(jax.random.key(0))}, TypeError, r"shape \(2,\)"),
    ("negative-schedule", {"lr": optax.linear_schedule(0.1, -0.1, 2)}, ValueError,
     r"schedule gives -0.1 at step 2; it must be finite and >= 0 on every step of the run \(0 to 2\)"),
    ("schedule-of-vectors", {"lr": lambda step: jnp.full(2, 0.1)}, ValueError,
     r"fit: the learning-rate schedule gives values of shape \(2,\) for one step; it must give one number"),
    ("schedule-without-a-step", {"lr": lambda: 0.1}, TypeError,
     r"fit: lr is a function, but calling it with a step number failed \(TypeError: .*takes 0 positional"),
    ("lr-overflows-float32", {"lr": 1e300, "params": lambda p: jax.tree.map(lambda a: a.astype(jnp.float32), p)},
     ValueError, "overflows the params' dtype float32"),
    ("lr-underflows-float32", {"lr": 1e-50, "params": lambda p: jax.tree.map(lambda a: a.astype(jnp.float32), p)},
     ValueError, r"learning rate 1e-50 is 0 in the params' dtype float32 \(smallest: 1.4e-45\)"),
    ("opt-state-of-another-optimizer", {"lr": None, "optimizer": optax.adam(0.1), "opt_state": "sgd-momentum"},
     ValueError, "opt_state does not fit this optimizer"),
    # 3 steps per epoch (12 examples, batch 4): at most (2**31 - 1) // 3 = 715827882 epochs
    ("epochs-overflow-the-step-counter", {"epochs": 10**12}, ValueError,
     r"fit: epochs 1000000000000 .* int32 step counter holds; pass epochs <= 715827882"),
    ("nan-in-x-numpy", {"x": lambda x: np.where(np.eye(N, FEATURES) > 0, np.nan, x)}, ValueError,
     "fit: x holds NaN or infinite values"),
    ("inf-in-y-device", {"y": lambda y: jnp.asarray(y).at[3, 1].set(jnp.inf)}, ValueError,
     "fit: y holds NaN or infinite values"),
    ("reference-loss-nan", {"reference_loss": float("nan")}, ValueError, "reference_loss must be"),
    ("reference-loss-a-string", {"reference_loss": "1.0"}, TypeError,
     r"fit: reference_loss must be one real number .* got str '1.0'"),
    ("reference-loss-an-array", {"reference_loss": np.array([1.0, 2.0])}, TypeError,
     r"reference_loss must be one real number .* got ndarray"),
    ("reference-loss-a-list", {"reference_loss": [1.0]}, TypeError,
     r"reference_loss must be one real number .* got list \[1.0\]"),
    ("reference-loss-overflows-float32", {"reference_loss": 1e300}, ValueError,
     "reference_loss must be a finite number in float32"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "error", "pattern"),
    [case[1:] for case in FIT_CASES],
    ids=[case[0] for case in FIT_CASES],
)
def test_fit_refuses_with_a_clear_error_before_compiling(overrides, error, pattern) -> None:
    params, x, y = _problem()
    args: dict[str, Any] = {"model": model, "loss": l2, "params": params, "x": x, "y": y}
    kwargs: dict[str, Any] = {"lr": 0.1, "epochs": 1, "batch_size": 4}
    for name, value in overrides.items():
        if name in args:
            args[name] = (
                value(args[name]) if callable(value) and name in ("params", "x", "y") else value
            )
        else:
            kwargs[name] = value
    if kwargs.get("opt_state") == "sgd-momentum":
        kwargs["opt_state"] = optax.sgd(0.1, momentum=0.9).init(params)
    programs = importlib.import_module(
        "jaxbp.training.fit"
    )._fit_program  # the compiled training program
    before = programs._cache_size()
    with pytest.raises(error, match=pattern):
        jaxbp.fit(*args.values(), **kwargs)
    assert programs._cache_size() == before  # refused before tracing or compiling it


@pytest.mark.parametrize(
    "call",
    [
        lambda p, x, y: jaxbp.loss_and_grad(model, optax.l2_loss, p, x, y),
        lambda p, x, y: jaxbp.train_step(model, optax.l2_loss, p, x, y, 0.1),
        lambda p, x, y: jaxbp.optax_step(model, optax.l2_loss, optax.sgd(0.1), p, optax.sgd(0.1).init(p), x, y),
        lambda p, x, y: jaxbp.per_example_grads(model, optax.l2_loss, p, x, y),
        lambda p, x, y: jaxbp.fit_ensemble(model, optax.l2_loss, jax.tree.map(lambda a: a[None], p), x, y, lr=0.1, epochs=1),
    ],
    ids=["loss_and_grad", "train_step", "optax_step", "per_example_grads", "fit_ensemble"],
)  # fmt: skip
def test_every_entry_point_refuses_a_loss_that_is_not_per_example(call) -> None:
    params, x, y = _problem()
    with pytest.raises(ValueError, match=r"loss returned shape \(12, 2\).*\.sum\(-1\)"):
        call(params, x, y)


def test_optax_step_refuses_the_state_of_another_optimizer() -> None:
    params, x, y = _problem()
    with pytest.raises(ValueError, match="opt_state does not fit this optimizer"):
        jaxbp.optax_step(model, l2, optax.adam(0.1), params, optax.sgd(0.1).init(params), x, y)


def test_fit_ensemble_refuses_streamed_data_naming_it() -> None:
    # a Rows view was blamed on stacked_params ("stack them"); batches were called ragged
    params, x, y = _problem()
    stacked = jax.tree.map(lambda a: jnp.stack([a, a]), params)
    view = jaxbp.Rows(np.asarray(x), np.arange(6))
    with pytest.raises(TypeError, match=r"fit_ensemble: x is a jaxbp.Rows view .*x.read\(np.arange\(len\(x\)\)\)"):  # fmt: skip
        jaxbp.fit_ensemble(model, l2, stacked, view, y[:6], lr=0.1, epochs=1)
    with pytest.raises(TypeError, match=r"fit_ensemble: y is None; .* not on an iterable of batches"):  # fmt: skip
        jaxbp.fit_ensemble(model, l2, stacked, [(x[:4], y[:4])], None, lr=0.1, epochs=1)


def test_fit_ensemble_refuses_zero_models() -> None:
    params, x, y = _problem()
    empty = jax.tree.map(lambda a: jnp.zeros((0, *a.shape), a.dtype), params)
    with pytest.raises(ValueError, match="fit_ensemble: stacked_params holds 0 models"):
        jaxbp.fit_ensemble(model, l2, empty, x, y, lr=0.1, epochs=1)


def test_fit_ensemble_refuses_nan_data_and_a_bad_key() -> None:
    params, x, y = _problem()
    stacked = jax.tree.map(lambda a: jnp.stack([a, a]), params)
    with pytest.raises(ValueError, match="fit_ensemble: x holds NaN"):
        jaxbp.fit_ensemble(model, l2, stacked, x * np.nan, y, lr=0.1, epochs=1)
    with pytest.raises(TypeError, match="fit_ensemble: key must be one PRNG key"):
        jaxbp.fit_ensemble(model, l2, stacked, x, y, lr=0.1, epochs=1, key=7)


def test_mlp_accepts_numpy_integer_sizes() -> None:
    spec = jaxbp.MLP(sizes=tuple(np.array([3, 4, 2])), activations=("relu", "linear"))
    assert spec.sizes == (3, 4, 2) and all(type(size) is int for size in spec.sizes)
    assert spec == jaxbp.MLP(sizes=(3, 4, 2), activations=("relu", "linear"))
    assert [layer["w"].shape for layer in spec.init(jax.random.key(0))] == [(3, 4), (4, 2)]


SPEC = jaxbp.MLP((2, 3, 1), ("tanh", "linear"))


def test_manual_backprop_refuses_a_wrong_x_shape() -> None:
    params = SPEC.init(jax.random.key(0), jnp.float64)
    with pytest.raises(ValueError, match=r"manual.forward: x has shape \(4, 3\) but the network has 2 input features"):  # fmt: skip
        jaxbp.manual.backprop(SPEC, "mse", params, np.ones((4, 3)), np.ones((4, 1)))
    with pytest.raises(ValueError, match=r"manual.backward: y has shape \(4, 2\)"):
        jaxbp.manual.backprop(SPEC, "mse", params, np.ones((4, 2)), np.ones((4, 2)))


def test_manual_backprop_refuses_a_missing_bias_it_would_have_to_assume_zero() -> None:
    params = SPEC.init(jax.random.key(0), jnp.float64)
    del params[1]["b"]
    with pytest.raises(ValueError, match=r"params\[1\] has keys \['w'\] but layer 1 expects \['b', 'w'\]"):  # fmt: skip
        jaxbp.manual.backprop(SPEC, "mse", params, np.ones((4, 2)), np.ones((4, 1)))
    with pytest.raises(ValueError, match="has keys"):  # the same input jaxbp's own check refuses
        jaxbp.loss_and_grad(SPEC, "mse", params, np.ones((4, 2)), np.ones((4, 1)))
