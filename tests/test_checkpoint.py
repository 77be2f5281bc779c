"""Checkpoint files: exact round trips, exact resumption, atomic writes, and refusal of damage."""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbp
from jaxbp import checkpoint

SPEC = jaxbp.MLP((3, 5, 4, 2), ("tanh", "relu", "linear"))


def make_checkpoint(params, epoch: int = 2, opt_state=(), key=None) -> checkpoint.Checkpoint:
    key = jax.random.key(7) if key is None else key
    return checkpoint.Checkpoint(
        SPEC, params, [np.asarray(leaf) for leaf in jax.tree.leaves(opt_state)],
        np.asarray(jax.random.key_data(key)), epoch, epoch * 10,
        {"lr": 0.1, "hidden": [5, 4]}, {"train_loss": [1.5, 0.25]},
        {"mean": np.array([1.0, 2.0, 3.0])},
    )  # fmt: skip


def trees_bitwise_equal(a, b) -> bool:
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    return jax.tree.structure(a) == jax.tree.structure(b) and all(
        np.asarray(x).dtype == np.asarray(y).dtype and np.array_equal(x, y, equal_nan=True)
        for x, y in zip(leaves_a, leaves_b, strict=True)
    )


def test_round_trip_is_exact(tmp_path, key):
    params = SPEC.init(key, jnp.float32)
    optimizer = optax.adam(1e-3)
    state = optimizer.init(params)
    path = checkpoint.save(tmp_path, make_checkpoint(params, opt_state=state), keep=3)
    assert path.name == "checkpoint-00000002.jaxbp"
    loaded = checkpoint.load(path)
    assert loaded.spec == SPEC
    assert trees_bitwise_equal(loaded.params, jax.tree.map(np.asarray, params))
    restored = checkpoint.restore_opt_state(path, loaded, optimizer.init(params))
    assert trees_bitwise_equal(restored, state)
    assert (loaded.epoch, loaded.step) == (2, 20)
    assert loaded.config == {"lr": 0.1, "hidden": [5, 4]}
    assert loaded.metrics == {"train_loss": [1.5, 0.25]}
    np.testing.assert_array_equal(loaded.arrays["mean"], [1.0, 2.0, 3.0])
    wrapped = jax.random.wrap_key_data(jnp.asarray(loaded.key))
    assert np.array_equal(jax.random.key_data(wrapped), jax.random.key_data(jax.random.key(7)))


@pytest.mark.parametrize("optimizer_name", ["sgd", "momentum"])
def test_n_steps_save_restore_m_steps_equals_n_plus_m_straight(tmp_path, key, optimizer_name):
    x = jax.random.normal(jax.random.key(1), (40, 3), jnp.float32)
    y = jax.random.normal(jax.random.key(2), (40, 2), jnp.float32)
    params = SPEC.init(key, jnp.float32)
    shuffle = jax.random.key(3)
    if optimizer_name == "sgd":
        settings = {"lr": optax.exponential_decay(0.05, 4, 0.9), "optimizer": None}
    else:
        settings = {"lr": None, "optimizer": optax.sgd(0.05, momentum=0.9)}
    common = {"batch_size": 8, "key": shuffle, **settings}
    straight, _ = jaxbp.fit(SPEC, "mse", params, x, y, epochs=4, **common)

    # N = M = 2 epochs, so the continuation reuses the first call's compiled program.
    first, history = jaxbp.fit(SPEC, "mse", params, x, y, epochs=2, **common)
    state = history.get("opt_state", ())
    path = checkpoint.save(tmp_path, make_checkpoint(first, 2, state, shuffle), keep=1)
    loaded = checkpoint.load(path)
    restored_state = None
    if optimizer_name != "sgd":
        restored_state = checkpoint.restore_opt_state(path, loaded, settings["optimizer"].init(params))  # fmt: skip
    restored_key = jax.random.wrap_key_data(jnp.asarray(loaded.key))
    resumed, _ = jaxbp.fit(
        SPEC, "mse", jax.tree.map(jnp.asarray, loaded.params), x, y, epochs=2, start_epoch=2,
        opt_state=restored_state, **{**common, "key": restored_key},
    )  # fmt: skip
    assert trees_bitwise_equal(resumed, straight)
    assert not trees_bitwise_equal(first, straight)  # the continuation really trained


def test_keeps_only_the_last_k(tmp_path, key):
    params = SPEC.init(key)
    for epoch in range(5):
        checkpoint.save(tmp_path, make_checkpoint(params, epoch), keep=2)
    names = [path.name for path in checkpoint.list_checkpoints(tmp_path)]
    assert names == ["checkpoint-00000003.jaxbp", "checkpoint-00000004.jaxbp"]
    assert checkpoint.resolve(tmp_path).name == "checkpoint-00000004.jaxbp"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_crash_while_writing_leaves_the_previous_checkpoint(tmp_path, key, monkeypatch):
    params = SPEC.init(key)
    path = checkpoint.save(tmp_path, make_checkpoint(params, 1), keep=3)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("simulated power cut during rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        checkpoint.save(tmp_path, make_checkpoint(params, 1), keep=3)  # the same name
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left
    checkpoint.load(path)


def _damage(data: bytes) -> dict[str, bytes]:
    header_end = data.index(b"\n", len(checkpoint.MAGIC)) + 1
    header = json.loads(data[len(checkpoint.MAGIC) : header_end])
    flipped = bytearray(data)
    flipped[-100] ^= 0x01
    newer = json.dumps({**header, "format_version": 99}).encode() + b"\n"
    return {
        "flipped-bit": bytes(flipped),
        "truncated": data[:-10],
        "no-magic": b"something else" + data,
        "bad-header": checkpoint.MAGIC + b"{not json\n" + data[header_end:],
        "newer-version": checkpoint.MAGIC + newer + data[header_end:],
        "empty": b"",
    }


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("flipped-bit", r"damaged checkpoint \(SHA-256 checksum mismatch\)"),
        ("truncated", r"damaged checkpoint \(truncated: \d+ of \d+ payload bytes\)"),
        ("no-magic", r"not a jaxbp checkpoint"),
        ("bad-header", r"damaged checkpoint \(unreadable header\)"),
        ("newer-version", r"format version 99, but this jaxbp reads version 1"),
        ("empty", r"not a jaxbp checkpoint"),
    ],
)
def test_damaged_files_are_refused_and_left_alone(tmp_path, key, case, match):
    path = checkpoint.save(tmp_path, make_checkpoint(SPEC.init(key)), keep=3)
    damaged = _damage(path.read_bytes())[case]
    path.write_bytes(damaged)
    with pytest.raises(checkpoint.CheckpointError, match=match):
        checkpoint.load(path)
    assert path.read_bytes() == damaged


@pytest.mark.parametrize(
    ("spec", "dtype", "match"),
    [
        (jaxbp.MLP((3, 6, 4, 2), ("tanh", "relu", "linear")), jnp.float32, r"holds a 3-5-4-2 \(tanh, relu, linear\) network but a 3-6-4-2"),
        (jaxbp.MLP((3, 5, 4, 2), ("relu", "relu", "linear")), jnp.float32, r"network but a 3-5-4-2 \(relu, relu, linear\)"),
        (SPEC, jnp.float64, r"params\[0\]\['w'\] is float32\[3, 5\] but the model needs float64\[3, 5\]"),
    ],
    ids=["sizes", "activations", "dtype"],
)  # fmt: skip
def test_another_architecture_or_dtype_is_refused(tmp_path, key, spec, dtype, match):
    path = checkpoint.save(tmp_path, make_checkpoint(SPEC.init(key, jnp.float32)), keep=3)
    loaded = checkpoint.load(path)
    with pytest.raises(checkpoint.CheckpointError, match=match):
        checkpoint.check_compatible(path, loaded, spec, spec.init(key, dtype))


def test_optimizer_state_of_another_optimizer_is_refused(tmp_path, key):
    params = SPEC.init(key)
    path = checkpoint.save(tmp_path, make_checkpoint(params, opt_state=optax.adam(0.1).init(params)), keep=3)  # fmt: skip
    loaded = checkpoint.load(path)
    with pytest.raises(checkpoint.CheckpointError, match="does not fit the optimizer's"):
        checkpoint.restore_opt_state(path, loaded, optax.sgd(0.1, momentum=0.9).init(params))


def test_resolve_explains_a_missing_run(tmp_path):
    with pytest.raises(
        checkpoint.CheckpointError, match="no such run directory or checkpoint file"
    ):
        checkpoint.resolve(tmp_path / "absent")
    with pytest.raises(checkpoint.CheckpointError, match=r"no checkpoint-\*.jaxbp file"):
        checkpoint.resolve(tmp_path)
