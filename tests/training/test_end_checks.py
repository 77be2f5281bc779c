"""What ``fit`` and ``fit_ensemble`` say when a run ends with a wrong-looking result.

Oracle: one weight ``w`` fitted to ``x = 1, y = 0`` with the half squared error, whose gradient is
``w`` itself, so SGD gives ``w_t = (1 - lr)^t`` exactly (powers of two for ``lr = 3``: no rounding).
With ``lr = 3`` the loss of step ``t``, ``(2^t)^2 / 2``, first overflows float32 (``2^128``) at
``t = 64``. With ``w = 2^24`` (float32's spacing there is 2) and a gradient of 100, an update of
``lr * 100 < 1`` rounds away: the params never change.
"""

from __future__ import annotations

import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbp


def model(params, x):
    return x * params["w"]


def loss(prediction, y):
    return 0.5 * jnp.sum((prediction - y) ** 2, axis=-1)


X = np.ones((1, 1), np.float32)
Y = np.zeros((1, 1), np.float32)
DIVERGED = r"the loss first became non-finite at step 64 \(epoch 64, step 0 of 1"


def _params(w):
    return {"w": jnp.asarray(w, jnp.float32)}


@pytest.mark.parametrize("streamed", [False, True], ids=["whole-run", "streamed"])
def test_a_diverged_run_warns_with_the_first_non_finite_step(streamed):
    data = (X, Y) if streamed else (jnp.asarray(X), jnp.asarray(Y))
    with pytest.warns(jaxbp.NonFiniteWarning, match=DIVERGED) as record:
        params, history = jaxbp.fit(model, loss, _params(1.0), *data, lr=3.0, epochs=200)
    message = str(record[0].message)
    assert "lr=3.0" in message and "stop_on_nonfinite=True" in message
    assert np.isnan(params["w"])  # returned as they are: w_129 = inf - 3 * inf
    assert np.isinf(history["loss"][64]) and np.isfinite(history["loss"][63])


def test_a_warning_is_a_runtime_warning_and_the_guard_keeps_fit_quiet():
    assert issubclass(jaxbp.NonFiniteWarning, jaxbp.TrainingWarning)
    assert issubclass(jaxbp.TrainingWarning, RuntimeWarning)
    # with the guard the stop is in the history, the params are the finite ones before it: the
    # loss 4^t / 2 first passes 1e6 times the first loss (1/2, so 1e6) at t = 11
    params, history = jaxbp.fit(
        model, loss, _params(1.0), X, Y, lr=3.0, epochs=200, stop_on_nonfinite=True
    )
    assert history["stop_step"] == 11 and params["w"] == -(2.0**11)  # (-2)^11


def test_an_optimizer_run_that_diverges_says_to_lower_its_rate():
    with pytest.warns(jaxbp.NonFiniteWarning, match="the optimizer's learning rate"):
        jaxbp.fit(model, loss, _params(1.0), X, Y, optimizer=optax.sgd(3.0), epochs=200)


def test_fit_ensemble_names_the_models_that_diverged():
    stacked = {"w": jnp.ones((3,), jnp.float32)}
    lrs = jnp.asarray([0.5, 3.0, 0.25], jnp.float32)
    with pytest.warns(jaxbp.NonFiniteWarning, match=r"models \[1\] of 3") as record:
        params, _ = jaxbp.fit_ensemble(model, loss, stacked, X, Y, lr=lrs, epochs=200)
    assert re.search(r"model 1: at step 64 \(epoch 64", str(record[0].message))
    assert params["w"][0] == 0.0  # 0.5^200 = 2^-200, below float32's least 2^-149
    assert np.isfinite(params["w"][2])


W_BIG = 2.0**24  # float32 spacing 2 there


@pytest.mark.parametrize("streamed", [False, True], ids=["whole-run", "streamed"])
def test_updates_below_the_params_resolution_warn_that_nothing_changed(streamed):
    y = np.full((1, 1), W_BIG - 100, np.float32)  # gradient w - y = 100
    data = (X, y) if streamed else (jnp.asarray(X), jnp.asarray(y))
    with pytest.warns(jaxbp.TrainingWarning, match=r"no parameter changed in 5 steps.*float32"):
        params, _ = jaxbp.fit(model, loss, _params(W_BIG), *data, lr=1e-3, epochs=5)
    assert params["w"] == W_BIG
    params, _ = jaxbp.fit(model, loss, _params(W_BIG), *data, lr=0.1, epochs=1)  # 10: a change
    assert params["w"] == W_BIG - 10


def test_an_optimizer_of_rate_zero_warns_that_nothing_changed():
    with pytest.warns(jaxbp.TrainingWarning, match="no parameter changed in 3 steps"):
        jaxbp.fit(model, loss, _params(1.0), X, Y, optimizer=optax.sgd(0.0), epochs=3)


def test_fit_ensemble_names_the_models_that_did_not_change():
    stacked = {"w": jnp.full((2,), W_BIG, jnp.float32)}
    y = np.full((1, 1), W_BIG - 100, np.float32)
    lrs = jnp.asarray([1e-3, 0.1], jnp.float32)
    with pytest.warns(jaxbp.TrainingWarning, match=r"models \[0\] changed no parameter in 2"):
        params, _ = jaxbp.fit_ensemble(model, loss, stacked, X, y, lr=lrs, epochs=2)
    # model 1: steps of 0.1 * 100 and 0.1 * 90, below 2^24 the spacing is 1: exact
    assert params["w"][0] == W_BIG and params["w"][1] == W_BIG - 19


def test_an_update_that_overflows_on_the_last_step_warns_even_with_the_guard():
    # loss = prediction = w (finite, -3e38), gradient 1: w - lr = -4e38 overflows to -inf, after
    # the guard has looked at that step's finite loss and gradient.
    def linear(prediction, y):
        return jnp.sum(prediction - y, axis=-1)

    with pytest.warns(jaxbp.NonFiniteWarning, match=r"the last update made the params non-finite \(every loss was finite\).*cannot stop an update"):  # fmt: skip
        params, history = jaxbp.fit(
            model, linear, _params(-3e38), X, Y, lr=1e38, epochs=1, stop_on_nonfinite=True
        )
    assert params["w"] == -np.inf and history["stop_step"] == -1


def _ten_rows() -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(10, dtype=np.float32)[:, None] / 10
    return x, 0.5 * x


@pytest.mark.parametrize("ensemble", [False, True], ids=["fit", "fit_ensemble"])
def test_rows_never_trained_on_without_a_key_are_warned_before_training(ensemble) -> None:
    # 10 rows in their own order, batches of 4: rows 8 and 9 are in no batch of any epoch
    x, y = _ten_rows()
    where = "fit_ensemble" if ensemble else "fit"
    pattern = (
        rf"{where}: without a key the data keeps its order, so batch_size 4 leaves the last 2 of "
        rf"the 10 examples out of every epoch: they are never trained on"
    )
    with pytest.warns(jaxbp.TrainingWarning, match=pattern) as record:
        if ensemble:
            jaxbp.fit_ensemble(model, loss, {"w": np.ones((2, 1), np.float32)}, x, y, lr=0.1, epochs=1, batch_size=4)  # fmt: skip
        else:
            jaxbp.fit(model, loss, {"w": np.ones(1, np.float32)}, x, y, lr=0.1, epochs=1, batch_size=4)  # fmt: skip
    assert len(record) == 1 and record[0].filename == __file__  # points at the caller's line


@pytest.mark.parametrize(
    "options",
    [{"batch_size": 5}, {"batch_size": 4, "key": jax.random.key(0)}, {"batch_size": None}],
    ids=["batch-divides-n", "shuffled", "full-batch"],
)
def test_every_row_in_some_epoch_gives_no_warning(options) -> None:
    x, y = _ten_rows()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the suite's settings let this one warning pass
        jaxbp.fit(model, loss, {"w": np.ones(1, np.float32)}, x, y, lr=0.1, epochs=1, **options)
