"""Losses against values worked out by hand, and the batch-mean convention."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp

P = jnp.array([[0.2, 0.8], [0.6, 0.4]])
T = jnp.array([[0.0, 1.0], [1.0, 0.0]])


def test_half_se() -> None:
    # per example: 0.5*(0.04 + 0.04) = 0.04 and 0.5*(0.16 + 0.16) = 0.16; mean 0.1
    assert float(jaxbp.LOSSES["half_se"](P, T)) == pytest.approx(0.1)


def test_mse() -> None:
    # per example: mean(0.04, 0.04) = 0.04, mean(0.16, 0.16) = 0.16; mean 0.1
    assert float(jaxbp.LOSSES["mse"](P, T)) == pytest.approx(0.1)


def test_cross_entropy() -> None:
    expected = (-math.log(0.8) - math.log(0.6)) / 2
    assert float(jaxbp.LOSSES["cross_entropy"](P, T)) == pytest.approx(expected)


def test_cross_entropy_ignores_zero_target_with_zero_probability() -> None:
    value = jaxbp.LOSSES["cross_entropy"](jnp.array([1.0, 0.0]), jnp.array([1.0, 0.0]))
    assert float(value) == 0.0


def test_softmax_cross_entropy_from_logits_is_stable() -> None:
    logits = jnp.array([[1000.0, 0.0]])
    assert float(
        jaxbp.LOSSES["softmax_cross_entropy"](logits, jnp.array([[0.0, 1.0]]))
    ) == pytest.approx(1000.0)
    z = jnp.array([[1.0, 2.0, 0.5]])
    t = jnp.array([[0.0, 1.0, 0.0]])
    expected = -(2.0 - math.log(math.exp(1.0) + math.exp(2.0) + math.exp(0.5)))
    assert float(jaxbp.LOSSES["softmax_cross_entropy"](z, t)) == pytest.approx(expected)


def test_binary_cross_entropy() -> None:
    expected = (-(math.log(0.8) + math.log(0.8)) - (math.log(0.6) + math.log(0.6))) / 2
    assert float(jaxbp.LOSSES["binary_cross_entropy"](P, T)) == pytest.approx(expected)


@pytest.mark.parametrize("name", sorted(jaxbp.LOSSES))
def test_single_example_equals_batch_of_one_and_manual(name) -> None:
    p, t = np.array([0.3, 0.7]), np.array([0.0, 1.0])
    single = float(jaxbp.LOSSES[name](jnp.asarray(p), jnp.asarray(t)))
    batch = float(jaxbp.LOSSES[name](jnp.asarray(p[None]), jnp.asarray(t[None])))
    assert single == pytest.approx(batch)
    assert single == pytest.approx(jaxbp.manual.loss_value(name, p[None], t[None]))
