"""jaxbp.explain: every number of the Trace against the manual chain rule and against jax.grad.

Two oracles that could disagree with the Trace: ``jaxbp.manual.backward`` called here directly
(and the SGD step written out here as ``W - lr * dW``), and JAX autodiff (``jaxbp.loss_and_grad``
for the parameter gradients, ``jax.grad`` with respect to the input, ``jaxbp.worked.autodiff`` for the
per-layer deltas). float64 throughout (tests/conftest.py turns x64 on).
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from jaxbp import manual
from jaxbp.model.steps import batch_loss
from jaxbp.worked import grading as worked
from jaxbp.worked.autodiff import layer_quantities
from jaxbp.worked.trace import Trace, default_units
from tests.helpers import assert_close

EXAMPLES = list(worked.EXAMPLES.values())


def _example_inputs(example: worked.WorkedExample):
    spec = worked.spec_of(example)
    biases = example.biases or [None] * len(example.weights)
    params = [
        {"w": np.asarray(w)} | ({} if b is None else {"b": np.asarray(b)})
        for w, b in zip(example.weights, biases, strict=True)
    ]
    return spec, params, np.asarray(example.x), np.asarray(example.y)


def _assert_trace_matches_oracles(trace: Trace, spec, loss, params, x, y, lr, deltas=True) -> None:
    record = manual.backward(spec, loss, params, x, y)
    assert_close(trace.loss, record.loss)
    for index, layer in enumerate(trace.layers):
        assert layer.index == index + 1
        assert_close(layer.inputs, record.forward.inputs[index])
        assert_close(layer.products, record.forward.products[index])
        assert_close(layer.pre_activations, record.forward.pre_activations[index])
        assert_close(layer.activations, record.forward.activations[index])
        assert_close(layer.dloss_dactivations, record.dloss_dactivations[index])
        assert_close(layer.activation_derivatives, record.activation_derivatives[index])
        assert_close(layer.deltas, record.deltas[index])
        assert_close(layer.dloss_dweights, record.grads[index]["w"])
        assert_close(layer.dloss_dinputs, record.dloss_dinputs[index])
        assert_close(
            layer.new_weights, np.asarray(params[index]["w"]) - lr * record.grads[index]["w"]
        )
        if "b" in params[index]:
            assert_close(layer.dloss_dbias, record.grads[index]["b"])
            assert_close(
                layer.new_bias, np.asarray(params[index]["b"]) - lr * record.grads[index]["b"]
            )
        else:
            assert layer.dloss_dbias is None and layer.new_bias is None
    # JAX autodiff: parameter gradients, deltas, dL/dx, the loss after the update
    jax_params = jax.tree.map(jnp.asarray, params)
    value, grads = jaxbp.loss_and_grad(spec, loss, jax_params, jnp.asarray(x), jnp.asarray(y))
    assert_close(trace.loss, value)
    # eager layer_quantities costs seconds per new shape: only on the built-in examples
    quantities = (
        layer_quantities(spec, loss, jax_params, x, y)[1] if deltas else [None] * len(grads)
    )
    dloss_dx = jax.grad(batch_loss, argnums=3)(
        spec, loss, jax_params, jnp.asarray(x), jnp.asarray(y)
    )
    assert_close(trace.layers[0].dloss_dinputs, dloss_dx)
    for layer, grad, quantity in zip(trace.layers, grads, quantities, strict=True):
        assert_close(layer.dloss_dweights, grad["w"])
        if quantity is not None:
            assert_close(layer.deltas, quantity.deltas)
            assert_close(layer.dloss_dactivations, quantity.dloss_dactivations)
        if "b" in grad:
            assert_close(layer.dloss_dbias, grad["b"])
    new_params = jaxbp.sgd(jax_params, grads, lr)
    assert_close(trace.loss_after, jaxbp.LOSSES[loss](spec.apply(new_params, x), jnp.asarray(y)))
    assert trace.verified
    assert all(check.max_abs_diff <= check.tolerance for check in trace.checks)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_builtin_example_trace_equals_manual_chain_rule_and_jax_grad(example) -> None:
    spec, params, x, y = _example_inputs(example)
    trace = jaxbp.explain(spec, example.loss, params, x, y, example.learning_rate)
    _assert_trace_matches_oracles(trace, spec, example.loss, params, x, y, example.learning_rate)
    assert trace.units == default_units(spec.num_layers)
    # every published number whose record has no erratum is reproduced by the Trace itself
    names = trace.names()
    for record in example.published:
        error = abs(worked.exact_value(record, names) - record.value)
        assert (error <= record.tolerance) == (record.erratum is None), record


@pytest.mark.parametrize(
    ("sizes", "activations", "bias", "loss", "batch"),
    [
        ((3, 5, 4, 2), ("relu", "relu", "linear"), True, "half_se", 3),
        ((3, 4, 2), ("tanh", "softmax"), True, "cross_entropy", 2),
        ((2, 3, 1), ("sigmoid", "sigmoid"), False, "binary_cross_entropy", 4),
    ],
    ids=["relu-3-5-4-2-batch3", "tanh-softmax-batch2", "sigmoid-no-bias-batch4"],
)
def test_batch_network_trace_equals_oracles(sizes, activations, bias, loss, batch) -> None:
    # non-square layers, a batch equal to no layer width, non-zero biases, negative relu inputs
    spec = jaxbp.MLP(sizes=sizes, activations=activations, bias=bias)
    rng = np.random.default_rng(7)
    params = [
        {"w": rng.normal(size=(fan_in, fan_out))}
        | ({"b": rng.normal(size=fan_out)} if bias else {})
        for fan_in, fan_out in spec.layer_shapes
    ]
    x = rng.normal(size=(batch, sizes[0]))
    y = rng.uniform(size=(batch, sizes[-1])) if loss != "cross_entropy" else np.eye(2)[[0, 1]]
    trace = jaxbp.explain(spec, loss, params, x, y, 0.3)
    if activations[0] == "relu":
        assert (trace.layers[0].pre_activations < 0).any()
    _assert_trace_matches_oracles(trace, spec, loss, params, x, y, 0.3, deltas=False)


def test_a_wrong_manual_derivative_is_not_verified(monkeypatch) -> None:
    example = worked.EXAMPLES["relu-sigmoid-linear"]
    spec, params, x, y = _example_inputs(example)
    monkeypatch.setitem(
        manual.DERIVATIVES, "sigmoid", lambda z: manual.ACTIVATIONS["sigmoid"](z)
    )  # a, not a(1-a)
    trace = jaxbp.explain(spec, example.loss, params, x, y, example.learning_rate)
    assert not trace.verified
    failing = {check.quantity for check in trace.checks if not check.verified}
    assert {"da_dz2", "delta2", "dW2", "db2", "dW1"} <= failing
    assert {"z1", "a2", "loss", "dL_da3", "dW3", "db3"}.isdisjoint(failing)


def test_json_round_trip_keeps_every_number() -> None:
    example = worked.EXAMPLES["sigmoid-softmax"]
    spec, params, x, y = _example_inputs(example)
    trace = jaxbp.explain(spec, example.loss, params, x, y, example.learning_rate, steps=3)
    text = trace.to_json()
    data = json.loads(text)
    assert data["layers"][1]["activation_derivatives"][0][0][1] == pytest.approx(
        -trace.layers[1].activations[0, 0] * trace.layers[1].activations[0, 1]
    )  # the softmax Jacobian entry -a_1 a_2, stored as it is
    again = Trace.from_json(text)
    assert again.to_json() == text
    for before, after in zip(trace.layers, again.layers, strict=True):
        np.testing.assert_array_equal(before.deltas, after.deltas)
        np.testing.assert_array_equal(before.new_weights, after.new_weights)
    assert again.verified and again.history == trace.history


def test_history_follows_jitted_sgd_steps() -> None:
    example = worked.EXAMPLES["relu-sigmoid-linear"]
    spec, params, x, y = _example_inputs(example)
    trace = jaxbp.explain(spec, example.loss, params, x, y, example.learning_rate, steps=12)
    jax_params, losses = jax.tree.map(jnp.asarray, params), []
    for _ in range(12):
        jax_params, value = jaxbp.train_step(spec, example.loss, jax_params, x, y, 0.25)
        losses.append(float(value))
    losses.append(float(jaxbp.LOSSES[example.loss](spec.apply(jax_params, x), jnp.asarray(y))))
    assert_close(np.asarray(trace.history), np.asarray(losses))
    assert len(trace.history) == 13 and np.all(np.diff(trace.history) < 0)
    assert trace.history[1] == trace.loss_after


def test_float32_params_are_explained_in_float64() -> None:
    example = worked.EXAMPLES["relu-2-2-1"]
    spec, params, x, y = _example_inputs(example)
    params32 = [{k: v.astype(np.float32) for k, v in layer.items()} for layer in params]
    trace = jaxbp.explain(spec, example.loss, params32, x.astype(np.float32), y, 0.05)
    assert trace.layers[0].weights.dtype == np.float64 and trace.verified
    params_as_stored = [{k: np.float64(v) for k, v in layer.items()} for layer in params32]
    _assert_trace_matches_oracles(trace, spec, example.loss, params_as_stored, x, y, 0.05)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr": 0.0}, "learning rate"),
        ({"lr": float("nan")}, "learning rate"),
        ({"steps": 0}, "steps"),
        ({"steps": 100_001}, r"explain: steps must be at most 100,000, got 100,001"),
        ({"units": ("i", "o")}, "units"),
        ({"loss": "hinge"}, "loss"),
        ({"x": np.ones((1, 3))}, "x has shape"),
        ({"y": np.ones((1, 2))}, "y has shape"),
    ],
    ids=[
        "zero-lr",
        "nan-lr",
        "zero-steps",
        "too-many-steps",
        "units",
        "loss",
        "x-shape",
        "y-shape",
    ],
)
def test_bad_input_is_refused_with_a_clear_message(kwargs, match) -> None:
    example = worked.EXAMPLES["relu-2-2-1"]
    spec, params, x, y = _example_inputs(example)
    arguments = {"loss": "half_se", "x": x, "y": y, "lr": 0.05} | kwargs
    steps_units = {k: arguments.pop(k) for k in ("steps", "units") if k in arguments}
    with pytest.raises(ValueError, match=match):
        jaxbp.explain(
            spec,
            arguments["loss"],
            params,
            arguments["x"],
            arguments["y"],
            arguments["lr"],
            **steps_units,
        )


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"spec": lambda p, x: x}, TypeError, r"explain: spec must be a jaxbp.MLP, got function"),
        ({"loss": lambda p, t: (p - t) ** 2}, ValueError, r"^explain: unknown loss <function"),
        ({"on_step": 3}, TypeError, r"explain: on_step must be a function on_step\(step, loss\)"),
    ],
    ids=["own-model", "callable-loss", "on-step-not-callable"],
)
def test_what_only_fit_takes_is_refused_naming_explain(change, error, match) -> None:
    # an own model was blamed on y's shape, a callable loss on manual.backward, and a number as
    # on_step failed with "'int' object is not callable" after the first step
    example = worked.EXAMPLES["relu-2-2-1"]
    spec, params, x, y = _example_inputs(example)
    arguments = {"spec": spec, "loss": "half_se", "params": params, "x": x, "y": y, "lr": 0.05}
    on_step = change.pop("on_step", None)
    with pytest.raises(error, match=match):
        jaxbp.explain(*(arguments | change).values(), on_step=on_step)


def test_default_units_follow_the_documents() -> None:
    assert default_units(3) == ("i", "j", "k", "o")  # documents 000, 002, 004
    assert default_units(2) == ("i", "h", "o")  # documents 001, 003
    assert default_units(1) == ("i", "o")


def test_round_off_tolerance_of_a_check() -> None:
    from jaxbp.worked.checks import check_close as _check

    assert _check("q", [1.0, -3.0], [1.0 + 1e-14, -3.0]).verified  # float64 round-off
    assert not _check("q", [1.0, -3.0], [1.0 + 1e-8, -3.0]).verified  # a float32-sized error
    assert _check("q", [1e6], [1e6 + 1e-5]).verified  # relative to the largest entry
    assert _check("q", [np.inf], [np.inf]).verified  # equal infinities agree
    assert not _check("q", [np.nan], [np.nan]).verified  # nan never does
    assert _check("q", [np.nan], [np.nan]).max_abs_diff != 0
