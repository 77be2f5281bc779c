"""What the hand-written chain rule of a layer network is called with is checked before any
arithmetic: NumPy would otherwise broadcast a one-row position table or a ``(1,)`` norm scale,
wrap a label of -1 to the last class, take a mis-placed mask as no dropout and a pre-scaled mask
as a second scaling, or read a string as ``training=True``, and return a wrong gradient."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp import manual_layers
from jaxbp.layers import (
    BatchNorm,
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

NET = Sequential(
    layers=(
        Embedding(10, 4),
        PositionalEmbedding(6),
        LayerNorm(),
        Residual((SelfAttention(2, causal=True), Dropout(0.5))),
        Flatten(),
        Dense(2),
    ),
    input_shape=(6,),
)
PARAMS = NET.init(jax.random.key(0), jnp.float64)
X = np.arange(18).reshape(3, 6) % 10
Y = np.array([0, 1, 1])
MASKS = NET.dropout_masks(jax.random.key(1), 3)


def _backprop(params=PARAMS, x=X, y=Y, **kwargs):
    return manual_layers.backprop(NET, "softmax_cross_entropy", params, x, y, **kwargs)


def _with(index: int, **entry) -> list:
    params = [dict(layer) for layer in PARAMS]
    params[index] = {**params[index], **entry}
    return params


def test_the_well_formed_call_runs() -> None:
    assert np.isfinite(_backprop(masks=MASKS)[0])


@pytest.mark.parametrize(
    ("params", "match"),
    [(_with(1, positions=np.zeros((1, 4))), r'params\[1\]\["positions"\] has shape \(1, 4\) but the network expects \(6, 4\)'),
     (_with(2, scale=np.ones(1)), r'params\[2\]\["scale"\] has shape \(1,\) but the network expects \(4,\)'),
     ([*PARAMS[:5], {"w": PARAMS[5]["w"]}], r"params\[5\] must have keys \['b', 'w'\], got \['w'\]"),
     (PARAMS[:5], "params must be a list of 6 entries, one per layer, got 5 entries"),
     (_with(3, layers=[{}, {}]), r'params\[3\]\["layers"\]\[0\] must have keys \[.b_k.*got \[\]')],
    ids=["one-row-positions", "norm-scale-(1,)", "missing-bias", "short-list", "residual-inner"],
)  # fmt: skip
def test_params_of_other_shapes_are_refused_not_broadcast(params, match) -> None:
    with pytest.raises(ValueError, match=rf"^manual_layers.backward: {match}"):
        _backprop(params)


@pytest.mark.parametrize("x", [X[:, :4], X[0], np.concatenate([X, X], axis=1)], ids=["short", "one-example", "long"])  # fmt: skip
def test_x_of_another_shape_is_refused_naming_the_expected_one(x) -> None:
    with pytest.raises(ValueError, match=r"x has shape .* pass x of shape \(batch, 6\)"):
        _backprop(x=x, y=Y[: len(np.atleast_2d(x))])


@pytest.mark.parametrize("label", [-1, 2])
def test_labels_outside_the_outputs_are_refused_not_wrapped(label) -> None:
    with pytest.raises(ValueError, match=rf"y holds the label {label} .* 2 outputs.*\[0, 2\)"):
        _backprop(y=np.array([0, label, 1]))


def test_a_mask_at_a_layer_that_drops_nothing_is_refused() -> None:
    shifted = [None, None, None, [MASKS[3][1], None], None, None]  # the Dropout's mask one early
    with pytest.raises(ValueError, match="a mask for a SelfAttention, which drops nothing"):
        _backprop(masks=shifted)


def test_a_mask_of_other_values_than_0_and_1_is_refused() -> None:
    scaled = [None, None, None, [None, np.asarray(MASKS[3][1]) * 2.0], None, None]
    with pytest.raises(ValueError, match="mask holds values other than 0 and 1"):
        _backprop(masks=scaled)
    ones = [None, None, None, [None, np.asarray(MASKS[3][1]).astype(int)], None, None]
    assert _backprop(masks=ones)[0] == _backprop(masks=MASKS)[0]  # 0/1 ints are a mask too


def test_training_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="training must be True or False, got 'no'"):
        _backprop(masks=MASKS, training="no")


def test_running_state_of_other_shapes_is_refused() -> None:
    net = Sequential(layers=(Dense(4), BatchNorm(), Dense(2)), input_shape=(3,))
    params = net.init(jax.random.key(0), jnp.float64)
    x = np.linspace(-1.0, 1.0, 15).reshape(5, 3)
    state = [{}, {"mean": np.zeros(1), "var": np.ones(1)}, {}]  # one channel, not four
    for training in (True, False):
        with pytest.raises(ValueError, match=r'state\[1\]\["mean"\] has shape \(1,\) but the network expects \(4,\)'):  # fmt: skip
            manual_layers.backward(net, "mse", params, x, np.zeros((5, 2)), state=state, training=training)  # fmt: skip
