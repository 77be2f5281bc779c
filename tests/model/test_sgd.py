"""loss_and_grad, the hand-written sgd, train_step, optax interop, jit/vmap behaviour."""

from __future__ import annotations

import importlib

import chex
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import optax
import pytest

import jaxbp
from jaxbp.model.steps import batch_loss
from tests.helpers import assert_close

SPEC = jaxbp.MLP(sizes=(3, 5, 4, 2), activations=("tanh", "relu", "linear"))


@pytest.fixture
def data(key):
    k_params, k_x, k_y = jax.random.split(key, 3)
    params = SPEC.init(k_params, jnp.float64)
    params[1]["b"] = jnp.linspace(-0.5, 0.5, 4)
    x = jax.random.normal(k_x, (7, 3), jnp.float64)
    y = jax.random.normal(k_y, (7, 2), jnp.float64)
    return params, x, y


def test_sgd_is_p_minus_lr_g_and_leaves_its_input_unchanged(data) -> None:
    params, x, y = data
    before = jax.tree.map(np.array, params)
    _, grads = jaxbp.loss_and_grad(SPEC, "mse", params, x, y)
    new = jaxbp.sgd(params, grads, 0.3)
    chex.assert_trees_all_equal(params, before)
    expected = [
        {k: before[i][k] - 0.3 * np.asarray(grads[i][k]) for k in before[i]} for i in range(3)
    ]
    assert_close(new, expected)


def test_hand_written_sgd_equals_optax_sgd_step_for_step(data) -> None:
    params, x, y = data
    optimizer = optax.sgd(0.1)
    state = optimizer.init(params)
    mine = theirs = params
    for _ in range(5):
        _, grads = jaxbp.loss_and_grad(SPEC, "half_se", mine, x, y)
        mine = jaxbp.sgd(mine, grads, 0.1)
        theirs, state, _ = jaxbp.optax_step(SPEC, "half_se", optimizer, theirs, state, x, y)
        assert_close(theirs, mine)


@pytest.mark.parametrize(
    ("rate", "error", "pattern"),
    [
        (-0.1, ValueError, r"sgd_transformation: learning rate must be finite and > 0, got -0.1"),
        (float("nan"), ValueError, "sgd_transformation: learning rate must be finite and > 0"),
        ("0.1", TypeError, "sgd_transformation: learning rate must be a real number, got '0.1'"),
    ],
)
def test_sgd_transformation_refuses_a_rate_fit_would_refuse(rate, error, pattern) -> None:
    # a negative rate would be gradient ascent through fit(optimizer=...), where lr= refuses it
    with pytest.raises(error, match=pattern):
        jaxbp.sgd_transformation(rate)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, ml_dtypes.bfloat16, jnp.float16])
def test_a_bfloat16_or_float16_learning_rate_is_a_number(data, dtype) -> None:
    # np.issubdtype does not count bfloat16 as floating: train_step, fit and fit_ensemble
    # refused lr=jnp.array(0.5, jnp.bfloat16) as "learning rate must be a real number"
    params, x, y = data
    lr = jnp.array(0.5, dtype) if dtype is not ml_dtypes.bfloat16 else np.array(0.5, dtype)
    _, grads = jaxbp.loss_and_grad(SPEC, "half_se", params, x, y)
    expected = jax.tree.map(lambda p, g: np.asarray(p) - 0.5 * np.asarray(g), params, grads)
    stepped, _ = jaxbp.train_step(SPEC, "half_se", params, x, y, lr)
    assert_close(stepped, expected)
    fitted, _ = jaxbp.fit(SPEC, "half_se", params, x, y, lr=lr, epochs=1)
    assert_close(fitted, expected)
    stacked = jax.tree.map(lambda leaf: jnp.stack([leaf, leaf]), params)
    ensemble, _ = jaxbp.fit_ensemble(SPEC, "half_se", stacked, x, y, lr=lr, epochs=1)
    assert_close(jax.tree.map(lambda leaf: leaf[1], ensemble), expected)
    with pytest.raises(ValueError, match=r"train_step: learning rate must be finite and > 0"):
        jaxbp.train_step(SPEC, "half_se", params, x, y, -lr)


def test_an_optax_multisteps_object_is_refused_naming_its_gradient_transformation(data) -> None:
    # MultiSteps is a wrapper with init/update but not a GradientTransformation; the message
    # said "pass e.g. optax.adam(1e-3)". Its gradient_transformation() trains like a plain loop.
    params, x, y = data
    wrapper = optax.MultiSteps(optax.sgd(0.1), every_k_schedule=2)
    hint = r"optimizer must be .*, got an optax.MultiSteps object; pass its transformation: .*gradient_transformation\(\)"
    with pytest.raises(TypeError, match="optax_step: " + hint):
        jaxbp.optax_step(SPEC, "half_se", wrapper, params, wrapper.init(params), x, y)
    with pytest.raises(TypeError, match="fit: " + hint):
        jaxbp.fit(SPEC, "half_se", params, x, y, optimizer=wrapper, epochs=1)
    stacked = jax.tree.map(lambda leaf: jnp.stack([leaf, leaf]), params)
    with pytest.raises(TypeError, match="fit_ensemble: " + hint):
        jaxbp.fit_ensemble(SPEC, "half_se", stacked, x, y, optimizer=wrapper, epochs=1)
    # two accumulated steps: one SGD update with the mean of the two gradients
    got, _ = jaxbp.fit(
        SPEC, "half_se", params, x, y, optimizer=wrapper.gradient_transformation(), epochs=2
    )
    _, grads = jaxbp.loss_and_grad(SPEC, "half_se", params, x, y)
    expected = jax.tree.map(lambda p, g: np.asarray(p) - 0.1 * np.asarray(g), params, grads)
    assert_close(got, expected, jnp.float32)  # MultiSteps averages with a float32 step count


def test_one_step_refuses_a_schedule_it_has_no_step_count_for(data) -> None:
    # sgd used to call the schedule at step 0 silently; train_step failed deep inside jit
    params, x, y = data
    schedule = optax.linear_schedule(0.5, 0.0, 10)
    _, grads = jaxbp.loss_and_grad(SPEC, "mse", params, x, y)
    with pytest.raises(TypeError, match=r"sgd: learning rate must be a number, got a function"):
        jaxbp.sgd(params, grads, schedule)
    with pytest.raises(TypeError, match=r"train_step: learning rate must be a number.*lr=schedule\(step\)"):  # fmt: skip
        jaxbp.train_step(SPEC, "mse", params, x, y, schedule)


def test_sgd_transformation_takes_a_schedule_and_a_traced_rate(data) -> None:
    params, x, y = data
    _, grads = jaxbp.loss_and_grad(SPEC, "mse", params, x, y)
    schedule = jaxbp.sgd_transformation(optax.constant_schedule(0.3))
    updates, _ = schedule.update(grads, schedule.init(params))
    assert_close(updates, jax.tree.map(lambda g: -0.3 * np.asarray(g), grads))

    @jax.jit
    def traced(rate):
        transformation = jaxbp.sgd_transformation(rate)
        return transformation.update(grads, transformation.init(params))[0]

    assert_close(traced(0.3), jax.tree.map(lambda g: -0.3 * np.asarray(g), grads))


def test_optax_step_with_adam_equals_plain_optax_loop(data) -> None:
    params, x, y = data
    optimizer = optax.adam(1e-2)
    state = optimizer.init(params)
    plain_state, plain = optimizer.init(params), params
    for _ in range(3):
        params, state, _ = jaxbp.optax_step(SPEC, "mse", optimizer, params, state, x, y)
        grads = jax.grad(lambda p: jaxbp.LOSSES["mse"](SPEC.apply(p, x), y))(plain)
        updates, plain_state = optimizer.update(grads, plain_state, plain)
        plain = optax.apply_updates(plain, updates)
    assert_close(params, plain)


class JitVariantsTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_loss_and_grad_same_with_and_without_jit(self) -> None:
        spec = SPEC
        params = spec.init(jax.random.key(4), jnp.float64)
        x = jax.random.normal(jax.random.key(5), (6, 3), jnp.float64)
        y = jax.random.normal(jax.random.key(6), (6, 2), jnp.float64)
        step = self.variant(
            lambda p, x, y: jax.value_and_grad(batch_loss, argnums=2)(spec, "half_se", p, x, y)
        )
        value, grads = step(params, x, y)
        manual_value, manual_grads = jaxbp.manual.backprop(spec, "half_se", params, x, y)
        assert_close(value, manual_value)
        assert_close(grads, manual_grads)


def test_train_step_does_not_retrace_for_a_new_learning_rate(data) -> None:
    params, x, y = data
    compiled = importlib.import_module(
        "jaxbp.model.steps"
    )._train_step  # the jitted program behind train_step
    for lr in (0.1, 0.2, 0.05):
        params, _ = jaxbp.train_step(SPEC, "mse", params, x, y, lr)
        if lr == 0.1:
            size = compiled._cache_size()
    assert compiled._cache_size() == size
    # the same with chex's trace counter around the step's function
    traced = chex.assert_max_traces(lambda p, lr: jaxbp.sgd(p, p, lr), n=1)
    step = jax.jit(traced)
    for lr in (0.1, 0.2):
        step(params, jnp.asarray(lr))
    chex.clear_trace_counter()


def test_train_step_matches_manual_chain_rule_for_several_steps(data) -> None:
    params, x, y = data
    manual_params = params
    for _ in range(3):
        params, loss = jaxbp.train_step(SPEC, "mse", params, x, y, 0.2)
        manual_loss, grads = jaxbp.manual.backprop(SPEC, "mse", manual_params, x, y)
        manual_params = jaxbp.manual.sgd(manual_params, grads, 0.2)
        assert_close(loss, manual_loss)
    assert_close(params, manual_params)


def test_vmap_per_example_gradient_equals_python_loop_and_mean_is_batch_gradient(data) -> None:
    params, x, y = data

    def example_grad(xi, yi):
        return jax.grad(lambda p: jaxbp.LOSSES["half_se"](SPEC.apply(p, xi), yi))(params)

    per_example = jax.vmap(example_grad)(x, y)
    for i in range(x.shape[0]):
        _, manual_grads = jaxbp.manual.backprop(SPEC, "half_se", params, x[i], y[i])
        assert_close(jax.tree.map(lambda g, i=i: g[i], per_example), manual_grads)
    _, batch_grads = jaxbp.loss_and_grad(SPEC, "half_se", params, x, y)
    assert_close(jax.tree.map(lambda g: g.mean(axis=0), per_example), batch_grads)
    # the forward pass too: vmap over examples equals the batched forward pass
    assert_close(jax.vmap(SPEC.apply, in_axes=(None, 0))(params, x), SPEC.apply(params, x))


def test_stochastic_minibatch_and_full_batch_modes_match_manual(data) -> None:
    params, x, y = data
    for batch_size in (1, 3, 7):  # stochastic, mini-batch (remainder dropped), full batch
        mine, manual_params = params, params
        for start in range(0, x.shape[0] - batch_size + 1, batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            mine, _ = jaxbp.train_step(SPEC, "half_se", mine, xb, yb, 0.1)
            _, grads = jaxbp.manual.backprop(SPEC, "half_se", manual_params, xb, yb)
            manual_params = jaxbp.manual.sgd(manual_params, grads, 0.1)
        assert_close(mine, manual_params)


def test_float32_params_stay_float32(key) -> None:
    params = SPEC.init(key)  # float32
    x = np.ones((2, 3), np.float64)  # NumPy float64 data
    y = np.ones((2, 2), np.float64)
    _, grads = jaxbp.loss_and_grad(SPEC, "mse", params, x, y)
    new = jaxbp.sgd(params, grads, 0.1)
    new_step, _ = jaxbp.train_step(SPEC, "mse", params, x, y, 0.1)
    for tree in (grads, new, new_step):
        assert {leaf.dtype for leaf in jax.tree.leaves(tree)} == {jnp.dtype("float32")}


def test_loss_decreases_every_step_with_a_small_learning_rate(data) -> None:
    # half_se on a network with a linear last layer is convex in that layer's weights; with
    # every layer trained and a small step the loss still falls monotonically here.
    params, x, y = data
    losses = []
    for _ in range(10):
        params, loss = jaxbp.train_step(SPEC, "half_se", params, x, y, 0.01)
        losses.append(float(loss))
    assert np.all(np.diff(losses) < 0)
