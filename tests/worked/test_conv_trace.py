"""``explain_sequential``: every number of the conv worked example against the loop oracle of
``tests/conv_oracle.py`` (NumPy loops over positions and kernel taps, no im2col) and ``jax.grad``."""

from __future__ import annotations

import numpy as np
import pytest

import jaxbp
from jaxbp.layers import AvgPool1D, Conv1D, Dense, Flatten, MaxPool1D
from jaxbp.worked import conv_file
from jaxbp.worked.conv_trace import SequentialTrace, explain_sequential
from tests.conv_oracle import jax_grads, oracle, table_rows_match, worked_lines_match

RTOL, ATOL = 1e-12, 1e-14


def _random(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return np.round(rng.uniform(-1.0, 1.0, shape), 3)


def _builtin() -> tuple:
    data = conv_file.CONV1D
    layers = [("conv", 3, 1, (0, 0), "relu"), ("flatten",), ("dense", "linear")]
    spec = conv_file.parse(data, "conv1d").spec
    params = [{k: np.asarray(v, float) for k, v in p.items()} for p in data["params"]]
    x, y = np.asarray(data["x"], float), np.asarray(data["y"], float)
    return spec, layers, params, x, y, "half_se", data["lr"]


def _strided_two_channels() -> tuple:
    """Stride 2, SAME padding (1 low, 1 high here), 2 input channels, max pooling, a softmax
    output with cross-entropy, a batch of 2."""
    rng = np.random.default_rng(1)
    spec = jaxbp.Sequential(
        (
            Conv1D(3, kernel_size=3, stride=2, padding="SAME", activation="tanh"),
            MaxPool1D(2),
            Flatten(),
            Dense(2, activation="softmax"),
        ),
        input_shape=(8, 2),
    )
    params = [
        {"w": _random(rng, 3, 2, 3), "b": _random(rng, 3)},
        {},
        {},
        {"w": _random(rng, 6, 2), "b": _random(rng, 2)},
    ]
    layers = [("conv", 3, 2, (0, 1), "tanh"), ("maxpool", 2, 2), ("flatten",), ("dense", "softmax")]
    x, y = _random(rng, 2, 8, 2), np.array([[1.0, 0.0], [0.0, 1.0]])
    return spec, layers, params, x, y, "cross_entropy", 0.3


def _padded_avgpool() -> tuple:
    """Explicit padding (1, 2), no conv bias, two conv layers, average pooling, sigmoid output
    with binary cross-entropy, a batch of 3."""
    rng = np.random.default_rng(2)
    spec = jaxbp.Sequential(
        (
            Conv1D(2, kernel_size=2, padding=(1, 2), activation="relu", bias=False),
            Conv1D(2, kernel_size=3, stride=2, activation="sigmoid"),
            AvgPool1D(2, stride=1),
            Flatten(),
            Dense(1, activation="sigmoid"),
        ),
        input_shape=(5, 1),
    )
    params = [
        {"w": _random(rng, 2, 1, 2)},
        {"w": _random(rng, 3, 2, 2), "b": _random(rng, 2)},
        {},
        {},
        {"w": _random(rng, 4, 1), "b": _random(rng, 1)},
    ]
    layers = [
        ("conv", 2, 1, (1, 2), "relu"),
        ("conv", 3, 2, (0, 0), "sigmoid"),
        ("avgpool", 2, 1),
        ("flatten",),
        ("dense", "sigmoid"),
    ]
    x, y = _random(rng, 3, 5, 1), np.array([[1.0], [0.0], [1.0]])
    return spec, layers, params, x, y, "binary_cross_entropy", 0.5


CASES = {"builtin": _builtin, "strided": _strided_two_channels, "padded": _padded_avgpool}


@pytest.fixture(scope="module", params=list(CASES))
def case(request) -> tuple:
    spec, layers, params, x, y, loss, lr = CASES[request.param]()
    trace = explain_sequential(spec, loss, params, x, y, lr, steps=2)
    return trace, layers, params, x, y, loss, lr


def test_every_number_matches_the_loop_oracle(case) -> None:
    trace, layers, params, x, y, loss, lr = case
    expected = oracle(layers, params, x, y, loss, lr)
    names = trace.names()
    assert set(names) == set(expected)  # every number in the trace has an oracle value
    for name, value in names.items():
        np.testing.assert_allclose(value, expected[name], rtol=RTOL, atol=ATOL, err_msg=name)


def test_gradients_match_jax_grad_of_an_independent_forward_pass(case) -> None:
    trace, layers, params, x, y, loss, _ = case
    grads, dx = jax_grads(layers, params, x, y, loss)
    names = trace.names()
    for n, layer_grads in enumerate(grads, start=1):
        for key, g in layer_grads.items():
            name = f"d{key.upper() if key == 'w' else key}{n}"
            np.testing.assert_allclose(names[name], g, rtol=RTOL, atol=ATOL, err_msg=name)
    np.testing.assert_allclose(names["dL_da0"], dx, rtol=RTOL, atol=ATOL)
    assert trace.verified
    assert all(check.max_abs_diff <= 1e-12 * max(1.0, abs(trace.loss)) for check in trace.checks)


def test_patches_are_the_strided_windows(case) -> None:
    trace, layers, *_ = case
    names = trace.names()
    for n, layer in enumerate(layers, start=1):
        if layer[0] != "conv":
            continue
        _, k, s, _, _ = layer
        source = names.get(f"a{n - 1}_pad", names[f"a{n - 1}"])
        windows = np.lib.stride_tricks.sliding_window_view(source, k, axis=1)[:, ::s]
        rows = windows.transpose(0, 1, 3, 2).reshape(-1, k * source.shape[2])  # tap, then channel
        np.testing.assert_array_equal(names[f"patches{n}"], rows)
        np.testing.assert_array_equal(
            names[f"K{n}"], names[f"W{n}"].reshape(k * source.shape[2], -1)
        )


def test_update_is_p_minus_lr_times_grad_and_the_loss_after_follows(case) -> None:
    trace, layers, params, x, y, loss, lr = case
    names = trace.names()
    for n, p in enumerate(params, start=1):
        for key in p:
            name = f"{key.upper() if key == 'w' else key}{n}"
            np.testing.assert_array_equal(names[f"{name}_new"], p[key] - lr * names[f"d{name}"])
    new_params = [{k: names[f"{k.upper() if k == 'w' else k}{n}_new"] for k in p}
                  for n, p in enumerate(params, start=1)]  # fmt: skip
    second = oracle(layers, new_params, x, y, loss, lr)
    assert trace.history[0] == pytest.approx(trace.loss, rel=RTOL)
    assert trace.history[1] == pytest.approx(trace.loss_after, rel=RTOL)
    assert trace.loss_after == pytest.approx(second["loss"], rel=RTOL)
    assert trace.history[2] == pytest.approx(second["loss_new"], rel=RTOL)


def test_builtin_step_lowers_the_loss() -> None:
    spec, _, params, x, y, loss, lr = _builtin()
    trace = explain_sequential(spec, loss, params, x, y, lr)
    assert trace.loss == pytest.approx(0.245, rel=RTOL)  # 0.5 * (0.3 - 1)^2, by hand
    assert trace.loss_after < trace.loss


def test_json_holds_the_numbers() -> None:
    spec, _, params, x, y, loss, lr = _builtin()
    trace = explain_sequential(spec, loss, params, x, y, lr)
    assert isinstance(trace, SequentialTrace)
    data = trace.to_dict()
    assert data["layers"][0]["quantities"]["patches1"][0] == [1.0, 2.0, -1.0]
    assert data["loss"] == trace.loss
    same = SequentialTrace.from_json(trace.to_json())
    assert same.to_dict() == data
    assert same.to_markdown("t") == trace.to_markdown("t")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"spec": jaxbp.MLP(sizes=(2, 1), activations=("linear",))}, "Sequential"),
        ({"loss": "hinge"}, "unknown loss"),
        ({"lr": -1.0}, "lr|learning"),
        ({"x": np.zeros((1, 5, 1))}, "x has shape"),
        ({"y": np.zeros((1, 2))}, "y has shape"),
        ({"steps": 0}, "steps"),
        ({"steps": 100_001}, r"explain_sequential: steps must be at most 100,000, got 100,001"),
    ],
    ids=["mlp", "loss", "lr", "x", "y", "steps", "too-many-steps"],
)
def test_bad_input_is_refused_by_name(change, match) -> None:
    spec, _, params, x, y, loss, lr = _builtin()
    arguments = {"spec": spec, "loss": loss, "params": params, "x": x, "y": y, "lr": lr}
    change = dict(change)
    steps = change.pop("steps", 1)
    arguments |= change
    with pytest.raises((ValueError, TypeError), match=match):
        explain_sequential(**arguments, steps=steps)


def test_an_on_step_that_is_not_a_function_is_refused_before_any_step() -> None:
    spec, _, params, x, y, loss, lr = _builtin()
    with pytest.raises(TypeError, match=r"explain_sequential: on_step must be a function"):
        explain_sequential(spec, loss, params, x, y, lr, on_step="progress")


def test_unsupported_layers_are_refused() -> None:
    from jaxbp.layers import Conv2D

    spec = jaxbp.Sequential((Conv2D(1, 2), Flatten(), Dense(1)), input_shape=(3, 3, 1))
    with pytest.raises(ValueError, match="layer 0 is Conv2D"):
        explain_sequential(spec, "half_se", spec.init(jaxbp_key()), np.zeros((3, 3, 1)), [0.0], 0.1)
    conv_only = jaxbp.Sequential((Conv1D(1, 2),), input_shape=(3, 1))
    with pytest.raises(ValueError, match="end it with Flatten"):
        explain_sequential(
            conv_only, "half_se", conv_only.init(jaxbp_key()), np.zeros((3, 1)), [0.0], 0.1
        )


def jaxbp_key():
    import jax

    return jax.random.key(0)


def test_markdown_of_every_case_shows_the_oracle_s_numbers(case) -> None:
    trace, layers, params, x, y, loss, lr = case
    expected = oracle(layers, params, x, y, loss, lr)
    text = trace.to_markdown("case", digits=6)
    shown = table_rows_match(text, expected, digits=6)
    conv = {n for n, layer in enumerate(layers, start=1) if layer[0] == "conv"}
    dense = {n for n, layer in enumerate(layers, start=1) if layer[0] == "dense"}
    shown_per_conv = {f"{name}{n}" for n in conv for name in ("patches", "K", "dK", "dpatches")}
    assert {"loss", "loss_new", "dL_da0"} | {f"W{n}" for n in dense} | shown_per_conv <= shown
    assert "## Loss over 2 SGD steps" in text and ": verified." in text
    assert worked_lines_match(text, expected, digits=6) == len(conv) * 2 + len(dense)
