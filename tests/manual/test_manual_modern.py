"""The hand-written chain rule of the layers of modern networks (jaxbp.manual.modern): embeddings,
layer and batch normalisation, self-attention and dropout, against jax.grad on hypothesis-drawn
networks and against central differences of the manual forward pass."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

import jaxbp
from jaxbp.layers import (
    Activation,
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
)
from jaxbp.manual import layers as manual_layers
from tests.helpers import assert_close
from tests.manual.test_manual_layers import (
    OUTPUT_FOR_LOSS,
    _central_differences,
    random_params,
)
from tests.strategies import make_targets

SEQUENCE_KINDS = ["positions", "layernorm", "attention", "dropout", "batchnorm", "residual"]
FLAT_KINDS = ["batchnorm-flat", "dropout-flat"]


@st.composite
def sequence_layer(draw: st.DrawFn, length: int, features: int, kind: str | None = None) -> object:
    """One layer that maps (length, features) sequences to sequences of the same shape."""
    kind = kind or draw(st.sampled_from(SEQUENCE_KINDS))
    if kind == "positions":
        return PositionalEmbedding(length + draw(st.integers(0, 2)))
    if kind == "layernorm":
        return LayerNorm(epsilon=draw(st.sampled_from([1e-5, 0.1])))
    if kind == "dropout":
        return Dropout(draw(st.sampled_from([0.5, 0.25, 0.0])))
    if kind == "batchnorm":
        return BatchNorm(momentum=draw(st.sampled_from([0.9, 0.99, 0.0])))
    heads = draw(st.sampled_from([h for h in (2, 1, 3) if features % h == 0]))
    attention = SelfAttention(heads, causal=draw(st.booleans()), bias=draw(st.booleans()))
    if kind == "attention":
        return attention
    block = draw(
        st.sampled_from(
            [
                (LayerNorm(), attention),
                (attention, Dropout(0.5)),
                (LayerNorm(), Conv1D(features, 1, activation="gelu"), Dropout(0.25)),
            ]
        )
    )
    return Residual(block)


@st.composite
def modern_networks(
    draw: st.DrawFn, depth: tuple[int, int] = (1, 3), kind: str | None = None
) -> dict:
    """Tokens through an Embedding, or float sequences; sequence layers (the first of ``kind``
    when given); Flatten; maybe a BatchNorm or Dropout on the flat features; a Dense output."""
    length, features = draw(st.integers(1, 4)), draw(st.sampled_from([4, 2, 3, 6]))
    tokens = draw(st.booleans())
    layers: list = [Embedding(draw(st.integers(2, 7)), features)] if tokens else []
    first = kind if kind in SEQUENCE_KINDS else None
    for index in range(draw(st.integers(*depth))):
        layers.append(draw(sequence_layer(length, features, first if index == 0 else None)))
    layers.append(Flatten())
    flat = {"batchnorm-flat": BatchNorm(momentum=0.5), "dropout-flat": Dropout(0.5)}.get(kind or "")
    if kind is None:
        flat = draw(st.sampled_from([None, BatchNorm(momentum=0.5), Dropout(0.5)]))
    if flat is not None:
        layers.append(flat)
    loss = draw(st.sampled_from(sorted(OUTPUT_FOR_LOSS)))
    layers.append(Dense(draw(st.integers(2, 4)), activation=OUTPUT_FOR_LOSS[loss]))
    shape = (length,) if tokens else (length, features)
    net = Sequential(layers=tuple(layers), input_shape=shape)
    return {
        "net": net,
        "loss": loss,
        # a BatchNorm in training on one value per channel is refused: 2 examples at least
        "batch": draw(st.integers(2 if net.stateful else 1, 3)),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


def random_state(net: Sequential, rng: np.random.Generator) -> list:
    """Running statistics off their initial values: means N(0, 1), variances in [0.5, 2]."""

    def draw(path, leaf):
        if path[-1].key == "var":
            return jnp.asarray(rng.uniform(0.5, 2.0, leaf.shape))
        return jnp.asarray(rng.standard_normal(leaf.shape))

    return jax.tree_util.tree_map_with_path(draw, net.init_state(jnp.float64))


def random_inputs(net: Sequential, rng: np.random.Generator, batch: int) -> np.ndarray:
    first = net.layers[0]
    if isinstance(first, Embedding):
        return rng.integers(0, first.vocab_size, (batch, *net.input_shape))
    return rng.standard_normal((batch, *net.input_shape))


def compare_with_jax(case: dict, training: bool) -> None:
    net, loss = case["net"], case["loss"]
    rng = np.random.default_rng(case["seed"])
    params = random_params(net, rng)
    state = random_state(net, rng)
    x = random_inputs(net, rng, case["batch"])
    y = jnp.asarray(make_targets(loss, rng, (case["batch"], *net.output_shape)))
    key = jax.random.key(case["seed"] % 1000)

    def jax_loss(p):
        if net.stateful:
            prediction, new_state = net.apply_with_state(p, state, x, key=key, training=training)
        else:  # the stateless path: dropout only with a key, here only in training
            prediction, new_state = net.apply(p, x, key=key if training else None), None
        return jaxbp.LOSSES[loss](prediction, y), new_state

    (value, new_state), grads = jax.jit(jax.value_and_grad(jax_loss, has_aux=True))(params)
    masks = jax.tree.map(np.asarray, net.dropout_masks(key, case["batch"]))
    record = manual_layers.backward(
        net, loss, params, x, y, state=state, masks=masks, training=training
    )
    assert np.isfinite(record.loss)
    assert_close(value, record.loss)
    assert_close(grads, record.grads)
    if net.stateful:
        assert_close(new_state, record.state)


@pytest.mark.slow
@pytest.mark.parametrize("training", [True, False], ids=["training", "evaluation"])
@pytest.mark.parametrize("kind", SEQUENCE_KINDS + FLAT_KINDS)
@settings(max_examples=2)
@given(data=st.data())
def test_each_modern_layer_alone_matches_jax_grad(kind: str, training: bool, data) -> None:
    compare_with_jax(data.draw(modern_networks(depth=(1, 1), kind=kind)), training)


@pytest.mark.slow
@pytest.mark.parametrize("training", [True, False], ids=["training", "evaluation"])
@settings(max_examples=8)
@given(case=modern_networks(depth=(2, 4)))
def test_composed_modern_networks_match_jax_grad(case: dict, training: bool) -> None:
    compare_with_jax(case, training)


def test_a_small_transformer_block_matches_jax_grad_with_integer_labels() -> None:
    net = Sequential(
        layers=(
            Embedding(9, 6),
            PositionalEmbedding(5),
            Residual((LayerNorm(), SelfAttention(3, causal=True), Dropout(0.2))),
            Residual((LayerNorm(), Conv1D(6, 1, activation="gelu"), Dropout(0.2))),
            LayerNorm(),
            Flatten(),
            Dense(4),
        ),
        input_shape=(5,),
    )
    rng = np.random.default_rng(5)
    params = random_params(net, rng)
    x, labels = rng.integers(0, 9, (3, 5)), rng.integers(0, 4, 3)
    key = jax.random.key(7)

    def loss(p):
        logits = net.apply(p, x, key=key)
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(3), labels])

    value, grads = jax.jit(jax.value_and_grad(loss))(params)
    masks = net.dropout_masks(key, 3)
    assert any(m is not None and not np.all(m) for m in jax.tree.leaves(masks))  # drops some
    manual_value, manual_grads = manual_layers.backprop(
        net, "softmax_cross_entropy", params, x, labels, masks=masks
    )
    assert_close(value, manual_value)
    assert_close(grads, manual_grads)


# --- a second oracle: central differences of the manual forward pass ----------------------------
TINY = {
    "positions": ((PositionalEmbedding(4),), (3, 2)),
    "layernorm": ((LayerNorm(epsilon=0.01),), (3, 3)),
    "attention": ((SelfAttention(2),), (3, 4)),
    "attention-causal": ((SelfAttention(1, causal=True, bias=False),), (3, 2)),
    "dropout": ((Dropout(0.4),), (3, 2)),
    "batchnorm-sequence": ((BatchNorm(),), (3, 2)),
    "batchnorm-flat": ((Flatten(), BatchNorm()), (2, 2)),
    "gelu": ((Activation("gelu"),), (2, 2)),
    "residual-attention": ((Residual((LayerNorm(), SelfAttention(2, causal=True))),), (3, 2)),
}


@pytest.mark.parametrize(("layers", "shape"), TINY.values(), ids=TINY.keys())
def test_manual_gradients_match_central_differences(layers, shape) -> None:
    net = Sequential(layers=(*layers, Flatten(), Dense(2)), input_shape=shape)
    rng = np.random.default_rng(7)
    params = jax.tree.map(np.asarray, random_params(net, rng))
    x = rng.standard_normal((3, *shape))
    y = rng.standard_normal((3, 2))
    masks = jax.tree.map(np.asarray, net.dropout_masks(jax.random.key(1), 3))
    state = net.init_state(jnp.float64)

    def record(p=params, v=x):
        return manual_layers.backward(net, "half_se", p, v, y, state=state, masks=masks)

    leaves, treedef = jax.tree.flatten(params)
    for index, leaf in enumerate(leaves):

        def loss_at(value, index=index):
            changed = [value if i == index else other for i, other in enumerate(leaves)]
            return record(p=jax.tree.unflatten(treedef, changed)).loss

        numeric = _central_differences(loss_at, leaf)
        manual = jax.tree.leaves(record().grads)[index]
        np.testing.assert_allclose(manual, numeric, rtol=1e-6, atol=1e-8)
    numeric_x = _central_differences(lambda v: record(v=v).loss, x)
    np.testing.assert_allclose(record().dloss_dinput, numeric_x, rtol=1e-6, atol=1e-8)


def test_embedding_gradient_scatter_adds_by_central_differences() -> None:
    # A token used twice collects both gradients; a row never used gets zero.
    net = Sequential(layers=(Embedding(5, 2), Flatten(), Dense(2)), input_shape=(3,))
    rng = np.random.default_rng(3)
    params = jax.tree.map(np.asarray, random_params(net, rng))
    x, y = np.array([[1, 3, 1], [0, 1, 3]]), rng.standard_normal((2, 2))
    record = manual_layers.backward(net, "half_se", params, x, y)
    numeric = _central_differences(
        lambda table: (
            manual_layers.backward(net, "half_se", [{"table": table}, *params[1:]], x, y).loss
        ),
        params[0]["table"],
    )
    np.testing.assert_allclose(record.grads[0]["table"], numeric, rtol=1e-6, atol=1e-8)
    assert not np.any(record.grads[0]["table"][[2, 4]])  # tokens 2 and 4 never appear
    assert record.dloss_dinput is None  # integer tokens have no gradient


def test_batchnorm_in_evaluation_by_central_differences_and_against_jax() -> None:
    net = Sequential(layers=(BatchNorm(), Flatten(), Dense(2)), input_shape=(2, 3))
    rng = np.random.default_rng(4)
    params, state = random_params(net, rng), random_state(net, rng)
    x, y = rng.standard_normal((3, 2, 3)), rng.standard_normal((3, 2))
    record = manual_layers.backward(net, "half_se", params, x, y, state=state, training=False)
    numeric_x = _central_differences(
        lambda v: (
            manual_layers.backward(net, "half_se", params, v, y, state=state, training=False).loss
        ),
        x,
    )
    np.testing.assert_allclose(record.dloss_dinput, numeric_x, rtol=1e-6, atol=1e-8)
    assert_close(record.state, state)  # evaluation leaves the running statistics alone

    def jax_loss(p):
        return jaxbp.LOSSES["half_se"](net.apply_with_state(p, state, x, training=False)[0], y)

    assert_close(jax.grad(jax_loss)(params), record.grads)


def test_jax_gradients_of_the_modern_layers_pass_check_grads() -> None:
    net = Sequential(
        layers=(
            PositionalEmbedding(4),
            Residual((LayerNorm(), SelfAttention(2, causal=True))),
            BatchNorm(),
            Flatten(),
            Dense(2, activation="gelu"),
        ),
        input_shape=(3, 4),
    )
    rng = np.random.default_rng(2)
    params, state = random_params(net, rng), net.init_state(jnp.float64)
    x = jnp.asarray(rng.standard_normal((2, 3, 4)))
    check_grads(
        lambda p: jaxbp.LOSSES["half_se"](net.apply_with_state(p, state, x)[0], 0.0),
        (params,),
        order=1,
        modes=("rev",),
    )


# --- the pieces and the errors ------------------------------------------------------------------
def test_dropout_scales_the_kept_entries_and_routes_the_gradient_through_them() -> None:
    net = Sequential(layers=(Dropout(0.5), Flatten()), input_shape=(4,))
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    masks = [np.array([[True, False, True, False]]), None]
    record = manual_layers.backward(net, "half_se", [{}, {}], x, np.zeros((1, 4)), masks=masks)
    np.testing.assert_array_equal(record.outputs[0], [[2.0, 0.0, 6.0, 0.0]])  # x * mask / 0.5
    # dL/dout = out; dL/dx = out * mask / 0.5
    np.testing.assert_array_equal(record.dloss_dinput, [[4.0, 0.0, 12.0, 0.0]])
    evaluation = manual_layers.backward(net, "half_se", [{}, {}], x, np.zeros((1, 4)))
    np.testing.assert_array_equal(evaluation.outputs[0], x)  # no masks: the identity


def test_bad_tokens_masks_and_state_raise() -> None:
    net = Sequential(layers=(Embedding(4, 2), Flatten(), Dense(1)), input_shape=(2,))
    params = jax.tree.map(np.asarray, random_params(net, np.random.default_rng(0)))
    y = np.zeros((1, 1))
    with pytest.raises(ValueError, match=r"tokens outside \[0, 4\).*from 0 to 4"):
        manual_layers.backprop(net, "half_se", params, np.array([[0, 4]]), y)
    with pytest.raises(TypeError, match="integer tokens, got x of dtype float64"):
        manual_layers.backprop(net, "half_se", params, np.array([[0.0, 1.0]]), y)
    drop = Sequential(layers=(Dropout(0.5), Flatten()), input_shape=(2,))
    with pytest.raises(ValueError, match=r"mask of shape \(1, 3\).*\(1, 2\).*dropout_masks"):
        manual_layers.backprop(
            drop,
            "half_se",
            [{}, {}],
            np.ones((1, 2)),
            y.repeat(2, 1),
            masks=[np.ones((1, 3)), None],
        )
    with pytest.raises(ValueError, match=r"masks must be a list with one entry per layer \(2\)"):
        manual_layers.backprop(
            drop, "half_se", [{}, {}], np.ones((1, 2)), np.ones((1, 2)), masks=[]
        )
    norm = Sequential(layers=(BatchNorm(), Flatten()), input_shape=(2,))
    norm_params = [{"scale": np.ones(2), "bias": np.zeros(2)}, {}]
    with pytest.raises(ValueError, match=r"training=False.*needs state"):
        manual_layers.backprop(
            norm, "half_se", norm_params, np.ones((1, 2)), np.ones((1, 2)), training=False
        )


def test_jaxbp_manual_backprop_passes_the_options_on() -> None:
    net = Sequential(layers=(Dropout(0.5), Flatten()), input_shape=(2,))
    masks = [np.array([[True, False]]), None]
    x, y = np.ones((1, 2)), np.zeros((1, 2))
    _, grads = jaxbp.manual.backprop(net, "half_se", [{}, {}], x, y, masks=masks)
    assert grads == [{}, {}]
    value = jaxbp.manual.backprop(net, "half_se", [{}, {}], x, y, masks=masks)[0]
    assert value == pytest.approx(0.5 * 2.0**2)  # out = (2, 0): half squared error 2
    with pytest.raises(TypeError, match="an MLP takes no masks"):
        jaxbp.manual.backprop(jaxbp.MLP((2, 1), ("linear",)), "half_se", [], x, y, masks=masks)
