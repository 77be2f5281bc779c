"""The MLP spec: hashable, param layout, initialisers, params_from, apply on one example or a batch."""

from __future__ import annotations

import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp


def test_spec_is_hashable_and_normalised() -> None:
    a = jaxbp.MLP(sizes=[2, 3, 1], activations=["tanh", "linear"], bias=[True, False])
    b = jaxbp.MLP(sizes=(2, 3, 1), activations=("tanh", "linear"), bias=(True, False))
    assert a == b and hash(a) == hash(b)
    assert a.layer_bias == (True, False)
    assert a.layer_shapes == ((2, 3), (3, 1))


def test_init_layout_shapes_and_dtype(key) -> None:
    spec = jaxbp.MLP(sizes=(3, 5, 2), activations=("relu", "linear"), bias=(True, False))
    params = spec.init(key)
    assert isinstance(params, list) and len(params) == 2
    assert set(params[0]) == {"w", "b"} and set(params[1]) == {"w"}
    assert params[0]["w"].shape == (3, 5) and params[0]["b"].shape == (5,)
    assert params[1]["w"].shape == (5, 2)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))
    assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(spec.init(key, jnp.float64)))
    np.testing.assert_array_equal(params[0]["b"], 0.0)


@pytest.mark.parametrize(
    ("activation", "scheme", "variance"),
    [
        ("relu", None, lambda fan_in, fan_out: 2.0 / fan_in),  # He
        ("tanh", None, lambda fan_in, fan_out: 2.0 / (fan_in + fan_out)),  # Glorot
        ("sigmoid", None, lambda fan_in, fan_out: 2.0 / (fan_in + fan_out)),  # Glorot
        ("relu", "lecun", lambda fan_in, fan_out: 1.0 / fan_in),  # LeCun
        ("tanh", "he", lambda fan_in, fan_out: 2.0 / fan_in),
    ],
)
def test_initialiser_variance_follows_its_rule(activation, scheme, variance) -> None:
    fan_in, fan_out = 400, 300
    spec = jaxbp.MLP(sizes=(fan_in, fan_out), activations=(activation,), init_scheme=scheme)
    w = spec.init(jax.random.key(3), jnp.float64)[0]["w"]
    expected = variance(fan_in, fan_out)
    # 120,000 draws: the sample variance is within 2% of the target with overwhelming probability
    assert float(jnp.var(w)) == pytest.approx(expected, rel=0.02)
    assert float(jnp.mean(w)) == pytest.approx(0.0, abs=4 * math.sqrt(expected / w.size))


def test_init_is_deterministic_in_the_key_and_differs_between_keys() -> None:
    spec = jaxbp.MLP(sizes=(2, 4, 1), activations=("tanh", "linear"))
    one = spec.init(jax.random.key(1))
    np.testing.assert_array_equal(one[0]["w"], spec.init(jax.random.key(1))[0]["w"])
    assert not np.allclose(one[0]["w"], spec.init(jax.random.key(2))[0]["w"])


@pytest.mark.parametrize(
    "init",
    [
        lambda spec, key: spec.init(key),
        lambda spec, key: jaxbp.init_ensemble(spec, key, 2),
        lambda spec, key: jaxbp.presets.PRESETS["logistic"].network.init(key),
    ],
    ids=["MLP.init", "init_ensemble", "Sequential.init"],
)
@pytest.mark.parametrize("key", [0, jax.random.split(jax.random.key(0))], ids=["int", "two-keys"])
def test_init_refuses_a_key_that_is_not_one_prng_key(init, key) -> None:
    # was JAX's "invalid PRNG key data" (an int) or a batch of params (two keys)
    spec = jaxbp.MLP(sizes=(2, 4, 1), activations=("tanh", "linear"))
    with pytest.raises(TypeError, match=r"init(_ensemble)?: key must be one PRNG key"):
        init(spec, key)


def test_init_takes_a_legacy_uint32_key() -> None:
    spec = jaxbp.MLP(sizes=(2, 4, 1), activations=("tanh", "linear"))
    assert spec.init(jax.random.PRNGKey(0))[0]["w"].shape == (2, 4)


def test_params_from_and_apply_compute_z_equals_x_w_plus_b() -> None:
    spec = jaxbp.MLP(sizes=(2, 2, 1), activations=("relu", "linear"), bias=(True, False))
    params = spec.params_from([[[1.0, -1.0], [2.0, 0.5]], [[3.0], [4.0]]], [[0.5, -5.0], None])
    # first principles: z1 = [1*1 + 2*2 + 0.5, 1*-1 + 2*0.5 - 5] = [5.5, -5]; relu -> [5.5, 0]
    # output = 5.5*3 + 0*4 = 16.5
    assert float(spec.apply(params, jnp.array([1.0, 2.0]))[0]) == pytest.approx(16.5)
    batch = spec.apply(params, jnp.array([[1.0, 2.0], [0.0, 0.0]]))
    assert batch.shape == (2, 1)
    np.testing.assert_allclose(batch[:, 0], [16.5, 1.5])  # zeros: relu([0.5, -5]) = [0.5, 0]


def test_apply_is_jit_and_vmap_compatible(key) -> None:
    spec = jaxbp.MLP(sizes=(3, 4, 2), activations=("sigmoid", "softmax"))
    params = spec.init(key, jnp.float64)
    x = jax.random.normal(key, (6, 3), jnp.float64)
    batched = spec.apply(params, x)
    np.testing.assert_allclose(jax.jit(spec.apply)(params, x), batched, rtol=1e-12)
    np.testing.assert_allclose(
        jax.vmap(spec.apply, in_axes=(None, 0))(params, x), batched, rtol=1e-12
    )
    np.testing.assert_allclose(batched.sum(axis=1), 1.0, rtol=1e-12)  # softmax rows sum to one


def test_vmap_over_models(key) -> None:
    spec = jaxbp.MLP(sizes=(2, 3, 1), activations=("tanh", "linear"))
    stacked = jaxbp.init_ensemble(spec, key, 5)
    x = jnp.ones((4, 2), jnp.float32)
    out = jax.vmap(spec.apply, in_axes=(0, None))(stacked, x)
    assert out.shape == (5, 4, 1)
    for m in range(5):
        single = jax.tree.map(lambda leaf, m=m: leaf[m], stacked)
        np.testing.assert_allclose(out[m], spec.apply(single, x), rtol=1e-6)


def test_params_larger_than_the_devices_memory_are_refused_before_any_allocation(monkeypatch, key):
    from jaxbp.layers import Dense

    monkeypatch.setattr(jaxbp.model.checks, "device_memory_bytes", lambda: ("cpu:0", 1000))
    small = jaxbp.MLP(
        sizes=(3, 5, 2), activations=("relu", "linear")
    )  # (15 + 5 + 10 + 2) x 4 bytes
    assert [layer["w"].shape for layer in small.init(key)] == [(3, 5), (5, 2)]
    wide = jaxbp.MLP(sizes=(16, 16), activations=("linear",))  # (256 + 16) x 4 = 1,088 bytes
    with pytest.raises(ValueError, match=r"MLP.init: the parameters would take 0.0 GiB \(272 float32 values\), more than the 0.0 GiB of memory of cpu:0"):  # fmt: skip
        wide.init(key)
    net = jaxbp.Sequential((Dense(16),), input_shape=(16,))
    with pytest.raises(ValueError, match=r"Sequential.init: .*\(272 float64 values\)"):
        net.init(key, jnp.float64)


def test_a_layer_whose_size_overflows_is_refused_not_an_abort() -> None:
    # XLA aborted the process: "overflow in static extent product" for (2**31 - 1, 2**31 - 1)
    script = (
        "import jax, jaxbp\n"
        "spec = jaxbp.MLP(sizes=(2**31 - 1, 2**31 - 1), activations=('linear',))\n"
        "try:\n"
        "    spec.init(jax.random.key(0))\n"
        "except ValueError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)  # fmt: skip
    count = (2**31 - 1) * (2**31 - 1) + (2**31 - 1)
    assert result.returncode == 0, result.stderr[-500:]
    assert "MLP.init: the parameters would take" in result.stdout
    assert f"({count:,} float32 values)" in result.stdout


def test_an_ensemble_larger_than_the_devices_memory_is_refused(monkeypatch, key) -> None:
    monkeypatch.setattr(jaxbp.model.checks, "device_memory_bytes", lambda: ("cpu:0", 1000))
    spec = jaxbp.MLP(sizes=(3, 2), activations=("linear",))  # 6 + 2 values, 32 bytes a model
    assert jaxbp.init_ensemble(spec, key, 31)[0]["w"].shape == (31, 3, 2)  # 992 bytes
    with pytest.raises(ValueError, match=r"init_ensemble: the parameters would take .*\(256 float32 values\)"):  # fmt: skip
        jaxbp.init_ensemble(spec, key, 32)
