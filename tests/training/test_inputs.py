"""What fit and fit_ensemble train on, checked before compiling: predictions that broadcast
against y, a loss that mixes examples, NaN params, iterators next to y, opt_state without an
optimizer, unstacked ensembles, validation data unlike the training data, and NumPy layouts."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbp

N = 64
TRUE_W = np.array([[1.0], [-2.0], [0.5]])


def linear(params: dict, x: jax.Array) -> jax.Array:
    return x @ params["w"]


def half_se_sum(prediction: jax.Array, target: jax.Array) -> jax.Array:
    return 0.5 * ((prediction - target) ** 2).sum(-1)


def _problem() -> tuple[dict, np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).normal(size=(N, 3))
    return {"w": np.zeros((3, 1))}, x, x @ TRUE_W


def _stack(params: dict, count: int = 2) -> dict:
    return jax.tree.map(lambda a: np.stack([a] * count), params)


def _train(kind: str, params: dict, x: np.ndarray, y: np.ndarray, model: Any = linear, loss: Any = half_se_sum) -> Any:  # fmt: skip
    """One epoch through each way of training: device arrays (the whole-run program), NumPy
    arrays (streamed), an iterable of batches, and an ensemble of two copies of ``params``."""
    if kind == "fit-device":
        return jaxbp.fit(model, loss, params, jnp.asarray(x), jnp.asarray(y), lr=0.1, epochs=1)
    if kind == "fit-numpy":
        return jaxbp.fit(model, loss, params, x, y, lr=0.1, epochs=1, batch_size=16)
    if kind == "fit-batches":
        return jaxbp.fit(model, loss, params, [(x[:16], y[:16])], None, lr=0.1, epochs=1)
    return jaxbp.fit_ensemble(model, loss, _stack(params), x, y, lr=0.1, epochs=1)


KINDS = ["fit-device", "fit-numpy", "fit-batches", "fit_ensemble"]


@pytest.mark.parametrize("kind", KINDS)
def test_y_without_the_predictions_unit_axis_is_refused(kind) -> None:
    params, x, y = _problem()
    with pytest.raises(ValueError, match=r"y has shape \((64|16),\) but the predictions have shape \((64|16), 1\).*Reshape y"):  # fmt: skip
        _train(kind, params, x, y[:, 0])


def test_with_y_reshaped_fit_finds_the_true_weights() -> None:
    # the refused call's fix: least squares on noise-free data has the exact solution TRUE_W
    params, x, y = _problem()
    trained, _ = jaxbp.fit(linear, half_se_sum, params, x, y, lr=0.3, epochs=200)
    np.testing.assert_allclose(np.asarray(trained["w"]), TRUE_W, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_a_loss_that_mixes_examples_is_refused(kind) -> None:
    params, x, y = _problem()
    params["w"] = np.ones((3, 1))

    def with_batch_mean(prediction, target):  # (batch,), but uses every example's target
        return ((prediction - target.mean(0)) ** 2).sum(-1)

    with pytest.raises(ValueError, match=r"the loss of example \d alone is .* mixes examples"):
        _train(kind, params, x, y, loss=with_batch_mean)


@pytest.mark.parametrize("kind", KINDS)
def test_a_model_that_returns_one_prediction_for_the_batch_is_refused(kind) -> None:
    params, x, y = _problem()

    def batch_mean(p, x):
        return (x @ p["w"]).mean(0, keepdims=True)

    with pytest.raises(ValueError, match=r"the model returned a prediction of shape \(1, 1\)"):
        _train(kind, params, x, y, model=batch_mean)


@pytest.mark.parametrize("kind", KINDS)
def test_nan_initial_params_are_refused_naming_the_leaf(kind) -> None:
    params, x, y = _problem()
    params["w"] = np.array([[1.0], [np.nan], [0.0]])
    with pytest.raises(ValueError, match=r"(stacked_)?params\['w'\] holds NaN or infinite values"):
        _train(kind, params, x, y)


def test_nan_in_one_model_of_an_ensemble_is_refused() -> None:
    params, x, y = _problem()
    stacked = _stack(params, 3)
    stacked["w"][2, 1, 0] = np.inf
    with pytest.raises(ValueError, match=r"fit_ensemble: stacked_params\['w'\] holds NaN"):
        jaxbp.fit_ensemble(linear, half_se_sum, stacked, x, y, lr=0.1, epochs=1)


@pytest.mark.parametrize(
    "batches",
    [
        lambda x, y: ((x[i : i + 8], y[i : i + 8]) for i in range(0, N, 8)),
        lambda x, y: iter([(x, y)]),
    ],
    ids=["generator", "iterator"],
)
def test_an_iterable_of_batches_next_to_y_says_how_to_pass_batches(batches) -> None:
    params, x, y = _problem()
    with pytest.raises(TypeError, match=r"fit: x is an iterable of batches .* but y is given too; pass the batches as x with y=None"):  # fmt: skip
        jaxbp.fit(linear, half_se_sum, params, batches(x, y), y, lr=0.1, epochs=1)


def test_y_none_next_to_a_device_array_says_what_to_pass() -> None:
    params, x, _ = _problem()
    with pytest.raises(ValueError, match="fit: y is None but x is"):
        jaxbp.fit(linear, half_se_sum, params, jnp.asarray(x), None, lr=0.1, epochs=1)


def test_opt_state_without_an_optimizer_is_refused() -> None:
    params, x, y = _problem()
    state = optax.adam(0.1).init(params)
    with pytest.raises(ValueError, match="fit: opt_state is given but no optimizer"):
        jaxbp.fit(linear, half_se_sum, params, x, y, lr=0.1, epochs=1, opt_state=state)


@pytest.mark.parametrize(
    "unstacked",
    [lambda p: {"w": np.zeros((3, 1)), "b": np.zeros(1)}, lambda p: [p, p]],
    ids=["one-model", "list-of-models"],
)
def test_fit_ensemble_on_unstacked_params_says_how_to_stack(unstacked) -> None:
    params, x, y = _problem()
    with pytest.raises(ValueError, match=r"fit_ensemble: .*stack.*jnp.stack\(a\), \*params_list"):  # fmt: skip
        jaxbp.fit_ensemble(linear, half_se_sum, unstacked(params), x, y, lr=0.1, epochs=1)


VALIDATION_CASES = [
    ("x-features", lambda x, y: (x[:, :2], y), ValueError,
     r"validation x has shape \(64, 2\) but the training x has shape \(64, 3\); pass validation x of shape \(n_val, 3\)"),
    ("y-without-unit-axis", lambda x, y: (x, y[:, 0]), ValueError,
     r"validation y has shape \(64,\) but the training y has shape \(64, 1\)"),
    ("y-extra-columns", lambda x, y: (x, np.concatenate([y, y], 1)), ValueError,
     r"validation y has shape \(64, 2\)"),
    ("nan-x", lambda x, y: (np.where(x > 1.5, np.nan, x), y), ValueError,
     r"validation x holds NaN or infinite values.*np.isfinite\(x_val\)"),
    ("inf-y", lambda x, y: (x, np.where(y > 2, np.inf, y)), ValueError, "validation y holds NaN"),
    ("integer-x", lambda x, y: (np.round(x).astype(np.int64), y), TypeError,
     r"validation x has dtype int64 but the training x has dtype float64"),
    ("object-y", lambda x, y: (x, y.astype(object)), TypeError, "validation y has dtype object"),
    ("row-mismatch", lambda x, y: (x, y[:10]), ValueError, r"x has 64 examples .* but y has 10"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "error", "pattern"),
    [case[1:] for case in VALIDATION_CASES],
    ids=[case[0] for case in VALIDATION_CASES],
)
def test_validation_data_unlike_the_training_data_is_refused(make, error, pattern) -> None:
    params, x, y = _problem()
    with pytest.raises(error, match=pattern):
        jaxbp.fit(linear, half_se_sum, params, x, y, lr=0.1, epochs=1, validation=make(x, y))


def _half_se(params: dict, x: np.ndarray, y: np.ndarray) -> float:
    return 0.5 * float(((x @ params["w"] - y) ** 2).sum(-1).mean())


@pytest.mark.parametrize(
    "convert",
    [
        lambda a: a.astype(">f8"),
        np.asfortranarray,
        lambda a: np.repeat(a, 2, axis=0)[::2],
        lambda a: a.tolist(),
    ],
    ids=["big-endian", "fortran", "strided", "list"],
)
def test_numpy_layouts_train_like_a_plain_array(convert) -> None:
    # one full-batch SGD step by hand: w1 = w0 - lr * x.T (x w0 - y) / n; the loss before it
    params, x, y = _problem()
    params["w"] = np.array([[0.5], [0.25], [-1.0]])
    expected = params["w"] - 0.1 * x.T @ (x @ params["w"] - y) / N
    validation = (convert(x[:8]), convert(y[:8]))
    for data in ((convert(x), convert(y)), (jnp.asarray(x), jnp.asarray(y))):
        trained, history = jaxbp.fit(
            linear, half_se_sum, params, *data, lr=0.1, epochs=1, validation=validation
        )
        np.testing.assert_allclose(np.asarray(trained["w"]), expected, rtol=1e-10)
        np.testing.assert_allclose(float(history["loss"][0]), _half_se(params, x, y), rtol=1e-10)
        trained_params = {"w": expected}
        np.testing.assert_allclose(
            float(history["val_loss"][0]), _half_se(trained_params, x[:8], y[:8]), rtol=1e-10
        )


def test_big_endian_params_train_in_fit_and_fit_ensemble() -> None:
    params, x, y = _problem()
    params["w"] = np.array([[0.5], [0.25], [-1.0]])
    expected = params["w"] - 0.1 * x.T @ (x @ params["w"] - y) / N
    swapped = {"w": params["w"].astype(">f8")}
    trained, _ = jaxbp.fit(linear, half_se_sum, swapped, x, y, lr=0.1, epochs=1)
    np.testing.assert_allclose(np.asarray(trained["w"]), expected, rtol=1e-10)
    stacked, _ = jaxbp.fit_ensemble(linear, half_se_sum, _stack(swapped), x, y, lr=0.1, epochs=1)
    np.testing.assert_allclose(np.asarray(stacked["w"]), np.stack([expected] * 2), rtol=1e-10)


@pytest.mark.parametrize("opened", [lambda path: np.load(path, mmap_mode="r"), str], ids=["memmap", "path"])  # fmt: skip
def test_a_big_endian_file_is_refused_by_name(tmp_path, opened) -> None:
    params, x, y = _problem()
    path = tmp_path / "x.npy"
    np.save(path, x.astype(">f8"))
    with pytest.raises(TypeError, match=r"fit: x is read from a file or view of dtype '>f8'"):
        jaxbp.fit(linear, half_se_sum, params, opened(path), y, lr=0.1, epochs=1)


def test_batches_in_another_byte_order_train_like_native_ones() -> None:
    params, x, y = _problem()
    params["w"] = np.array([[0.5], [0.25], [-1.0]])
    expected = params["w"] - 0.1 * x.T @ (x @ params["w"] - y) / N
    batches = [(x.astype(">f8"), y.astype(">f8"))]
    trained, _ = jaxbp.fit(linear, half_se_sum, params, batches, None, lr=0.1, epochs=1)
    np.testing.assert_allclose(np.asarray(trained["w"]), expected, rtol=1e-10)


def test_a_ragged_batch_is_refused_naming_the_batch() -> None:
    params, _, y = _problem()
    ragged = [[1.0, 2.0, 3.0], [1.0]]
    with pytest.raises(jaxbp.BatchError, match="fit: batch 0 holds a ragged nested list"):
        jaxbp.fit(linear, half_se_sum, params, [(ragged, y[:2])], None, lr=0.1, epochs=1)


WRONG_RETURNS = [
    ("dict", lambda p, x: {"out": x @ p["w"]}, r"the model returned a dict with keys \['out'\], but the loss 'mse' takes one array"),
    ("tuple", lambda p, x: (x @ p["w"], x @ p["w"]), r"the model returned a tuple of 2, but the loss 'mse' takes one array"),
    ("none", lambda p, x: None, r"the model returned None, no array.*return statement missing"),
]  # fmt: skip


@pytest.mark.parametrize("model, message", [case[1:] for case in WRONG_RETURNS], ids=[case[0] for case in WRONG_RETURNS])  # fmt: skip
@pytest.mark.parametrize("kind", KINDS)
def test_a_named_loss_refuses_what_is_not_one_array_of_predictions(kind, model, message) -> None:
    """A named loss compares one array of predictions with y: a dict, a tuple or None from the
    model is named before compiling (it failed inside the compiled loss with a bare TypeError)."""
    params, x, y = _problem()
    with pytest.raises(TypeError, match=message):
        _train(kind, params, x, y, model=model, loss="mse")


def test_fit_ensemble_with_a_schedule_as_lr_says_to_pass_an_optimizer() -> None:
    params, x, y = _problem()
    schedule = optax.linear_schedule(0.1, 0.0, 10)
    with pytest.raises(TypeError, match=r"fit_ensemble: lr is a schedule.*optimizer=optax.sgd\(schedule\)"):  # fmt: skip
        jaxbp.fit_ensemble(linear, half_se_sum, _stack(params), x, y, lr=schedule, epochs=1)
    # what the message advises runs, and each model takes the scheduled steps of a plain loop
    stacked, _ = jaxbp.fit_ensemble(linear, half_se_sum, _stack(params), x, y, optimizer=optax.sgd(schedule), epochs=1, batch_size=32)  # fmt: skip
    w = params["w"]
    for step in range(2):
        xb, yb = x[step * 32 : (step + 1) * 32], y[step * 32 : (step + 1) * 32]
        w = w - float(schedule(step)) * xb.T @ (xb @ w - yb) / 32
    np.testing.assert_allclose(np.asarray(stacked["w"]), np.stack([w] * 2), rtol=1e-5)
