"""The layers of modern networks in JAX: outputs against first principles (loops in NumPy, the
definitions), random keys and running state, initial values, model files and every error."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from jaxbp.layers import (
    BatchNorm,
    Conv1D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    LayerNorm,
    PositionalEmbedding,
    Residual,
    SelfAttention,
    Sequential,
    model_file,
)
from tests.helpers import assert_close


def _normal(rng: np.random.Generator, net: Sequential) -> list:
    """Params in the layout of net.init with every leaf N(0, 1), biases and scales included."""
    return jax.tree.map(
        lambda leaf: jnp.asarray(rng.standard_normal(leaf.shape)),
        jax.eval_shape(lambda: net.init(jax.random.key(0), jnp.float64)),
    )


def test_embedding_looks_tokens_up_and_positions_add_per_position() -> None:
    net = Sequential(layers=(Embedding(5, 3), PositionalEmbedding(6)), input_shape=(4,))
    rng = np.random.default_rng(0)
    params = _normal(rng, net)
    tokens = rng.integers(0, 5, (2, 4))
    table, positions = np.asarray(params[0]["table"]), np.asarray(params[1]["positions"])
    expected = np.zeros((2, 4, 3))
    for n in range(2):
        for t in range(4):
            expected[n, t] = table[tokens[n, t]] + positions[t]
    assert_close(net(params, tokens), expected)
    assert_close(net(params, tokens[0]), expected[0])  # one example, no batch axis


def test_layer_norm_normalises_each_position_over_its_features() -> None:
    net = Sequential(layers=(LayerNorm(epsilon=0.1),), input_shape=(3, 5))
    rng = np.random.default_rng(1)
    params = _normal(rng, net)
    x = 3.0 + 2.0 * rng.standard_normal((2, 3, 5))
    scale, bias = np.asarray(params[0]["scale"]), np.asarray(params[0]["bias"])
    expected = np.zeros_like(x)
    for index in np.ndindex(2, 3):
        row = x[index]
        mean = sum(row) / 5
        var = sum((v - mean) ** 2 for v in row) / 5  # the biased variance
        expected[index] = scale * (row - mean) / math.sqrt(var + 0.1) + bias
    assert_close(net(params, x), expected)


def _attention_by_loops(x, params, heads, causal):
    """softmax(q k^T / sqrt(d)) v per example, head and query, one score at a time."""
    batch, length, features = x.shape
    d = features // heads
    q, k, v = (x @ params[f"w_{n}"] + params[f"b_{n}"] for n in "qkv")
    o = np.zeros_like(x)
    for n in range(batch):
        for h in range(heads):
            cols = slice(h * d, (h + 1) * d)
            for t in range(length):
                visible = range(t + 1) if causal else range(length)
                scores = [float(q[n, t, cols] @ k[n, s, cols]) / math.sqrt(d) for s in visible]
                weights = [math.exp(s - max(scores)) for s in scores]
                total = sum(weights)
                o[n, t, cols] = sum(
                    w / total * v[n, s, cols] for w, s in zip(weights, visible, strict=True)
                )
    return o @ params["w_o"] + params["b_o"]


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_self_attention_equals_the_definition_head_by_head(causal: bool) -> None:
    net = Sequential(layers=(SelfAttention(2, causal=causal),), input_shape=(4, 6))
    rng = np.random.default_rng(2)
    params = _normal(rng, net)
    x = rng.standard_normal((2, 4, 6))
    numpy_params = jax.tree.map(np.asarray, params[0])
    assert_close(net(params, x), _attention_by_loops(x, numpy_params, 2, causal))


def test_causal_attention_never_looks_ahead() -> None:
    net = Sequential(layers=(SelfAttention(1, causal=True),), input_shape=(5, 2))
    rng = np.random.default_rng(3)
    params = _normal(rng, net)
    x = rng.standard_normal((1, 5, 2))
    changed = x.copy()
    changed[0, 3:] += 10.0  # change the future of position 2
    before, after = net(params, x), net(params, changed)
    assert_close(before[0, :3], after[0, :3])
    assert not np.allclose(before[0, 3:], after[0, 3:])


def test_dropout_without_a_key_is_the_identity_and_with_one_drops_and_rescales() -> None:
    net = Sequential(layers=(Dropout(0.3),), input_shape=(100, 50))
    x = jnp.asarray(np.random.default_rng(4).uniform(1.0, 2.0, (4, 100, 50)))
    assert_close(net([{}], x), x)
    key = jax.random.key(5)
    out = np.asarray(net([{}], x, key=key))
    kept = out != 0
    np.testing.assert_allclose(out[kept], np.asarray(x)[kept] / 0.7, rtol=1e-15)
    # 20,000 entries each kept with probability 0.7: the fraction is within 5 standard deviations
    assert abs(kept.mean() - 0.7) < 5 * math.sqrt(0.7 * 0.3 / kept.size)
    np.testing.assert_array_equal(net.dropout_masks(key, 4)[0], kept)
    np.testing.assert_array_equal(net([{}], x, key=key), out)  # the same key, the same mask
    assert not np.array_equal(net([{}], x, key=jax.random.key(6)), out)


def test_each_dropout_layer_gets_its_own_key() -> None:
    # key split per layer: two dropouts in a row, and one inside a residual block, draw apart
    net = Sequential(
        layers=(Dropout(0.5), Dropout(0.5), Residual((Dropout(0.5),))), input_shape=(64,)
    )
    first, second, (inner,) = net.dropout_masks(jax.random.key(0), 8)
    assert not np.array_equal(first, second) and not np.array_equal(second, inner)
    x = jnp.ones((8, 64))
    expected = first * second / 0.25 * (1.0 + inner / 0.5)  # x -> d1 -> d2 -> h + d3(h)
    assert_close(net([{}, {}, {"layers": [{}]}], x, key=jax.random.key(0)), expected)


def test_batch_norm_in_training_and_evaluation_by_the_formulas() -> None:
    net = Sequential(layers=(BatchNorm(momentum=0.8),), input_shape=(3, 2))
    rng = np.random.default_rng(6)
    params = _normal(rng, net)
    x = 5.0 + 3.0 * rng.standard_normal((4, 3, 2))
    state = [{"mean": jnp.asarray([1.0, -1.0]), "var": jnp.asarray([2.0, 0.5])}]
    scale, bias = np.asarray(params[0]["scale"]), np.asarray(params[0]["bias"])
    values = x.reshape(-1, 2)  # every entry of a channel, over batch and length
    mean = values.sum(axis=0) / 12
    var = ((values - mean) ** 2).sum(axis=0) / 12
    out, new_state = net.apply_with_state(params, state, x)
    assert_close(out, scale * (x - mean) / np.sqrt(var + 1e-5) + bias)
    assert_close(new_state[0]["mean"], 0.8 * np.array([1.0, -1.0]) + 0.2 * mean)
    assert_close(new_state[0]["var"], 0.8 * np.array([2.0, 0.5]) + 0.2 * var)
    out, same = net.apply_with_state(params, state, x, training=False)
    running = (x - np.array([1.0, -1.0])) / np.sqrt(np.array([2.0, 0.5]) + 1e-5)
    assert_close(out, scale * running + bias)
    assert_close(same, state)


def test_apply_with_state_agrees_with_apply_on_a_stateless_network_and_under_jit() -> None:
    net = Sequential(
        layers=(Embedding(7, 4), SelfAttention(2), Dropout(0.5), Flatten(), Dense(2)),
        input_shape=(3,),
    )
    params = net.init(jax.random.key(0), jnp.float64)
    tokens = jnp.asarray([[1, 2, 3], [6, 0, 0]])
    key = jax.random.key(1)
    out, state = net.apply_with_state(params, net.init_state(), tokens, key=key)
    assert state == [{}] * 5
    assert_close(out, net(params, tokens, key=key))
    jitted = jax.jit(lambda p, x, k: net.apply(p, x, key=k))
    assert_close(jitted(params, tokens, key), out)
    evaluation, _ = net.apply_with_state(params, state, tokens, key=key, training=False)
    assert_close(evaluation, net(params, tokens))  # no dropout in evaluation


def test_init_gives_the_documented_layout_and_values(key) -> None:
    net = Sequential(
        layers=(
            Embedding(1000, 64),
            PositionalEmbedding(10),
            LayerNorm(),
            SelfAttention(4, bias=False),
            BatchNorm(),
            Dropout(0.1),
        ),
        input_shape=(8,),
    )
    params = net.init(key, jnp.float64)
    assert jax.tree.map(jnp.shape, params) == [
        {"table": (1000, 64)},
        {"positions": (10, 64)},
        {"scale": (64,), "bias": (64,)},
        {f"w_{n}": (64, 64) for n in "qkvo"},
        {"scale": (64,), "bias": (64,)},
        {},
    ]
    assert jax.tree.map(jnp.shape, net.init_state()) == [{}] * 4 + [
        {"mean": (64,), "var": (64,)},
        {},
    ]
    state = net.init_state(jnp.float64)
    assert not np.any(state[4]["mean"]) and np.all(state[4]["var"] == 1.0)
    assert np.all(params[2]["scale"] == 1.0) and not np.any(params[2]["bias"])
    assert np.var(params[0]["table"]) == pytest.approx(1.0, rel=0.02)  # N(0, 1) rows
    assert np.var(params[3]["w_q"]) == pytest.approx(2 / 128, rel=0.1)  # Glorot: 2 / (in + out)
    assert not np.array_equal(params[3]["w_q"], params[3]["w_k"])


def test_model_files_take_the_new_layers(tmp_path) -> None:
    net = Sequential(
        layers=(
            Embedding(50, 8),
            PositionalEmbedding(16),
            Residual((LayerNorm(epsilon=1e-6), SelfAttention(2, causal=True), Dropout(0.1))),
            BatchNorm(momentum=0.9),
            Conv1D(8, 1, activation="gelu"),
            Flatten(),
            Dense(3),
        ),
        input_shape=(12,),
    )
    path = tmp_path / "model.json"
    model_file.save(path, net)
    assert model_file.load(path) == net
    written = model_file.to_dict(net)["layers"]
    assert written[2]["layers"][1] == {
        "type": "SelfAttention",
        "heads": 2,
        "causal": True,
        "bias": True,
    }
    with pytest.raises(model_file.ModelFileError, match=r"layers\[0\]: Dropout: rate"):
        model_file.from_dict({"input_shape": [3], "layers": [{"type": "Dropout", "rate": 1.0}]})


def test_numpy_numbers_set_a_layers_rate_momentum_and_epsilon_as_python_floats() -> None:
    # the value a user computed with NumPy is the same setting, one hash and one file form
    assert Dropout(np.float32(0.5)) == Dropout(0.5) and type(Dropout(np.float32(0.5)).rate) is float
    assert hash(BatchNorm(np.float64(0.9), np.float64(1e-3))) == hash(BatchNorm(0.9, 1e-3))
    assert LayerNorm(np.float64(1e-5)).epsilon == 1e-5
    for bad in (np.float32("nan"), np.bool_(True), "0.5"):
        with pytest.raises(ValueError, match=r"Dropout: rate must be a number"):
            Dropout(bad)


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: Embedding(0, 3), ValueError, "vocab_size must be a positive int"),
        (lambda: PositionalEmbedding(2.5), ValueError, "max_length"),
        (lambda: LayerNorm(epsilon=0), ValueError, "epsilon must be a positive number"),
        (lambda: SelfAttention(2, causal="yes"), TypeError, "causal must be True or False"),
        (lambda: Dropout(1.0), ValueError, r"rate must be a number with 0 <= rate < 1"),
        (lambda: BatchNorm(momentum=1.5), ValueError, r"0 <= momentum <= 1"),
        (
            lambda: Sequential(layers=(Flatten(), Embedding(3, 2)), input_shape=(2,)),
            ValueError,
            r"layers\[1\] is an Embedding.*only the first",
        ),
        (
            lambda: Sequential(layers=(Embedding(3, 2),), input_shape=(2, 2)),
            ValueError,
            r"Embedding takes integer tokens \(batch, length\).*input_shape=\(length,\)",
        ),
        (
            lambda: Sequential(layers=(PositionalEmbedding(3),), input_shape=(4, 2)),
            ValueError,
            r"max_length=3\) gets sequences of length 4",
        ),
        (
            lambda: Sequential(layers=(SelfAttention(4),), input_shape=(3, 6)),
            ValueError,
            "4 heads cannot split 6 features",
        ),
        (
            lambda: Sequential(layers=(LayerNorm(), SelfAttention(1)), input_shape=(6,)),
            ValueError,
            r"layer 1 \(SelfAttention\).*\(batch, length, features\)",
        ),
    ],
    ids=[
        "vocab",
        "max-length",
        "epsilon",
        "causal",
        "rate",
        "momentum",
        "embedding-not-first",
        "embedding-rank",
        "positions-too-short",
        "heads",
        "attention-rank",
    ],
)
def test_bad_specs_raise_clear_errors(build, error, match) -> None:
    with pytest.raises(error, match=match):
        build()


def test_apply_refuses_bad_tokens_keys_and_state(key) -> None:
    net = Sequential(layers=(Embedding(4, 2), Flatten(), Dense(1)), input_shape=(3,))
    params = net.init(key)
    with pytest.raises(TypeError, match="x has dtype float64 but the Embedding takes integer"):
        net(params, jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"token 4 but the Embedding has vocab_size=4.*\[0, 4\)"):
        net(params, np.array([[0, 1, 4]]))
    with pytest.raises(ValueError, match="token -1"):
        net(params, np.array([[0, -1, 2]]))
    with pytest.raises(TypeError, match=r"key must be a jax.random.key\(seed\)"):
        net(params, np.array([[0, 1, 2]]), key=42)
    # traced tokens cannot be checked: an out-of-range one gives NaN, never a clamped row
    traced = jax.jit(lambda p, x: net(p, x))(params, np.array([[0, 1, 7]]))
    assert np.isnan(traced).all()
    norm = Sequential(layers=(BatchNorm(), Flatten()), input_shape=(2, 2))
    norm_params = norm.init(key)
    with pytest.raises(ValueError, match=r"has a BatchNorm.*apply_with_state"):
        norm(norm_params, jnp.ones((1, 2, 2)))
    with pytest.raises(ValueError, match=r'state\[0\]\["var"\] has shape \(3,\).*expects \(2,\)'):
        bad = [{"mean": jnp.zeros(2), "var": jnp.ones(3)}, {}]
        norm.apply_with_state(norm_params, bad, jnp.ones((1, 2, 2)))
    with pytest.raises(TypeError, match=r"state must be a list.*init_state\(\)"):
        norm.apply_with_state(norm_params, None, jnp.ones((1, 2, 2)))
    with pytest.raises(TypeError, match="training must be True or False"):
        norm.apply_with_state(norm_params, norm.init_state(), jnp.ones((1, 2, 2)), training=1)


def test_gelu_is_x_times_the_normal_cdf() -> None:
    z = np.linspace(-4.0, 4.0, 17)
    expected = [v * 0.5 * (1.0 + math.erf(v / math.sqrt(2.0))) for v in z]
    assert_close(jaxbp.ACTIVATIONS["gelu"](jnp.asarray(z)), np.array(expected))
