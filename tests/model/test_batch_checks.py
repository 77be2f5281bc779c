"""A batch that breaks the contract beyond one argument's shape, refused by the one-step entry
points (``loss_and_grad``, ``train_step``, ``optax_step``): predictions that broadcast against
``y``, a model that drops the batch size, a loss that mixes examples, NaN in params or data, and
what NumPy or Python hand over (lists, ragged lists, non-native byte order, Fortran order)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbp

N = 8
TRUE_W = np.array([[1.0], [-2.0], [0.5]])


def linear(params: dict, x: jax.Array) -> jax.Array:
    return x @ params["w"] + params["b"]


def half_se_sum(prediction: jax.Array, target: jax.Array) -> jax.Array:
    """A user's per-example loss that broadcasts when prediction and target ranks differ."""
    return 0.5 * ((prediction - target) ** 2).sum(-1)


def _problem() -> tuple[dict, np.ndarray, np.ndarray]:
    x = np.linspace(-1.0, 1.0, N * 3).reshape(3, N).T.copy()  # rows differ, no row repeats
    return {"w": np.zeros((3, 1)), "b": np.zeros(1)}, x, x @ TRUE_W


STEPS = {
    "loss_and_grad": lambda model, loss, p, x, y: jaxbp.loss_and_grad(model, loss, p, x, y),
    "train_step": lambda model, loss, p, x, y: jaxbp.train_step(model, loss, p, x, y, 0.1),
    "optax_step": lambda model, loss, p, x, y: jaxbp.optax_step(
        model, loss, optax.sgd(0.1), p, optax.sgd(0.1).init(p), x, y
    ),
}
step_ids = list(STEPS)
steps = list(STEPS.values())


@pytest.mark.parametrize("step", steps, ids=step_ids)
def test_y_without_the_predictions_unit_axis_is_refused_with_both_shapes(step) -> None:
    params, x, y = _problem()
    pattern = (
        rf"y has shape \({N},\) but the predictions have shape \({N}, 1\); they broadcast to "
        rf"\({N}, {N}\).*Reshape y to \({N}, 1\) \(y\[:, None\]\)"
    )
    with pytest.raises(ValueError, match=pattern):
        step(linear, half_se_sum, params, x, y[:, 0])


@pytest.mark.parametrize("step", steps, ids=step_ids)
def test_a_named_loss_needs_y_of_the_predictions_shape(step) -> None:
    params, x, y = _problem()
    with pytest.raises(ValueError, match=r"'half_se' compares them element by element, so pass y of shape \(8, 1\)"):  # fmt: skip
        step(linear, "half_se", params, x, y[:, 0])


@pytest.mark.parametrize(
    "model",
    [
        lambda p, x: (x @ p["w"]).mean(0, keepdims=True),
        lambda p, x: jnp.zeros((2, 1)) + p["b"],
    ],
    ids=["batch-mean", "fixed-size"],
)
@pytest.mark.parametrize("step", steps, ids=step_ids)
def test_a_model_that_changes_the_batch_size_is_refused(step, model) -> None:
    params, x, y = _problem()
    with pytest.raises(ValueError, match=r"the model returned a prediction of shape \((1|2), 1\) for x with 8 examples"):  # fmt: skip
        step(model, half_se_sum, params, x, y)


@pytest.mark.parametrize("step", steps, ids=step_ids)
def test_a_loss_that_mixes_examples_with_the_right_shape_is_refused(step) -> None:
    params, x, y = _problem()

    def centred(prediction, target):  # (batch,), but every example's loss uses the batch mean
        return ((prediction - target + target.mean(0)) ** 2).sum(-1)

    # example 0 alone: its own target is its mean, so its loss is its prediction squared, 0;
    # in a batch of 3 the mean of the first three targets is not 0
    assert abs(float(y[:3].mean())) > 0.1
    with pytest.raises(ValueError, match=r"the loss of example \d alone is .* but in a batch of 3 it is .*mixes examples"):  # fmt: skip
        step(linear, centred, params, x, y)


def test_integer_labels_against_as_many_classes_as_examples_are_not_mistaken_for_broadcasting() -> (
    None
):
    # logits (8, 8) and labels (8,) broadcast on shapes, but integer y holds labels
    x = np.eye(N)
    labels = np.arange(N) % 3
    params = {"w": np.zeros((N, N)), "b": np.zeros(N)}
    loss, grads = jaxbp.loss_and_grad(
        linear, optax.softmax_cross_entropy_with_integer_labels, params, x, labels
    )
    np.testing.assert_allclose(float(loss), np.log(N), rtol=1e-12)  # uniform over 8 classes
    assert grads["w"].shape == (N, N)


@pytest.mark.parametrize("where", ["x", "y"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("step", steps, ids=step_ids)
def test_nan_or_inf_in_the_data_of_a_step_is_refused(step, bad, where) -> None:
    params, x, y = _problem()
    data = {"x": x.copy(), "y": y.copy()}
    data[where][2, 0] = bad
    with pytest.raises(ValueError, match=f"{where} holds NaN or infinite values"):
        step(linear, half_se_sum, params, data["x"], data["y"])


@pytest.mark.parametrize("step", steps, ids=step_ids)
def test_nan_params_are_refused_naming_the_leaf(step) -> None:
    params, x, y = _problem()
    params["b"] = np.array([np.nan])
    with pytest.raises(ValueError, match=r"params\['b'\] holds NaN or infinite values"):
        step(linear, half_se_sum, params, x, y)


def test_inside_a_callers_jit_only_shapes_are_checked() -> None:
    params, x, y = _problem()
    params["b"] = np.array([np.nan])  # unknown while tracing: not refused, the step gives NaN
    new, loss = jax.jit(lambda p, x, y: jaxbp.train_step(linear, half_se_sum, p, x, y, 0.1))(
        params, x, y
    )
    assert np.isnan(float(loss)) and np.isnan(np.asarray(new["b"])).all()
    with pytest.raises(ValueError, match="they broadcast to"):  # shapes are known while tracing
        jax.jit(lambda p, x, y: jaxbp.train_step(linear, half_se_sum, p, x, y, 0.1))(
            params, x, y[:, 0]
        )


def _expected_step(params: dict, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Loss and gradient of the batch-mean half squared error of x @ w + b, by hand."""
    residual = x @ params["w"] + params["b"] - y  # (N, 1)
    return 0.5 * float((residual**2).sum(-1).mean()), x.T @ residual / len(x)


@pytest.mark.parametrize(
    "convert",
    [
        lambda a: a.tolist(),
        lambda a: a.astype(">f8"),
        lambda a: np.asfortranarray(a),
        lambda a: np.repeat(a, 2, axis=0)[::2],  # a strided view
    ],
    ids=["list", "big-endian", "fortran", "strided"],
)
def test_lists_and_numpy_layouts_give_the_same_step(convert) -> None:
    params, x, y = _problem()
    params["w"] = np.array([[0.5], [0.25], [-1.0]])
    expected_loss, expected_grad = _expected_step(params, x, y)
    loss, grads = jaxbp.loss_and_grad(linear, half_se_sum, params, convert(x), convert(y))
    np.testing.assert_allclose(float(loss), expected_loss, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(grads["w"]), expected_grad, rtol=1e-12)
    new, _ = jaxbp.train_step(linear, half_se_sum, params, convert(x), convert(y), 0.1)
    np.testing.assert_allclose(np.asarray(new["w"]), params["w"] - 0.1 * expected_grad, rtol=1e-12)


def test_big_endian_params_are_converted() -> None:
    params, x, y = _problem()
    params["w"] = np.array([[0.5], [0.25], [-1.0]])
    expected_loss, expected_grad = _expected_step(params, x, y)
    swapped = {name: leaf.astype(">f8") for name, leaf in params.items()}
    loss, grads = jaxbp.loss_and_grad(linear, half_se_sum, swapped, x, y)
    np.testing.assert_allclose(float(loss), expected_loss, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(grads["w"]), expected_grad, rtol=1e-12)


@pytest.mark.parametrize("name", ["x", "y"])
@pytest.mark.parametrize("step", steps, ids=step_ids)
def test_a_ragged_list_is_refused_naming_the_argument(step, name) -> None:
    params, x, y = _problem()
    data: dict[str, Any] = {"x": x.tolist(), "y": y.tolist()}
    data[name][1] = [*data[name][1], 0.0]  # one row longer than the others
    with pytest.raises(ValueError, match=f"{name} is a ragged nested sequence"):
        step(linear, half_se_sum, params, data["x"], data["y"])


def test_a_nested_list_as_a_parameter_is_refused_naming_its_path() -> None:
    _, x, y = _problem()
    params = {"w": [[0.0], [0.0], [0.0]], "b": np.zeros(1)}
    with pytest.raises(TypeError, match=r"params\['w'\]\[0\]\[0\] is a Python float in a list"):
        jaxbp.train_step(linear, half_se_sum, params, x, y, 0.1)


@pytest.mark.parametrize(
    "run",
    [
        lambda p, x, y: jaxbp.loss_and_grad(linear, half_se_sum, p, x, y),
        lambda p, x, y: jaxbp.train_step(linear, half_se_sum, p, x, y, 0.1),
        lambda p, x, y: jaxbp.fit(linear, half_se_sum, p, x, y, lr=0.1, epochs=1, batch_size=N),
    ],
    ids=["loss_and_grad", "train_step", "fit"],
)
def test_a_dict_whose_keys_cannot_be_sorted_is_refused_naming_its_path(run) -> None:
    params, x, y = _problem()
    nested = {"layer": {"w": params["w"], 1: params["b"]}}  # JAX sorts keys: 'w' < 1 fails
    with pytest.raises(TypeError, match=r"params\['layer'\] is a dict with keys of different"):
        run(nested, x, y)


@pytest.mark.parametrize(
    ("convert", "error", "pattern"),
    [
        (lambda a: a.astype(object), TypeError, "x has dtype object"),
        (lambda a: a.astype(np.complex128), TypeError, "x has dtype complex128"),
        (lambda a: iter(a), TypeError, "x is an iterator"),
    ],
    ids=["object", "complex", "iterator"],
)
def test_data_that_is_no_real_array_is_refused_by_name(convert, error, pattern) -> None:
    params, x, y = _problem()
    with pytest.raises(error, match=pattern):
        jaxbp.train_step(linear, half_se_sum, params, convert(x), y, 0.1)


def test_integer_and_bool_x_are_promoted_like_floats() -> None:
    params, x, y = _problem()
    params["w"] = np.array([[0.5], [0.25], [-1.0]])
    for data in (np.round(x * 4).astype(np.int32), x > 0):
        expected_loss, _ = _expected_step(params, data.astype(np.float64), y)
        loss, _ = jaxbp.loss_and_grad(linear, half_se_sum, params, data, y)
        np.testing.assert_allclose(float(loss), expected_loss, rtol=1e-12)


def test_model_and_loss_errors_name_the_shapes_they_were_called_with() -> None:
    params, x, y = _problem()
    with pytest.raises(TypeError, match=r"train_step: the model failed on params of shapes .* and x of shape \(8, 2\)"):  # fmt: skip
        jaxbp.train_step(linear, half_se_sum, params, x[:, :2], y, 0.1)
    with pytest.raises(TypeError, match=r"train_step: the loss failed on predictions"):
        jaxbp.train_step(lambda p, x: {"out": linear(p, x)}, half_se_sum, params, x, y, 0.1)


def test_integer_predictions_are_refused_as_untrainable() -> None:
    params, x, y = _problem()

    def rounded(p, x):
        return jnp.round(linear(p, x)).astype(jnp.int32)

    with pytest.raises(TypeError, match="the model returned predictions of dtype int32"):
        jaxbp.train_step(rounded, lambda a, t: ((a - t) ** 2).sum(-1), params, x, y, 0.1)


@pytest.mark.parametrize("value", [None, "y.npy"], ids=["none", "a-path"])
def test_y_that_is_not_an_array_is_refused_by_name(value) -> None:
    params, x, _ = _problem()
    with pytest.raises(TypeError, match=r"train_step: y is (None|'y.npy'); pass an array"):
        jaxbp.train_step(linear, half_se_sum, params, x, value, 0.1)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16], ids=["float16", "bfloat16"])
def test_low_precision_rounding_is_not_taken_for_a_loss_that_mixes_examples(dtype) -> None:
    # a per-example loss: whatever rounding a batch adds, the step must not be refused
    _, x, y = _problem()
    hidden = np.linspace(-1.0, 1.0, 3 * 16).reshape(3, 16)
    params = {"w": jnp.asarray(hidden, dtype), "v": jnp.ones((16, 1), dtype) / 7}

    def mlp(p, x):
        return jnp.tanh(x @ p["w"]) @ p["v"]

    loss, _ = jaxbp.loss_and_grad(mlp, half_se_sum, params, x.astype(dtype), y.astype(dtype))
    assert jnp.isfinite(loss)


def test_a_prediction_with_an_auxiliary_scalar_trains() -> None:
    # model returns (prediction, penalty); the loss adds the penalty to every example's loss
    params, x, y = _problem()
    params["w"] = np.array([[0.5], [0.25], [-1.0]])

    def with_penalty(p, x):
        return linear(p, x), 0.5 * jnp.sum(p["w"] ** 2)

    def loss(prediction, target):
        value, penalty = prediction
        return half_se_sum(value, target) + penalty

    expected_loss, expected_grad = _expected_step(params, x, y)
    value, grads = jaxbp.loss_and_grad(with_penalty, loss, params, x, y)
    np.testing.assert_allclose(float(value), expected_loss + 0.5 * 1.3125, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(grads["w"]), expected_grad + params["w"], rtol=1e-12)
    with pytest.raises(ValueError, match=r"shapes \[\(1, 1\), \(\)\] for x with 8 examples, none"):
        jaxbp.loss_and_grad(
            lambda p, x: (linear(p, x).mean(0, keepdims=True), 0.0), loss, params, x, y
        )


def test_check_values_false_checks_shapes_only_and_steps_on_the_values_as_given() -> None:
    params, x, y = _problem()
    params["b"] = np.array([np.nan])  # not refused: the caller said its values were checked
    new, loss = jaxbp.train_step(linear, half_se_sum, params, x, y, 0.1, check_values=False)
    assert np.isnan(float(loss)) and np.isnan(np.asarray(new["b"])).all()
    with pytest.raises(ValueError, match="they broadcast to"):  # shapes are still checked
        jaxbp.train_step(linear, half_se_sum, params, x, y[:, 0], 0.1, check_values=False)
    with pytest.raises(TypeError, match="check_values must be True or False"):
        jaxbp.loss_and_grad(linear, half_se_sum, params, x, y, check_values="no")


def _classes() -> tuple[np.ndarray, np.ndarray]:
    x = np.linspace(-1.0, 1.0, N * 3).reshape(N, 3)
    return x, np.eye(3)[np.arange(N) % 3]


PAIRING_MODELS = {
    "mlp": lambda last: jaxbp.MLP(sizes=(3, 4, 3), activations=("tanh", last)),
    "sequential-dense": lambda last: jaxbp.Sequential(
        (jaxbp.layers.Dense(4, "tanh"), jaxbp.layers.Dense(3, last)), input_shape=(3,)
    ),
    "sequential-activation-flatten": lambda last: jaxbp.Sequential(
        (jaxbp.layers.Dense(3), jaxbp.layers.Activation(last), jaxbp.layers.Flatten()),
        input_shape=(3,),
    ),
}
PAIRING_RUNS = {
    "loss_and_grad": lambda m, loss, p, x, y: jaxbp.loss_and_grad(m, loss, p, x, y),
    "train_step": lambda m, loss, p, x, y: jaxbp.train_step(m, loss, p, x, y, 0.1),
    "fit": lambda m, loss, p, x, y: jaxbp.fit(m, loss, p, x, y, lr=0.1, epochs=1, batch_size=N),
}


@pytest.mark.parametrize("run", list(PAIRING_RUNS.values()), ids=list(PAIRING_RUNS))
@pytest.mark.parametrize("make", list(PAIRING_MODELS.values()), ids=list(PAIRING_MODELS))
@pytest.mark.parametrize(
    ("last", "loss", "pattern"),
    [
        ("softmax", "softmax_cross_entropy", r"ends in a softmax.*applied twice"),
        ("linear", "cross_entropy", r"'cross_entropy' takes probabilities.*activation is 'linear'"),
        ("relu", "binary_cross_entropy", r"'binary_cross_entropy' takes .*activation is 'relu'"),
    ],
    ids=["double-softmax", "linear-ce", "relu-bce"],
)
def test_an_output_activation_the_named_loss_cannot_take_is_refused(
    make, run, last, loss, pattern
) -> None:
    model = make(last)
    x, y = _classes()
    params = model.init(jax.random.key(0), jnp.float64)
    with pytest.raises(ValueError, match=pattern):
        run(model, loss, params, x, y)


@pytest.mark.parametrize("make", list(PAIRING_MODELS.values()), ids=list(PAIRING_MODELS))
@pytest.mark.parametrize(
    ("last", "loss"),
    [
        ("softmax", "cross_entropy"),
        ("linear", "softmax_cross_entropy"),
        ("sigmoid", "binary_cross_entropy"),
    ],
)
def test_an_output_activation_that_suits_the_loss_trains_to_a_finite_loss(make, last, loss) -> None:
    model = make(last)
    x, y = _classes()
    params = model.init(jax.random.key(0), jnp.float64)
    new_params, new_loss = jaxbp.train_step(model, loss, params, x, y, 0.1)
    assert np.isfinite(float(new_loss))
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(new_params))
