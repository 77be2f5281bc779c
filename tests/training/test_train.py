"""fit, fit_ensemble, init_ensemble and per_example_grads against plain Python loops.

The oracle for a training run is a plain loop over ``jaxbp.manual.backprop`` (NumPy float64) and
``jaxbp.manual.sgd``, visiting the batches in the order the docs promise: the data's own order, or
``jax.random.permutation(jax.random.fold_in(key, epoch), n)``, with the remainder of each epoch's
order left out.
"""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbp
from tests.helpers import assert_close

SPEC = jaxbp.MLP(sizes=(3, 5, 4, 2), activations=("relu", "tanh", "linear"))
LOSS = "mse"
N = 7  # examples: equal to no layer width, and 7 % 3 == 1 leaves a remainder


#: ``SPEC.init`` compiled once per dtype (eager random ops would compile one by one).
_INIT = jax.jit(SPEC.init, static_argnums=1)


@functools.partial(jax.jit, static_argnums=1)
def _draw(key: Any, dtype: Any) -> tuple[Any, Any, Any]:
    key_w, key_x, key_y = jax.random.split(key, 3)
    return (
        SPEC.init(key_w, dtype),
        jax.random.normal(key_x, (N, 3), dtype),
        jax.random.normal(key_y, (N, 2), dtype),
    )


@functools.cache
def _numpy_data(dtype: Any, seed: int) -> tuple[Any, np.ndarray, np.ndarray]:
    params, x, y = jax.tree.map(np.asarray, _draw(jax.random.key(seed), dtype))
    params[0]["b"] = np.array([-0.5, 0.3, -1.0, 0.2, 0.0], dtype)  # some relu inputs < 0
    return params, x, y


def _data(dtype: Any = jnp.float64, seed: int = 1) -> tuple[Any, Any, Any]:
    """Params (a fresh tree of device arrays), x ``(7, 3)`` and y ``(7, 2)`` as device arrays."""
    return jax.tree.map(jnp.asarray, _numpy_data(jnp.dtype(dtype), seed))


def _model(stacked: Any, i: int) -> Any:
    """Model ``i`` of a stacked tree, as NumPy arrays (no per-leaf device dispatch)."""
    return jax.tree.map(lambda leaf: np.asarray(leaf)[i], stacked)


def _epoch_order(n: int, key: Any, epoch: int) -> np.ndarray:
    if key is None:
        return np.arange(n)
    return np.asarray(jax.random.permutation(jax.random.fold_in(key, epoch), n))


def _batches(n: int, batch_size: int | None, key: Any, epoch: int) -> list[np.ndarray]:
    order = _epoch_order(n, key, epoch)
    if batch_size is None:
        return [order]
    return [order[s * batch_size : (s + 1) * batch_size] for s in range(n // batch_size)]


def _manual_fit(params, x, y, *, lr, epochs, batch_size=None, key=None, spec=SPEC, loss=LOSS):
    """Plain Python loop, float64: ``(params, losses)``; ``lr`` may be a function of the step."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    losses, step = [], 0
    for epoch in range(epochs):
        for index in _batches(len(x), batch_size, key, epoch):
            value, grads = jaxbp.manual.backprop(spec, loss, params, x[index], y[index])
            # A schedule sees an int32 step count, as inside optax, so its value is float32.
            rate = float(lr(jnp.asarray(step, jnp.int32))) if callable(lr) else lr
            params = jaxbp.manual.sgd(params, grads, rate)
            losses.append(value)
            step += 1
    return params, np.array(losses)


MODES = [(None, None), (1, None), (3, None), (None, 0), (1, 0), (3, 0)]
MODE_IDS = [
    f"{ {None: 'full', 1: 'stochastic', 3: 'minibatch-remainder'}[size] }-"
    f"{'ordered' if seed is None else 'shuffled'}"
    for size, seed in MODES
]


@pytest.mark.parametrize(("batch_size", "seed"), MODES, ids=MODE_IDS)
def test_fit_matches_a_plain_loop_over_the_manual_chain_rule(batch_size, seed) -> None:
    params, x, y = _data()
    key = None if seed is None else jax.random.key(seed)
    trained, history = jaxbp.fit(
        SPEC, LOSS, params, x, y, lr=0.05, epochs=3, batch_size=batch_size, key=key
    )
    expected, losses = _manual_fit(params, x, y, lr=0.05, epochs=3, batch_size=batch_size, key=key)
    steps_per_epoch = 1 if batch_size is None else N // batch_size
    assert history["loss"].shape == (3 * steps_per_epoch,)
    assert_close(history["loss"], losses)
    assert_close(trained, expected)


def test_shuffling_is_deterministic_for_a_key_and_differs_between_keys() -> None:
    params, x, y = _data()
    run = lambda seed: jaxbp.fit(  # noqa: E731
        SPEC, LOSS, params, x, y, lr=0.05, epochs=2, batch_size=2, key=jax.random.key(seed)
    )
    first, again, other = run(5), run(5), run(6)
    chex.assert_trees_all_equal(first, again)
    assert not np.allclose(first[1]["loss"], other[1]["loss"])
    ordered = jaxbp.fit(SPEC, LOSS, params, x, y, lr=0.05, epochs=2, batch_size=2)
    assert not np.allclose(first[1]["loss"], ordered[1]["loss"])


def test_the_remainder_changes_from_epoch_to_epoch_when_shuffling() -> None:
    # The oracle's order: 7 examples, batch 3, so one example is left out of each epoch.
    key = jax.random.key(0)
    left_out = {int(_epoch_order(N, key, epoch)[-1]) for epoch in range(6)}
    assert len(left_out) > 1


def test_adam_equals_a_plain_loop_of_optax_updates() -> None:
    params, x, y = _data()
    optimizer = optax.adam(0.02)
    trained, history = jaxbp.fit(
        SPEC, LOSS, params, x, y, epochs=2, batch_size=3, key=jax.random.key(2), optimizer=optimizer
    )
    expected, state, losses = params, optimizer.init(params), []
    update = jax.jit(optimizer.update)  # optax's own step, one compiled call per batch
    x, y = np.asarray(x), np.asarray(y)
    for epoch in range(2):
        for index in _batches(N, 3, jax.random.key(2), epoch):
            value, grads = jaxbp.manual.backprop(SPEC, LOSS, expected, x[index], y[index])
            updates, state = update(jax.tree.map(jnp.asarray, grads), state, expected)
            expected = jax.jit(optax.apply_updates)(expected, updates)
            losses.append(value)
    assert_close(history["loss"], np.array(losses))
    assert_close(trained, expected)
    assert_close(history["opt_state"], state)


def test_hand_written_sgd_equals_optax_sgd_step_for_step() -> None:
    params, x, y = _data()
    for epochs in (1, 2, 3):  # the final params after each number of epochs, and every loss
        mine, mine_history = jaxbp.fit(
            SPEC, LOSS, params, x, y, lr=0.1, epochs=epochs, batch_size=2
        )
        theirs, their_history = jaxbp.fit(
            SPEC, LOSS, params, x, y, epochs=epochs, batch_size=2, optimizer=optax.sgd(0.1)
        )
        assert_close(mine, theirs)
        assert_close(mine_history["loss"], their_history["loss"])


SCHEDULE = optax.exponential_decay(init_value=0.2, transition_steps=2, decay_rate=0.5)


def test_a_schedule_as_lr_follows_the_step_count() -> None:
    params, x, y = _data()
    trained, history = jaxbp.fit(SPEC, LOSS, params, x, y, lr=SCHEDULE, epochs=3, batch_size=2)
    expected, losses = _manual_fit(params, x, y, lr=SCHEDULE, epochs=3, batch_size=2)
    assert_close(history["loss"], losses)
    assert_close(trained, expected)


def test_optax_sgd_with_a_schedule_follows_the_step_count() -> None:
    params, x, y = _data()
    trained, history = jaxbp.fit(
        SPEC, LOSS, params, x, y, epochs=3, batch_size=2, optimizer=optax.sgd(SCHEDULE)
    )
    expected, losses = _manual_fit(params, x, y, lr=SCHEDULE, epochs=3, batch_size=2)
    assert_close(history["loss"], losses)
    assert_close(trained, expected)


@pytest.mark.parametrize("use_optimizer", [False, True], ids=["schedule-lr", "optax-adam"])
def test_a_run_continued_with_start_epoch_equals_the_whole_run(use_optimizer: bool) -> None:
    params, x, y = _data()
    key = jax.random.key(3)
    options: dict[str, Any] = (
        {"optimizer": optax.adam(SCHEDULE)} if use_optimizer else {"lr": SCHEDULE}
    )
    whole, whole_history = jaxbp.fit(
        SPEC, LOSS, params, x, y, epochs=4, batch_size=2, key=key, **options
    )
    half, half_history = jaxbp.fit(
        SPEC, LOSS, params, x, y, epochs=2, batch_size=2, key=key, **options
    )
    if use_optimizer:
        options["opt_state"] = half_history["opt_state"]
    rest, rest_history = jaxbp.fit(
        SPEC, LOSS, half, x, y, epochs=2, batch_size=2, key=key, start_epoch=2, **options
    )
    assert_close(rest, whole)
    assert_close(
        np.concatenate([half_history["loss"], rest_history["loss"]]), whole_history["loss"]
    )


class _CompileCounter:
    """Counts XLA compilations through jax.monitoring while in a ``with`` block."""

    def __enter__(self) -> _CompileCounter:
        self.count = 0
        jax.monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def _listen(self, event: str, duration: float, **kwargs: Any) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            self.count += 1

    def __exit__(self, *exc: object) -> None:
        unregister = getattr(jax.monitoring, "unregister_event_duration_listener", None)
        if unregister is None:  # JAX < 0.7 (Python 3.10) has only the private spelling
            from jax._src import monitoring

            unregister = monitoring._unregister_event_duration_listener_by_callback
        unregister(self._listen)


@pytest.mark.parametrize(
    "options",
    [{"lr": 0.05}, {"optimizer": optax.adam(0.01)}],
    ids=["sgd", "adam"],
)
def test_a_second_fit_with_the_same_shapes_does_not_recompile(options: dict) -> None:
    params, x, y = _data(jnp.float32, seed=7)
    other_params, other_x, other_y = _data(jnp.float32, seed=8)
    first = dict(options, key=jax.random.key(0))
    second = dict(options, key=jax.random.key(1))
    if "lr" in options:
        second["lr"] = 0.01  # a new learning rate is a traced value, not a new program
    with _CompileCounter() as first_call:
        jaxbp.fit(SPEC, LOSS, params, x, y, epochs=2, batch_size=3, **first)
    with _CompileCounter() as second_call:
        trained, _ = jaxbp.fit(
            SPEC, LOSS, other_params, other_x, other_y, epochs=2, batch_size=3, **second
        )
        jax.block_until_ready(trained)
    assert first_call.count >= 1  # the counter does see compilations
    assert second_call.count == 0


def test_the_schedule_is_traced_once_across_calls() -> None:
    params, x, y = _data(jnp.float32, seed=9)
    schedule = chex.assert_max_traces(lambda step: 0.1 / (1.0 + step), n=1)
    for lr_params in (params, jax.tree.map(lambda p: p + 1.0, params)):
        jaxbp.fit(SPEC, LOSS, lr_params, x, y, lr=schedule, epochs=2, batch_size=3)


def test_the_callers_params_stay_valid_and_a_second_fit_gives_the_same_result() -> None:
    params, x, y = _data()
    copy = jax.tree.map(np.array, params)
    first = jaxbp.fit(SPEC, LOSS, params, x, y, lr=0.05, epochs=2, batch_size=3)
    second = jaxbp.fit(SPEC, LOSS, params, x, y, lr=0.05, epochs=2, batch_size=3)
    chex.assert_trees_all_equal(first, second)
    chex.assert_trees_all_equal(jax.tree.map(np.asarray, params), copy)  # readable, unchanged
    chex.assert_trees_all_equal(np.asarray(x), np.asarray(_data()[1]))


def test_float32_stays_float32() -> None:
    params, x, y = _data(jnp.float32)
    trained, history = jaxbp.fit(SPEC, LOSS, params, x, y, lr=0.05, epochs=2, batch_size=3)
    assert {leaf.dtype for leaf in jax.tree.leaves(trained)} == {jnp.dtype("float32")}
    assert history["loss"].dtype == jnp.float32
    expected, losses = _manual_fit(params, x, y, lr=0.05, epochs=2, batch_size=3)
    assert_close(trained, expected, jnp.float32)
    assert_close(history["loss"], losses, jnp.float32)


def test_init_ensemble_stacks_independent_initialisations(key) -> None:
    stacked = jaxbp.init_ensemble(SPEC, key, 4)
    init = functools.partial(_INIT, dtype=jnp.float32)
    for i, model_key in enumerate(jax.random.split(key, 4)):
        chex.assert_trees_all_equal(_model(stacked, i), init(model_key))
    assert not np.allclose(stacked[0]["w"][0], stacked[0]["w"][1])


@pytest.mark.parametrize(("batch_size", "seed"), [(None, None), (3, 4)], ids=["full", "shuffled"])
def test_fit_ensemble_equals_training_each_model_alone(batch_size, seed) -> None:
    _, x, y = _data()
    stacked = jaxbp.init_ensemble(SPEC, jax.random.key(11), 3, jnp.float64)
    lrs = np.array([0.02, 0.05, 0.1])
    key = None if seed is None else jax.random.key(seed)
    trained, history = jaxbp.fit_ensemble(
        SPEC, LOSS, stacked, x, y, lr=lrs, epochs=2, batch_size=batch_size, key=key
    )
    steps = 2 * (1 if batch_size is None else N // batch_size)
    assert history["loss"].shape == (steps, 3)
    for i, lr in enumerate(lrs):
        expected, losses = _manual_fit(
            _model(stacked, i), x, y, lr=float(lr), epochs=2, batch_size=batch_size, key=key
        )
        assert_close(_model(trained, i), expected)
        assert_close(history["loss"][:, i], losses)


def test_fit_ensemble_takes_one_scalar_lr_for_every_model() -> None:
    _, x, y = _data()
    stacked = jaxbp.init_ensemble(SPEC, jax.random.key(12), 3, jnp.float64)
    trained, _ = jaxbp.fit_ensemble(SPEC, LOSS, stacked, x, y, lr=0.05, epochs=2)
    for i in range(3):
        expected, _ = _manual_fit(_model(stacked, i), x, y, lr=0.05, epochs=2)
        assert_close(_model(trained, i), expected)


def test_per_example_grads_match_the_manual_chain_rule_one_example_at_a_time() -> None:
    params, x, y = _data()
    grads = jaxbp.per_example_grads(SPEC, LOSS, params, x, y)
    chex.assert_tree_shape_prefix(grads, (N,))
    x, y = np.asarray(x), np.asarray(y)
    for i in range(N):
        _, expected = jaxbp.manual.backprop(SPEC, LOSS, params, x[i : i + 1], y[i : i + 1])
        assert_close(_model(grads, i), expected)
    _, batch_grads = jaxbp.manual.backprop(SPEC, LOSS, params, x, y)
    assert_close(jax.tree.map(lambda g: g.mean(axis=0), grads), batch_grads)


LINEAR = jaxbp.MLP(sizes=(3, 4, 2), activations="linear")  # diverges smoothly: no chaos


def _manual_until_nonfinite(params, x, y, lr, steps):
    """Plain loop, stopping at the first step whose loss or gradient is not finite, or whose loss
    is above 1e6 x max(|first loss|, 1) (the guard's documented blow-up rule)."""
    first = None
    with np.errstate(all="ignore"):
        for step in range(steps):
            value, grads = jaxbp.manual.backprop(LINEAR, LOSS, params, x, y)
            first = value if first is None else first
            layers = [not all(np.isfinite(g).all() for g in layer.values()) for layer in grads]
            if not math.isfinite(value) or any(layers):
                return params, step, layers, "nonfinite"
            if value > 1e6 * max(abs(first), 1.0):
                return params, step, layers, "blowup"
            params = jaxbp.manual.sgd(params, grads, lr)
    return params, -1, [False] * len(params), None


@pytest.mark.parametrize(
    ("lr", "reason"), [(3.0, "blowup"), (3.0, "nonfinite")], ids=["blowup", "nonfinite"]
)
def test_stop_on_nonfinite_keeps_the_last_finite_params(lr: float, reason: str) -> None:
    _, x, y = _data()
    params = LINEAR.init(jax.random.key(3), jnp.float64)
    steps = 20  # lr too large: the loss grows geometrically, then overflows to inf
    if reason == "nonfinite":  # x scaled up: the first step already overflows
        x = x * 1e80
    expected, bad_step, bad_layers, expected_reason = _manual_until_nonfinite(
        params, x, y, lr, steps
    )
    assert expected_reason == reason and 0 <= bad_step < steps - 1
    trained, history = jaxbp.fit(
        LINEAR, LOSS, params, x, y, lr=lr, epochs=steps, stop_on_nonfinite=True
    )
    assert history["stop_step"] == bad_step
    assert history["stop_reason"] == reason
    expected_paths = [f"[{i}]['{k}']" for i, bad in enumerate(bad_layers) if bad for k in "bw"]
    assert history["nonfinite_paths"] == expected_paths
    assert history["nonfinite_path"] == (expected_paths[0] if expected_paths else None)
    assert np.isfinite(history["loss"][:bad_step]).all()
    assert np.isnan(history["loss"][bad_step + 1 :]).all()
    assert_close(trained, expected)


def test_stop_on_nonfinite_reports_minus_one_when_every_step_is_finite() -> None:
    params, x, y = _data()
    trained, history = jaxbp.fit(
        SPEC, LOSS, params, x, y, lr=0.05, epochs=3, stop_on_nonfinite=True
    )
    assert history["stop_step"] == -1 and history["stop_reason"] is None
    expected, _ = _manual_fit(params, x, y, lr=0.05, epochs=3)
    assert_close(trained, expected)


BAD_FIT_ARGS = [
    ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
    ({"batch_size": N + 1}, ValueError, "batch_size 8 is larger than the 7 examples"),
    ({"batch_size": 2.5}, TypeError, "batch_size must be an int"),
    ({"epochs": 0}, ValueError, "epochs must be >= 1"),
    ({"lr": 0.0}, ValueError, "learning rate must be finite and > 0"),
    ({"lr": -0.1}, ValueError, "learning rate must be finite and > 0"),
    ({"lr": float("nan")}, ValueError, "learning rate must be finite and > 0"),
    ({"lr": None}, ValueError, "pass lr"),
    ({"optimizer": optax.sgd(0.1)}, ValueError, "an optimizer carries its own learning rate"),
    ({"lr": None, "optimizer": "adam"}, TypeError, "optax.GradientTransformation"),
    ({"start_epoch": -1}, ValueError, "start_epoch must be an int >= 0"),
]


@pytest.mark.parametrize(
    ("overrides", "error", "message"), BAD_FIT_ARGS, ids=[m for _, _, m in BAD_FIT_ARGS]
)
def test_fit_rejects_bad_settings(overrides: dict, error: type, message: str) -> None:
    params, x, y = _data()
    kwargs = {"lr": 0.1, "epochs": 1, **overrides}
    with pytest.raises(error, match=message):
        jaxbp.fit(SPEC, LOSS, params, x, y, **kwargs)


BAD_ENSEMBLE_RATES = [
    (
        {"lr": None},
        ValueError,
        r"fit_ensemble: pass lr \(a number or one per model\), or an optimizer",
    ),
    (
        {"optimizer": optax.sgd(0.1)},
        ValueError,
        "fit_ensemble: an optimizer carries its own learning rate",
    ),
    ({"lr": None, "optimizer": "adam"}, TypeError, "optax.GradientTransformation"),
]


@pytest.mark.parametrize(
    ("overrides", "error", "message"), BAD_ENSEMBLE_RATES, ids=["neither", "both", "not-optax"]
)
def test_fit_ensemble_takes_lr_or_an_optimizer(overrides: dict, error: type, message: str) -> None:
    params, x, y = _data()
    stacked = jax.tree.map(lambda leaf: np.stack([leaf, leaf]), params)
    kwargs = {"lr": 0.1, "epochs": 1, **overrides}
    with pytest.raises(error, match=message):
        jaxbp.fit_ensemble(SPEC, LOSS, stacked, x, y, **kwargs)


def test_fit_rejects_wrong_shapes() -> None:
    params, x, y = _data()
    with pytest.raises(ValueError, match=r"fit: x has shape \(7, 2\)"):
        jaxbp.fit(SPEC, LOSS, params, x[:, :2], y, lr=0.1, epochs=1)
    with pytest.raises(ValueError, match=r"fit: y has shape \(6, 2\)"):
        jaxbp.fit(SPEC, LOSS, params, x, y[:6], lr=0.1, epochs=1)
    with pytest.raises(ValueError, match=r"fit: x must be a batch"):
        jaxbp.fit(SPEC, LOSS, params, x[0], y[0], lr=0.1, epochs=1)
    with pytest.raises(ValueError, match=r"params\[1\]\[\"w\"\] has shape"):
        bad = [params[0], {"w": params[1]["w"].T, "b": params[1]["b"]}, params[2]]
        jaxbp.fit(SPEC, LOSS, bad, x, y, lr=0.1, epochs=1)


def test_fit_ensemble_rejects_bad_inputs() -> None:
    _, x, y = _data()
    stacked = jaxbp.init_ensemble(SPEC, jax.random.key(0), 3, jnp.float64)
    with pytest.raises(ValueError, match="lr has shape"):
        jaxbp.fit_ensemble(SPEC, LOSS, stacked, x, y, lr=np.array([0.1, 0.2]), epochs=1)
    with pytest.raises(ValueError, match="learning rate must be finite and > 0"):
        jaxbp.fit_ensemble(SPEC, LOSS, stacked, x, y, lr=np.array([0.1, 0.0, 0.2]), epochs=1)
    with pytest.raises(ValueError, match="same model axis"):
        uneven = jax.tree.map(lambda leaf: leaf, stacked)
        uneven[0]["b"] = uneven[0]["b"][:2]
        jaxbp.fit_ensemble(SPEC, LOSS, uneven, x, y, lr=0.1, epochs=1)
    with pytest.raises(ValueError, match="batch_size 8 is larger"):
        jaxbp.fit_ensemble(SPEC, LOSS, stacked, x, y, lr=0.1, epochs=1, batch_size=8)
    with pytest.raises(ValueError, match="num_models must be >= 1"):
        jaxbp.init_ensemble(SPEC, jax.random.key(0), 0)


def test_smoke_the_code_in_docs_speed_md_runs(capsys) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "speed.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert len(blocks) == 3
    namespace: dict[str, Any] = {}
    for block in blocks:
        exec(block, namespace)  # the blocks build on each other, as a reader runs them
    assert capsys.readouterr().out.split() == ["(2000,)", "(2000,", "100)"]
    assert namespace["params"][0]["w"].dtype == jnp.float32
    chex.assert_tree_shape_prefix(namespace["grads"], (100,))


def test_an_optimizer_made_anew_compiles_anew_and_one_made_once_does_not():
    # What docs/models.md says: the optimizer object is part of the compiled program's key.
    from jaxbp.training.fit import _fit_program

    params, x, y = _data(jnp.float32)

    def compiles(optimizers, states=None):
        before = _fit_program._cache_size()
        for i, optimizer in enumerate(optimizers):
            state = None if states is None else states[i]
            jaxbp.fit(SPEC, LOSS, params, x, y, optimizer=optimizer, opt_state=state, epochs=1)
        return _fit_program._cache_size() - before

    assert optax.adam(1e-3) != optax.adam(1e-3)  # closures: equal only to themselves
    assert compiles([optax.adam(1e-3), optax.adam(1e-3), optax.adam(1e-3)]) == 3
    adam = optax.adam(1e-3)
    assert compiles([adam, adam, adam]) == 1
    tunable = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)
    states = []
    for rate in (1e-3, 1e-2, 1e-1):
        state = tunable.init(params)
        state.hyperparams["learning_rate"] = jnp.asarray(rate, jnp.float32)
        states.append(state)
    assert compiles([tunable] * 3, states) == 1
