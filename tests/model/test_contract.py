"""Any pure model, any loss, any params pytree: every entry point against plain JAX/optax loops.

The oracle for each entry point is the same computation written out in the test with
``jax.value_and_grad`` of a plain batch-mean loss, a Python loop over the batches in the order the
docs promise, and ``p - lr * g`` or ``optax`` updates: nothing from jaxbp's training code.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbp
from tests.helpers import assert_close

N, FEATURES, HIDDEN, OUTPUTS = 12, 3, 5, 2


def model(params: dict, x: jax.Array) -> jax.Array:
    """A user's own MLP with a dict of params and a nested dict for the head."""
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    return hidden @ params["head"]["w"] + params["head"]["b"]


def l2(prediction: jax.Array, target: jax.Array) -> jax.Array:
    return optax.l2_loss(prediction, target).sum(-1)  # per example: (batch,)


def init(key: jax.Array) -> dict:
    k1, k2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(k1, (FEATURES, HIDDEN), jnp.float64) / 2,
        "b1": jnp.linspace(-0.5, 0.5, HIDDEN),
        "head": {"w": jax.random.normal(k2, (HIDDEN, OUTPUTS), jnp.float64) / 2, "b": jnp.ones(2)},
    }


@functools.cache
def _numpy_problem(seed: int) -> tuple[Any, np.ndarray, np.ndarray]:
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    params = jax.tree.map(np.asarray, init(k1))
    x = np.asarray(jax.random.normal(k2, (N, FEATURES), jnp.float64))
    y = np.asarray(jax.random.normal(k3, (N, OUTPUTS), jnp.float64))
    return params, x, y


def problem(seed: int = 0) -> tuple[Any, jax.Array, jax.Array]:
    return jax.tree.map(jnp.asarray, _numpy_problem(seed))


def plain_loss(params, x, y):
    return jnp.mean(0.5 * jnp.sum((model(params, x) - y) ** 2, axis=-1))


plain_value_and_grad = jax.jit(jax.value_and_grad(plain_loss))


def batch_rows(n: int, batch_size: int | None, key: Any, epoch: int) -> list[np.ndarray]:
    order = (
        np.arange(n)
        if key is None
        else np.asarray(jax.random.permutation(jax.random.fold_in(key, epoch), n))
    )
    if batch_size is None:
        return [order]
    return [order[s * batch_size : (s + 1) * batch_size] for s in range(n // batch_size)]


def plain_fit(params, x, y, *, epochs, batch_size=None, key=None, lr=None, optimizer=None):
    x, y = np.asarray(x), np.asarray(y)
    state = None if optimizer is None else optimizer.init(params)
    losses = []
    for epoch in range(epochs):
        for rows in batch_rows(len(x), batch_size, key, epoch):
            value, grads = plain_value_and_grad(params, x[rows], y[rows])
            if optimizer is None:
                params = jax.tree.map(lambda p, g: p - lr * g, params, grads)
            else:
                updates, state = optimizer.update(grads, state, params)
                params = optax.apply_updates(params, updates)
            losses.append(value)
    return params, np.array(losses), state


def test_loss_and_grad_train_step_and_optax_step_follow_plain_jax() -> None:
    params, x, y = problem()
    value, grads = jaxbp.loss_and_grad(model, l2, params, x, y)
    expected_value, expected_grads = plain_value_and_grad(params, x, y)
    assert_close(value, expected_value)
    assert_close(grads, expected_grads)
    stepped, before = jaxbp.train_step(model, l2, params, x, y, 0.3)
    assert_close(before, expected_value)
    assert_close(stepped, jax.tree.map(lambda p, g: p - 0.3 * g, params, expected_grads))
    optimizer = optax.adam(0.05)
    state = optimizer.init(params)
    new, new_state, _ = jaxbp.optax_step(model, l2, optimizer, params, state, x, y)
    updates, expected_state = optimizer.update(expected_grads, state, params)
    assert_close(new, optax.apply_updates(params, updates))
    assert_close(new_state, expected_state)


@pytest.mark.parametrize(
    ("batch_size", "seed"),
    [(None, None), (5, None), (5, 3)],
    ids=["full", "minibatch-ordered", "minibatch-shuffled"],
)
def test_fit_with_a_dict_params_model_equals_a_plain_loop(batch_size, seed) -> None:
    params, x, y = problem()
    key = None if seed is None else jax.random.key(seed)
    trained, history = jaxbp.fit(
        model, l2, params, x, y, lr=0.1, epochs=3, batch_size=batch_size, key=key
    )
    expected, losses, _ = plain_fit(params, x, y, epochs=3, batch_size=batch_size, key=key, lr=0.1)
    assert_close(trained, expected)
    assert_close(history["loss"], losses)


def test_fit_with_an_optimizer_equals_a_plain_optax_loop() -> None:
    params, x, y = problem()
    optimizer = optax.adam(0.02)
    key = jax.random.key(4)
    trained, history = jaxbp.fit(
        model, l2, params, x, y, epochs=2, batch_size=4, key=key, optimizer=optimizer
    )
    expected, losses, state = plain_fit(
        params, x, y, epochs=2, batch_size=4, key=key, optimizer=optimizer
    )
    assert_close(trained, expected)
    assert_close(history["loss"], losses)
    assert_close(history["opt_state"], state)


def test_per_example_grads_of_a_dict_model_are_one_plain_grad_per_example() -> None:
    params, x, y = problem()
    grads = jaxbp.per_example_grads(model, l2, params, x, y)
    for i in range(N):
        _, expected = plain_value_and_grad(params, x[i : i + 1], y[i : i + 1])
        assert_close(jax.tree.map(lambda g, i=i: g[i], grads), expected)


@pytest.mark.parametrize("use_optimizer", [False, True], ids=["sgd-per-model-lr", "adam"])
def test_fit_ensemble_of_a_dict_model_equals_each_model_alone(use_optimizer: bool) -> None:
    _, x, y = problem()
    stacked = jax.vmap(init)(jax.random.split(jax.random.key(9), 3))  # the documented helper
    key = jax.random.key(2)
    lrs = np.array([0.05, 0.1, 0.2])
    options: dict[str, Any] = {"optimizer": optax.adam(0.03)} if use_optimizer else {"lr": lrs}
    trained, history = jaxbp.fit_ensemble(
        model, l2, stacked, x, y, epochs=2, batch_size=4, key=key, **options
    )
    assert history["loss"].shape == (2 * 3, 3)
    for m in range(3):
        alone = jax.tree.map(lambda leaf, m=m: leaf[m], stacked)
        one = {"optimizer": options["optimizer"]} if use_optimizer else {"lr": float(lrs[m])}
        expected, losses, _ = plain_fit(alone, x, y, epochs=2, batch_size=4, key=key, **one)
        assert_close(jax.tree.map(lambda leaf, m=m: leaf[m], trained), expected)
        assert_close(history["loss"][:, m], losses)


# --- a CNN-like model: x of rank 3, integer labels ----------------------------------------------
LENGTH, CHANNELS, FILTERS, CLASSES, WIDTH = 8, 2, 3, 4, 3


def cnn(params: dict, x: jax.Array) -> jax.Array:
    """x: (batch, length, channels) -> logits (batch, classes); a valid 1-D convolution."""
    out = jax.lax.conv_general_dilated(
        x, params["conv"]["k"], window_strides=(1,), padding="VALID",
        dimension_numbers=("NWC", "WIO", "NWC"),
    )  # fmt: skip
    hidden = jax.nn.relu(out + params["conv"]["b"])
    return hidden.reshape(hidden.shape[0], -1) @ params["dense"]["w"] + params["dense"]["b"]


def test_a_cnn_on_rank_3_inputs_with_integer_labels_trains_like_a_plain_loop() -> None:
    k1, k2, k3, k4 = jax.random.split(jax.random.key(5), 4)
    params = {
        "conv": {"k": jax.random.normal(k1, (WIDTH, CHANNELS, FILTERS)), "b": jnp.full(3, 0.1)},
        "dense": {
            "w": jax.random.normal(k2, ((LENGTH - WIDTH + 1) * FILTERS, CLASSES)) / 4,
            "b": jnp.zeros(CLASSES),
        },
    }
    x = jax.random.normal(k3, (10, LENGTH, CHANNELS))
    labels = jax.random.randint(k4, (10,), 0, CLASSES)
    loss = optax.softmax_cross_entropy_with_integer_labels
    key = jax.random.key(1)
    trained, history = jaxbp.fit(
        cnn, loss, params, x, labels, lr=0.1, epochs=3, batch_size=4, key=key
    )

    def plain(p, xb, yb):
        return jnp.mean(loss(cnn(p, xb), yb))

    expected, losses = params, []
    for epoch in range(3):
        for rows in batch_rows(10, 4, key, epoch):
            value, grads = jax.value_and_grad(plain)(expected, x[rows], labels[rows])
            expected = jax.tree.map(lambda p, g: p - 0.1 * g, expected, grads)
            losses.append(value)
    assert history["loss"].shape == (3 * 2,)
    assert_close(history["loss"], np.array(losses))
    assert_close(trained, expected)


def test_an_mlp_is_a_model_like_any_other() -> None:
    spec = jaxbp.MLP((FEATURES, 4, CLASSES), ("tanh", "linear"))
    params = spec.init(jax.random.key(0), jnp.float64)
    _, x, _ = problem()
    assert_close(spec(params, x), spec.apply(params, x))
    labels = jnp.arange(N) % CLASSES
    loss = optax.softmax_cross_entropy_with_integer_labels
    value, grads = jaxbp.loss_and_grad(spec, loss, params, x, labels)
    expected = jax.value_and_grad(lambda p: jnp.mean(loss(spec.apply(p, x), labels)))(params)
    assert_close((value, grads), expected)


# --- the guard on any pytree ---------------------------------------------------------------------
def sqrt_model(params: dict, x: jax.Array) -> jax.Array:
    return x @ params["w"] + jnp.sqrt(params["head"]["a"])


def test_the_guard_names_the_tree_path_of_the_first_nonfinite_gradient() -> None:
    _, x, y = problem()
    # d sqrt(a)/da = 1 / (2 sqrt(a)) is infinite at a = 0; the loss and dL/dw stay finite.
    params = {"w": jnp.ones((FEATURES, OUTPUTS)) * 0.1, "head": {"a": jnp.zeros(OUTPUTS)}}
    trained, history = jaxbp.fit(sqrt_model, l2, params, x, y, lr=0.1, epochs=3, stop_on_nonfinite=True)  # fmt: skip
    assert history["stop_step"] == 0 and history["stop_reason"] == "nonfinite"
    assert history["nonfinite_path"] == "['head']['a']"
    assert history["nonfinite_paths"] == ["['head']['a']"]
    assert_close(trained, params)  # nothing was applied
    assert np.isfinite(history["loss"][0]) and np.isnan(history["loss"][1:]).all()


def test_the_guard_stops_adam_when_the_loss_blows_up() -> None:
    params, x, y = problem()
    optimizer = optax.adam(1e6)
    trained, history = jaxbp.fit(
        model, l2, params, x, y, epochs=30, optimizer=optimizer, stop_on_nonfinite=True
    )
    # The oracle: the documented rule on a plain optax loop.
    expected, losses, _ = plain_fit(params, x, y, epochs=30, optimizer=optimizer)
    limit = 1e6 * max(abs(losses[0]), 1.0)
    bad = int(np.argmax(~np.isfinite(losses) | (losses > limit)))
    assert np.isfinite(losses[bad]) and losses[bad] > limit  # blown up while finite
    assert history["stop_step"] == bad and history["stop_reason"] == "blowup"
    assert history["nonfinite_path"] is None
    expected, _, _ = plain_fit(params, x, y, epochs=bad, optimizer=optimizer)
    assert_close(trained, expected)


def test_the_code_in_docs_models_md_runs(capsys) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "models.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    namespace: dict[str, Any] = {}
    for block in blocks:
        exec(block, namespace)  # the blocks build on each other, as a reader runs them
    printed = capsys.readouterr().out.split()
    assert printed == ["(20,)", "(64,", "3,", "2,", "4)", "True", "(3,", "4)"]
    assert namespace["stacked"]["kernel"].shape == (4, 3, 2, 4)


def test_streamed_chunks_continue_from_chunk_to_chunk_like_a_plain_loop() -> None:
    # Data that arrives in chunks: the compiled step over pre-cut batches, with the carry (and
    # the guard's state) handed from one chunk's program to the next.
    params, x, y = problem()
    trained, history = jaxbp.fit(
        model, l2, params, np.asarray(x), np.asarray(y), lr=0.1, epochs=1, batch_size=4,
        chunk_steps=2, prefetch=0, stop_on_nonfinite=True,
    )  # fmt: skip
    expected, expected_losses, _ = plain_fit(params, x, y, epochs=1, batch_size=4, lr=0.1)
    assert_close(trained, expected)
    assert_close(np.asarray(history["loss"]), expected_losses)
    assert history["chunks"] == 2 and history["steps_done"] == 3  # two batches, then one
    assert history["stop_step"] == -1 and history["stop_reason"] is None
