"""The MNIST-1D presets and the JSON model description: layouts, round trips, errors."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbp
from jaxbp.layers import (
    Activation,
    AvgPool2D,
    Conv1D,
    Conv2D,
    Dense,
    Flatten,
    MaxPool1D,
    Reshape,
    Residual,
    Sequential,
    model_file,
    presets,
)


def _count(params) -> int:
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(params))


@pytest.mark.parametrize(
    ("name", "count"),
    # parameter counts of the paper's PyTorch models (notebooks/models.py):
    # LinearBase 40*10+10; MLPBase 40*100+100 + 100*100+100 + 100*10+10;
    # ConvBase 1*25*5+25 + 2 * (25*25*3+25) + 125*10+10.
    [("logistic", 410), ("mlp", 15210), ("cnn", 5210)],
)
def test_presets_have_the_papers_parameter_counts(name: str, count: int) -> None:
    net = presets.PRESETS[name].network
    assert net.input_shape == (40,) and net.output_shape == (10,)
    assert _count(jax.eval_shape(net.init, jax.random.key(0))) == count


def test_the_cnn_preset_has_the_papers_lengths() -> None:
    # lengths (40 + 2 - 5) // 2 + 1 = 19, (19 + 2 - 3) // 2 + 1 = 10, (10 + 2 - 3) // 2 + 1 = 5
    shapes = presets.PRESETS["cnn"].network.shapes
    assert shapes == ((40,), (40, 1), (19, 25), (10, 25), (5, 25), (125,), (10,))


NETWORKS = [
    *(preset.network for preset in presets.PRESETS.values()),
    Sequential(
        layers=(
            Conv2D(3, (3, 2), stride=(2, 1), padding=((1, 0), (2, 1)), activation="tanh"),
            AvgPool2D((2, 1), stride=1),
            Residual((Conv2D(3, 3, padding="SAME", activation="relu"), Activation("sigmoid"))),
            Flatten(),
            Dense(4, activation="softmax", bias=False, init_scheme="lecun"),
        ),
        input_shape=(9, 7, 2),
        conv_impl="lax",
    ),
    Sequential(
        layers=(Reshape((12, 1)), Conv1D(2, 3, padding=(2, 0)), MaxPool1D(3, stride=2), Flatten()),
        input_shape=(12,),
    ),
]


@pytest.mark.parametrize("net", NETWORKS, ids=[*presets.PRESETS, "conv2d-residual", "conv1d-pool"])
def test_model_files_round_trip(net: Sequential, tmp_path) -> None:
    path = tmp_path / "model.json"
    model_file.save(path, net)
    loaded = model_file.load(path)
    assert loaded == net and hash(loaded) == hash(net)
    assert presets.network(path) == net
    json.loads(path.read_text())  # plain JSON


def test_a_hand_written_model_file_uses_defaults(tmp_path) -> None:
    path = tmp_path / "cnn.json"
    path.write_text(
        json.dumps(
            {
                "input_shape": [40],
                "layers": [
                    {"type": "Reshape", "shape": [40, 1]},
                    {"type": "Conv1D", "features": 25, "kernel_size": 5, "stride": 2,
                     "padding": 1, "activation": "relu"},
                    {"type": "Conv1D", "features": 25, "kernel_size": 3, "stride": 2,
                     "padding": 1, "activation": "relu"},
                    {"type": "Conv1D", "features": 25, "kernel_size": 3, "stride": 2,
                     "padding": 1, "activation": "relu"},
                    {"type": "Flatten"},
                    {"type": "Dense", "features": 10},
                ],
            }
        )
    )  # fmt: skip
    assert model_file.load(path) == presets.PRESETS["cnn"].network


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ([], "expected a JSON object"),
        ({"layers": []}, "input_shape, layers"),
        ({"input_shape": [4], "layers": [], "lr": 1}, r"got \['input_shape', 'layers', 'lr'\]"),
        ({"input_shape": [4], "layers": [{"type": "Dense2"}]}, r"layers\[0\].*'Dense2'"),
        (
            {"input_shape": [4], "layers": [{"type": "Dense", "units": 3}]},
            r"layers\[0\]: Dense has no argument 'units'",
        ),
        ({"input_shape": [4], "layers": [{"type": "Dense"}]}, r"layers\[0\].*features"),
        (
            {
                "input_shape": [4, 1],
                "layers": [{"type": "Conv1D", "features": 2, "kernel_size": 5}],
            },
            r"layer 0 \(Conv1D\)",
        ),
        (
            {
                "input_shape": [4],
                "layers": [{"type": "Residual", "layers": [{"type": "Dense", "features": 3}]}],
            },
            r"Residual block maps examples of shape \(4,\) to \(3,\)",
        ),
        (
            {
                "input_shape": [4],
                "layers": [{"type": "Residual", "layers": [{"type": "Pool"}]}],
            },
            r"layers\[0\]\.layers\[0\]",
        ),
    ],
    ids=[
        "not-object",
        "missing",
        "unknown-key",
        "unknown-type",
        "unknown-argument",
        "missing-argument",
        "kernel-too-long",
        "residual-shape",
        "nested-type",
    ],
)
def test_bad_model_descriptions_raise_naming_the_layer(data, match) -> None:
    with pytest.raises(model_file.ModelFileError, match=match):
        model_file.from_dict(data)


def test_model_file_read_errors(tmp_path) -> None:
    with pytest.raises(model_file.ModelFileError, match="cannot read model file"):
        model_file.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(model_file.ModelFileError, match="not valid JSON"):
        model_file.load(bad)
    with pytest.raises(ValueError, match="neither a preset"):
        presets.network("resnet")


@pytest.mark.parametrize("bad", [None, 3, ["mlp"]])
def test_network_refuses_a_name_that_is_not_text_or_a_path(bad) -> None:
    # was Path(None)'s "expected str, bytes or os.PathLike object, not NoneType"
    with pytest.raises(TypeError, match=r"presets.network: name_or_path must be a preset name \("):
        presets.network(bad)


def test_network_refuses_an_empty_name() -> None:
    # Path("") is ".", so the error was ModelFileError ". is not a regular file"
    with pytest.raises(ValueError, match=r"presets.network: the name is empty; pass a preset"):
        presets.network("")


def test_docstring_examples_run() -> None:
    import doctest

    result = doctest.testmod(model_file, verbose=False)
    assert result.attempted > 0 and result.failed == 0
    assert jaxbp.layers.presets is presets


# --- training on MNIST-1D -------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mnist1d():
    return jaxbp.datasets.mnist1d()


@pytest.mark.slow
def test_fit_trains_the_cnn_preset_like_a_plain_optax_loop(mnist1d) -> None:
    # One epoch of the paper's recipe (40 Adam steps, batches of 100 in data order) with fit,
    # against the same steps written as a plain loop of jax.grad and optax, in float64.
    preset = presets.PRESETS["cnn"]
    net = preset.network
    params = net.init(jax.random.key(0), jnp.float64)
    x, y = jnp.asarray(mnist1d.x_train, jnp.float64), jnp.asarray(mnist1d.y_train)
    loss = optax.softmax_cross_entropy_with_integer_labels
    optimizer = optax.adam(preset.learning_rate)
    trained, history = jaxbp.fit(
        net, loss, params, x, y, epochs=1, batch_size=100, optimizer=optimizer
    )

    @jax.jit
    def step(p, state, xb, yb):
        value, grads = jax.value_and_grad(lambda q: loss(net(q, xb), yb).mean())(p)
        updates, state = optimizer.update(grads, state, p)
        return optax.apply_updates(p, updates), state, value

    expected, state, losses = params, optimizer.init(params), []
    for i in range(0, len(y), 100):
        expected, state, value = step(expected, state, x[i : i + 100], y[i : i + 100])
        losses.append(value)
    np.testing.assert_allclose(np.asarray(history["loss"]), np.asarray(losses), rtol=1e-8)
    chex.assert_trees_all_close(trained, expected, rtol=1e-6, atol=1e-9)


@pytest.mark.slow
def test_ten_epochs_of_the_cnn_preset_beat_logistic_regression(mnist1d) -> None:
    net = presets.PRESETS["cnn"].network
    trained, _ = jaxbp.fit(
        net,
        optax.softmax_cross_entropy_with_integer_labels,
        net.init(jax.random.key(0)),
        mnist1d.x_train,
        mnist1d.y_train,
        epochs=10,
        batch_size=100,
        optimizer=optax.adam(1e-2),
    )
    accuracy = np.mean(np.asarray(net(trained, mnist1d.x_test)).argmax(-1) == mnist1d.y_test)
    assert accuracy > 0.6  # chance is 0.1; the paper's logistic regression reaches 0.32


def _run_example(name: str, *args) -> Any:
    spec = importlib.util.spec_from_file_location(
        f"example_{name}", ROOT / "examples" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(*args)


def test_smoke_examples_run(capsys) -> None:
    accuracy = _run_example("own_model", 1)
    assert 0.0 <= accuracy <= 1.0
    results = _run_example("mnist1d_presets", ("logistic", "cnn_residual"), (0,), 1)
    assert set(results) == {("logistic", 0), ("cnn_residual", 0)}
    assert "cnn_residual  seed 0  test accuracy" in capsys.readouterr().out
