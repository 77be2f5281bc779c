"""The training functions on networks with Dropout or BatchNorm: they call ``model(params, x)``,
with no key and no running state, so such a network is refused by name rather than trained with
dropout silently off or failing deep inside; a Dropout of rate 0, and a user's own function
around ``net.apply``, still train."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbp
from jaxbp.layers import BatchNorm, Dense, Dropout, LayerNorm, Residual, Sequential

X = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
Y = np.eye(2, dtype=np.float32)[np.arange(8) % 2]


def _net(*middle) -> Sequential:
    return Sequential(layers=(Dense(4, activation="relu"), *middle, Dense(2)), input_shape=(3,))


def _calls(net: Sequential):
    params = net.init(jax.random.key(0))
    stacked = jax.tree.map(lambda a: jnp.stack([a, a]), params)
    loss = "softmax_cross_entropy"
    return {
        "fit": lambda: jaxbp.fit(net, loss, params, X, Y, lr=0.1, epochs=1, batch_size=4),
        "train_step": lambda: jaxbp.train_step(net, loss, params, X, Y, 0.1),
        "loss_and_grad": lambda: jaxbp.loss_and_grad(net, loss, params, X, Y),
        "optax_step": lambda: jaxbp.optax_step(
            net, loss, optax.sgd(0.1), params, optax.sgd(0.1).init(params), X, Y
        ),
        "fit_ensemble": lambda: jaxbp.fit_ensemble(
            net, loss, stacked, X, Y, lr=0.1, epochs=1, batch_size=4
        ),
    }


@pytest.mark.parametrize("where", ["fit", "train_step", "loss_and_grad", "optax_step", "fit_ensemble"])  # fmt: skip
def test_a_dropout_network_is_refused_not_trained_with_dropout_off(where) -> None:
    for net in (_net(Dropout(0.5)), _net(Residual((Dense(4), Dropout(0.1))))):
        assert net.uses_dropout
        with pytest.raises(ValueError, match=rf"^{where}: the network has a Dropout.*key=step_key"):
            _calls(net)[where]()


@pytest.mark.parametrize("where", ["fit", "train_step", "loss_and_grad", "optax_step", "fit_ensemble"])  # fmt: skip
def test_a_batch_norm_network_is_refused_naming_apply_with_state(where) -> None:
    net = _net(BatchNorm())
    with pytest.raises(ValueError, match=rf"^{where}: the network has a BatchNorm.*does not carry"):
        _calls(net)[where]()


def test_dropout_of_rate_zero_and_a_function_of_ones_own_still_train() -> None:
    net = _net(Dropout(0.0))
    assert not net.uses_dropout
    params = net.init(jax.random.key(0))
    new, _ = jaxbp.train_step(net, "softmax_cross_entropy", params, X, Y, 0.1)
    plain = _net()  # the same layers without the Dropout: Dropout(0) is the identity
    without = [params[0], params[2]]
    expected, _ = jaxbp.train_step(plain, "softmax_cross_entropy", without, X, Y, 0.1)
    np.testing.assert_array_equal(new[0]["w"], expected[0]["w"])
    dropping = _net(Dropout(0.5))
    model = lambda p, x: dropping.apply(p, x)  # noqa: E731  (dropout off, explicitly)
    jaxbp.train_step(model, "softmax_cross_entropy", params, X, Y, 0.1)


@pytest.mark.parametrize(
    ("layers", "shape", "label"),
    [((Dense(3), BatchNorm()), (2,), "layer 1"),
     ((Dense(3), Residual((BatchNorm(),))), (2,), "layer 1, inner layer 0"),
     ((BatchNorm(),), (1, 2), "layer 0")],
    ids=["flat", "in-a-residual-block", "sequence-of-one"],
)  # fmt: skip
def test_batch_norm_training_on_one_value_per_channel_is_refused(layers, shape, label) -> None:
    # mean of one value is the value: x - mean = 0, the output the bias whatever x is
    net = Sequential(layers=layers, input_shape=shape)
    params, state = net.init(jax.random.key(0)), net.init_state()
    x = np.arange(1.0, 1.0 + np.prod(shape)).reshape(shape)
    for one in (x, x[None]):  # one example, with or without its batch axis
        with pytest.raises(ValueError, match=rf"^Sequential.apply_with_state: {label} \(BatchNorm\) in training.*one value per channel"):  # fmt: skip
            net.apply_with_state(params, state, one)
    out, same = net.apply_with_state(params, state, x, training=False)  # running statistics
    assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), same, state))
    assert out.shape == net.output_shape
    _, new = net.apply_with_state(params, state, np.stack([x, 2 * x]))  # two examples: fine
    assert np.all(np.isfinite(jax.tree.leaves(new)[0]))


def test_batch_norm_over_positions_takes_one_example() -> None:
    # a sequence of 3 positions gives 3 values per channel even for one example
    net = Sequential(layers=(BatchNorm(momentum=0.0),), input_shape=(3, 1))
    params, state = net.init(jax.random.key(0)), net.init_state()
    out, new = net.apply_with_state(params, state, np.array([[1.0], [2.0], [3.0]]))
    np.testing.assert_allclose(new[0]["mean"], [2.0])  # (1 + 2 + 3) / 3
    np.testing.assert_allclose(new[0]["var"], [2.0 / 3.0], rtol=1e-6)  # (1 + 0 + 1) / 3
    np.testing.assert_allclose(out[:, 0], np.array([-1.0, 0.0, 1.0]) / np.sqrt(2 / 3 + 1e-5), rtol=1e-5)  # fmt: skip


@pytest.mark.parametrize("shape", [(40, 1), (1,), (2, 3, 1)])
def test_layer_norm_over_one_feature_is_refused(shape) -> None:
    # the mean of one value is the value: the output would be the bias for every input
    with pytest.raises(ValueError, match=r"layer 0 \(LayerNorm\): LayerNorm normalises over the last axis, which has 1 feature"):  # fmt: skip
        Sequential(layers=(LayerNorm(),), input_shape=shape)
    with pytest.raises(ValueError, match=r"layer 1 \(Residual\), inner layer 0.*1 feature"):
        Sequential(layers=(Dense(1), Residual((LayerNorm(),))), input_shape=(3,))
    Sequential(layers=(LayerNorm(),), input_shape=(*shape[:-1], 2))  # two features: fine
