"""Checkpoint files: exact round trips of any pytree, exact resumption, atomic writes, refusal of
damage, and refusal of edited contents whose checksum was recomputed (every field, every size)."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import json
import os
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbp
from jaxbp.training import checkpoint
from jaxbp.training import files as _files

SPEC = jaxbp.MLP((3, 5, 4, 2), ("tanh", "relu", "linear"))


def make_checkpoint(params, epoch: int = 2, opt_state=None, key=None, spec=SPEC):
    key = jax.random.key(7) if key is None else key
    return checkpoint.Checkpoint(
        params=params,
        opt_state=opt_state,
        key=np.asarray(jax.random.key_data(key)),
        epoch=epoch,
        step=epoch * 10,
        config={"lr": 0.1, "hidden": [5, 4]},
        metrics={"train_loss": [1.5, 0.25]},
        arrays={"mean": np.array([1.0, 2.0, 3.0])},
        spec=spec,
    )


def trees_bitwise_equal(a, b) -> bool:
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    return jax.tree.structure(a) == jax.tree.structure(b) and all(
        np.asarray(x).dtype == np.asarray(y).dtype and np.array_equal(x, y)
        for x, y in zip(leaves_a, leaves_b, strict=True)
    )


def test_round_trip_of_an_mlp_and_adam_state_is_exact(tmp_path, key):
    params = SPEC.init(key, jnp.float32)
    optimizer = optax.adam(1e-3)
    state = optimizer.init(params)
    path = checkpoint.save(tmp_path, make_checkpoint(params, opt_state=state), keep=3)
    assert path.name == "checkpoint-00000002.jaxbp"
    loaded = checkpoint.load(path, opt_state=optimizer.init(params))
    assert loaded.spec == SPEC
    # No template for params: the list of dicts is rebuilt from the paths [i]['w'].
    assert trees_bitwise_equal(loaded.params, jax.tree.map(np.asarray, params))
    assert trees_bitwise_equal(loaded.opt_state, jax.tree.map(np.asarray, state))
    assert (loaded.epoch, loaded.step) == (2, 20)
    assert loaded.config == {"lr": 0.1, "hidden": [5, 4]}
    assert loaded.metrics == {"train_loss": [1.5, 0.25]}
    np.testing.assert_array_equal(loaded.arrays["mean"], [1.0, 2.0, 3.0])
    wrapped = jax.random.wrap_key_data(jnp.asarray(loaded.key))
    assert np.array_equal(jax.random.key_data(wrapped), jax.random.key_data(jax.random.key(7)))


def test_any_params_pytree_round_trips_by_tree_path(tmp_path):
    params = {
        "encoder": {"w1": np.arange(6.0).reshape(2, 3), "b1": np.ones(3, np.float32)},
        "head": (np.full((3, 1), 2.0), np.int32(4)),
    }
    optimizer = optax.adam(0.1)
    state = optimizer.init(params)
    path = checkpoint.save(tmp_path, make_checkpoint(params, opt_state=state, spec=None), keep=1)
    with zipfile.ZipFile(io.BytesIO(path.read_bytes().split(b"\n", 2)[2])) as archive:
        names = set(archive.namelist())
    assert "params['encoder']['w1'].npy" in names and "params['head'][1].npy" in names
    assert "opt_state[0].mu['encoder']['b1'].npy" in names
    loaded = checkpoint.load(path, params=params, opt_state=optimizer.init(params))
    assert loaded.spec is None
    assert trees_bitwise_equal(loaded.params, params)
    assert trees_bitwise_equal(loaded.opt_state, state)


@pytest.mark.parametrize(
    ("template", "match"),
    [
        ({"a": np.zeros(2), "c": np.zeros(3)}, r"params\['c'\] is missing but the model needs"),
        ({"a": np.zeros(2)}, r"params\['b'\] is saved but the model has no such leaf"),
        ({"a": np.zeros(3), "b": np.zeros(3)}, r"params\['a'\] is float64\[2\] but the model needs float64\[3\]"),
        ({"a": np.zeros(2, np.float32), "b": np.zeros(3)}, r"params\['a'\] is float64\[2\] but the model needs float32\[2\]"),
    ],
    ids=["renamed", "extra-leaf", "shape", "dtype"],
)  # fmt: skip
def test_a_template_that_does_not_fit_is_refused_by_path(tmp_path, template, match):
    params = {"a": np.ones(2), "b": np.ones(3)}
    path = checkpoint.save(tmp_path, make_checkpoint(params, spec=None), keep=1)
    with pytest.raises(checkpoint.CheckpointError, match=match):
        checkpoint.load(path, params=template)


def test_optimizer_state_of_another_optimizer_is_refused(tmp_path, key):
    params = SPEC.init(key)
    state = optax.adam(0.1).init(params)
    path = checkpoint.save(tmp_path, make_checkpoint(params, opt_state=state), keep=3)
    template = optax.sgd(0.1, momentum=0.9).init(params)
    with pytest.raises(checkpoint.CheckpointError, match=r"opt_state\[0\]\.trace\[0\]\['b'\] is missing"):  # fmt: skip
        checkpoint.load(path, opt_state=template)


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
    state = history.get("opt_state")
    path = checkpoint.save(tmp_path, make_checkpoint(first, 2, state, shuffle), keep=1)
    template = None if state is None else settings["optimizer"].init(params)
    loaded = checkpoint.load(path, params=params, opt_state=template)
    restored_key = jax.random.wrap_key_data(jnp.asarray(loaded.key))
    resumed, _ = jaxbp.fit(
        SPEC, "mse", jax.tree.map(jnp.asarray, loaded.params), x, y, epochs=2, start_epoch=2,
        opt_state=None if template is None else jax.tree.map(jnp.asarray, loaded.opt_state),
        **{**common, "key": restored_key},
    )  # fmt: skip
    assert trees_bitwise_equal(resumed, straight)
    assert not trees_bitwise_equal(first, straight)  # the continuation really trained


def test_a_checkpoint_renamed_to_another_epoch_is_refused(tmp_path, key):
    # the newest checkpoint is found by name: epoch 2's state named epoch 9 would shadow later ones
    params = SPEC.init(key)
    saved = checkpoint.save(tmp_path, make_checkpoint(params, 2), keep=3)
    renamed = saved.rename(tmp_path / "checkpoint-00000009.jaxbp")
    assert checkpoint.resolve(tmp_path) == renamed
    with pytest.raises(checkpoint.CheckpointError, match=r"checkpoint-00000009.jaxbp: its name says epoch 9 but it holds the state after epoch 2"):  # fmt: skip
        checkpoint.load(renamed)
    elsewhere = (tmp_path / "sub").mkdir() or tmp_path / "sub" / "model.jaxbp"  # another name: kept
    assert checkpoint.load(renamed.rename(elsewhere)).epoch == 2


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_resolving_a_named_pipe_says_what_it_is(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(checkpoint.CheckpointError, match=r"pipe: not a regular file nor a directory"):  # fmt: skip
        checkpoint.resolve(tmp_path / "pipe")
    with pytest.raises(checkpoint.CheckpointError, match=r"no such run directory or checkpoint file"):  # fmt: skip
        checkpoint.resolve(tmp_path / "missing")


def test_keeps_only_the_last_k(tmp_path, key):
    params = SPEC.init(key)
    for epoch in range(5):
        checkpoint.save(tmp_path, make_checkpoint(params, epoch), keep=2)
    names = [path.name for path in checkpoint.list_checkpoints(tmp_path)]
    assert names == ["checkpoint-00000003.jaxbp", "checkpoint-00000004.jaxbp"]
    assert checkpoint.resolve(tmp_path).name == "checkpoint-00000004.jaxbp"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_rotation_never_deletes_a_users_file_that_only_has_the_name(tmp_path, key):
    params = SPEC.init(key)
    notes = tmp_path / "checkpoint-00000001.jaxbp"
    notes.write_text("my notes, not a checkpoint\n")
    target = tmp_path / "elsewhere.txt"
    target.write_text("a file the link points to\n")
    (tmp_path / "checkpoint-00000000.jaxbp").symlink_to(target)
    for epoch in range(2, 5):
        checkpoint.save(tmp_path, make_checkpoint(params, epoch), keep=1)
    assert notes.read_text() == "my notes, not a checkpoint\n"
    assert (tmp_path / "checkpoint-00000000.jaxbp").is_symlink()
    assert target.read_text() == "a file the link points to\n"
    assert not (tmp_path / "checkpoint-00000002.jaxbp").exists()  # ours are still rotated
    assert not (tmp_path / "checkpoint-00000003.jaxbp").exists()
    assert (tmp_path / "checkpoint-00000004.jaxbp").exists()


def test_a_users_file_with_a_checkpoints_name_is_never_overwritten(tmp_path, key):
    params = SPEC.init(key)
    notes = tmp_path / "checkpoint-00000002.jaxbp"
    notes.write_text("my notes, not a checkpoint\n")
    target = tmp_path / "elsewhere.txt"
    target.write_text("a file the link points to\n")
    (tmp_path / "checkpoint-00000003.jaxbp").symlink_to(target)
    for epoch in (2, 3):
        with pytest.raises(ValueError, match=r"checkpoint-0000000\d.jaxbp exists and is not a jaxbp checkpoint"):  # fmt: skip
            checkpoint.save(tmp_path, make_checkpoint(params, epoch), keep=1)
    assert notes.read_text() == "my notes, not a checkpoint\n"
    assert (tmp_path / "checkpoint-00000003.jaxbp").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint-00000002.jaxbp", "checkpoint-00000003.jaxbp", "elsewhere.txt",
    ]  # fmt: skip
    checkpoint.save(tmp_path, make_checkpoint(params, 4), keep=1)  # its own name: written
    checkpoint.save(tmp_path, make_checkpoint(params, 4), keep=1)  # and replaced by the next
    assert checkpoint.load(tmp_path / "checkpoint-00000004.jaxbp").epoch == 4


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


def test_a_full_disk_raises_a_write_error_naming_the_file_and_its_size(tmp_path, key, monkeypatch):
    params = SPEC.init(key)
    path = checkpoint.save(tmp_path, make_checkpoint(params, 1), keep=3)
    before = path.read_bytes()

    def full(handle, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", lambda fd: full(fd, b""))
    with pytest.raises(_files.WriteError) as caught:
        checkpoint.save(tmp_path, make_checkpoint(params, 2), keep=3)
    monkeypatch.undo()
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename.endswith("checkpoint-00000002.jaxbp")
    assert caught.value.nbytes > len(before) // 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    assert path.read_bytes() == before


def test_non_finite_state_is_never_written(tmp_path, key):
    params = SPEC.init(key)
    params[1]["b"] = params[1]["b"].at[2].set(np.inf)
    with pytest.raises(ValueError, match=r"checkpoint.save: params\[1\]\['b'\] holds NaN or infinite"):  # fmt: skip
        checkpoint.save(tmp_path, make_checkpoint(params), keep=1)
    assert list(tmp_path.iterdir()) == []


def test_a_dtype_load_cannot_read_is_never_written(tmp_path, key):
    # bfloat16 was written as raw void bytes that load refused: a run's checkpoints unloadable
    params = jax.tree.map(lambda leaf: leaf.astype(jnp.bfloat16), SPEC.init(key))
    with pytest.raises(ValueError, match=r"checkpoint.save: params\[0\]\['b'\] has dtype bfloat16, which load cannot read"):  # fmt: skip
        checkpoint.save(tmp_path, make_checkpoint(params), keep=1)
    assert list(tmp_path.iterdir()) == []


def test_a_typed_key_and_numpy_numbers_in_metrics_are_saved_as_plain_values(tmp_path, key):
    state = make_checkpoint(SPEC.init(key))
    state = dataclasses.replace(
        state,
        key=jax.random.key(7),  # typed, not its key_data
        metrics={"loss": np.float32(0.5), "epoch": np.int64(3), "done": np.bool_(True)},
        config={"lr": jnp.float32(0.25)},
    )
    loaded = checkpoint.load(checkpoint.save(tmp_path, state, keep=1))
    np.testing.assert_array_equal(loaded.key, jax.random.key_data(jax.random.key(7)))
    assert loaded.metrics == {"loss": 0.5, "epoch": 3, "done": True}
    assert loaded.config == {"lr": 0.25}


@pytest.mark.parametrize(
    ("metrics", "found"),
    [
        ({"loss": np.zeros(3)}, r"found a ndarray"),
        ({"loss": object()}, r"found a object"),
        ({(1, 2): 0.5}, r"keys must be str"),
    ],
    ids=["array", "object", "tuple-key"],
)
def test_metrics_json_cannot_hold_are_refused_and_nothing_is_written(tmp_path, key, metrics, found):
    state = dataclasses.replace(make_checkpoint(SPEC.init(key)), metrics=metrics)
    with pytest.raises(TypeError, match=rf"checkpoint.save: config and metrics must be JSON.*{found}"):  # fmt: skip
        checkpoint.save(tmp_path, state, keep=1)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("epoch", "options", "message"),
    [
        (10**8, {}, "epoch must be an int 0 to 99999999"),
        (-1, {}, "epoch must be an int 0 to 99999999"),
        (2, {"step_in_epoch": -3}, "step_in_epoch must be an int 0 to 2147483647"),
        (2, {"keep": 0}, "keep must be an int >= 1"),
        (2, {"keep": -1}, "keep must be an int >= 1"),
    ],
    ids=["epoch-beyond-the-name", "epoch-negative", "step-negative", "keep-0", "keep-negative"],
)
def test_a_position_or_keep_no_name_can_hold_is_refused(tmp_path, key, epoch, options, message):
    # checkpoint-100000000.jaxbp was written but never listed, so never resolved nor rotated;
    # keep=-1 deleted the oldest file, keep=0 kept all
    params = SPEC.init(key)
    checkpoint.save(tmp_path, make_checkpoint(params, 1), keep=1)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ValueError, match=f"checkpoint.save: {message}"):
        checkpoint.save(tmp_path, make_checkpoint(params, epoch), **{"keep": 1, **options})
    assert sorted(p.name for p in tmp_path.iterdir()) == before == ["checkpoint-00000001.jaxbp"]


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
        "no-header-line": checkpoint.MAGIC + b"x" * 5000,
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
        ("no-header-line", r"damaged checkpoint \(unreadable header\)"),
        ("newer-version", r"format version 99, but this jaxbp reads version 2"),
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


# --- edited checkpoints whose checksum was recomputed ------------------------------------------


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _members(path) -> dict[str, bytes]:
    payload = path.read_bytes().split(b"\n", 2)[2]
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _rewrite(path, members: dict[str, bytes], compressed: frozenset[str] = frozenset()) -> None:
    """Write ``members`` as the payload with a correct length and SHA-256, as an editor would."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            kind = zipfile.ZIP_DEFLATED if name in compressed else zipfile.ZIP_STORED
            archive.writestr(name, content, compress_type=kind)
    payload = buffer.getvalue()
    header = {"format_version": 2, "payload_bytes": len(payload), "payload_sha256": hashlib.sha256(payload).hexdigest()}  # fmt: skip
    path.write_bytes(checkpoint.MAGIC + json.dumps(header).encode() + b"\n" + payload)


def _edit_meta(**changes):
    def edit(members):
        meta = json.loads(np.load(io.BytesIO(members["meta.npy"])).tobytes())
        meta.update(changes)
        members["meta.npy"] = _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8))

    return edit


def _set(name, array):
    def edit(members):
        members[name] = _npy(np.asarray(array)) if isinstance(array, np.ndarray) else array

    return edit


def _object_member(members):
    header = {"descr": "|O", "fortran_order": False, "shape": (1,)}
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    members["params[0]['w'].npy"] = buffer.getvalue() + b"\x80\x04N."  # a pickle of None


def _short_member(members):
    members["params[0]['w'].npy"] = _npy(np.zeros((3, 5), np.float32))[:-8]


def _nested_meta(members):
    members["meta.npy"] = _npy(np.frombuffer(b"[" * 100_000, np.uint8))


EDITS = [
    ("negative-epoch", _edit_meta(epoch=-1), r"meta epoch is -1; expected an integer from 0"),
    ("text-epoch", _edit_meta(epoch="2"), r"meta epoch is 2; expected an integer"),
    ("huge-step", _edit_meta(step=2**40), r"meta step is 1099511627776; expected an integer from 0 to 2147483647"),
    ("config-not-object", _edit_meta(config=[1]), r"meta config is not a JSON object"),
    ("bad-spec", _edit_meta(spec={"sizes": [3, -5, 2], "activations": ["tanh", "linear"], "bias": True, "init_scheme": None}), r"meta spec is not a valid MLP"),
    ("spec-wrong-type", _edit_meta(spec={"sizes": 3}), r"meta spec is not a valid MLP"),
    ("bad-layer-spec", _edit_meta(spec={"input_shape": [3], "layers": [{"type": "Conv9D"}]}), r"meta spec: layers\[0\]: expected an object with \"type\" one of"),
    ("layer-spec-other-params", _edit_meta(spec={"input_shape": [3], "layers": [{"type": "Dense", "features": 2}]}), r"params\[0\]\['b'\] is float32\[5\] but the model needs float32\[2\]"),
    ("nested-meta", _nested_meta, r"meta is not readable JSON"),
    ("nan-param", _set("params[0]['w'].npy", np.full((3, 5), np.nan, np.float32)), r"holds 15 NaN or infinite values"),
    ("inf-scale", _set("arrays/mean.npy", np.array([1.0, np.inf, 0.0])), r"'arrays/mean' holds 1 NaN or infinite"),
    ("object-dtype", _object_member, r"has dtype object; only numbers are read"),
    ("complex-dtype", _set("params[0]['w'].npy", np.zeros((3, 5), np.complex64)), r"has dtype complex64; only numbers"),
    ("short-member", _short_member, r"its header says float32\[3, 5\] \(60 bytes\) but it holds 52 bytes"),
    ("key-shape", _set("key.npy", np.zeros(3, np.uint32)), r"the shuffling key is uint32\[3\]; expected uint32\[2\]"),
    ("no-key", lambda members: members.pop("key.npy"), r"the shuffling key is missing"),
    ("extra-member", _set("surprise.npy", np.zeros(1)), r"unexpected member 'surprise'"),
    ("not-npy", _set("notes.txt", b"hello"), r"unexpected or repeated member 'notes.txt'"),
    ("gap-in-layers", lambda m: m.update({"params[7]['w'].npy": _npy(np.zeros(1))}), r"list indices \[0, 1, 2, 7\] have gaps"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "edit", "match"), EDITS, ids=[c[0] for c in EDITS])
def test_an_edited_checkpoint_with_a_recomputed_checksum_is_refused(tmp_path, key, case, edit, match):  # fmt: skip
    path = checkpoint.save(tmp_path, make_checkpoint(SPEC.init(key, jnp.float32)), keep=1)
    members = _members(path)
    edit(members)
    _rewrite(path, members)
    edited = path.read_bytes()
    with pytest.raises(checkpoint.CheckpointError, match=match) as caught:
        checkpoint.load(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)
    assert path.read_bytes() == edited


def test_a_compressed_member_is_refused_without_expanding_it(tmp_path, key):
    # 256 MiB of zeros compress to a quarter of a megabyte: refused from its declared form,
    # before any of it is inflated (the check reads the zip directory only).
    path = checkpoint.save(tmp_path, make_checkpoint(SPEC.init(key, jnp.float32)), keep=1)
    members = _members(path)
    big = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.float64))
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {**big, "shape": (2**25,)})
    members["arrays/big.npy"] = buffer.getvalue() + bytes(2**28)
    _rewrite(path, members, compressed=frozenset({"arrays/big.npy"}))
    assert path.stat().st_size < 2**21
    with pytest.raises(checkpoint.CheckpointError, match=r"'arrays/big' is compressed; jaxbp writes uncompressed members only"):  # fmt: skip
        checkpoint.load(path)


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path, key):
    path = checkpoint.save(tmp_path, make_checkpoint(SPEC.init(key)), keep=1)
    with pytest.raises(checkpoint.CheckpointError, match=r"more than the 1,000 a checkpoint may have"):  # fmt: skip
        checkpoint.load(path, max_bytes=1000)


def test_a_fifo_or_a_device_is_refused_without_reading(tmp_path, key):
    checkpoint.save(tmp_path, make_checkpoint(SPEC.init(key)), keep=1)
    os.mkfifo(tmp_path / "checkpoint-00000007.jaxbp")  # opening it would block forever
    with pytest.raises(checkpoint.CheckpointError, match=r"checkpoint-00000007.jaxbp: not a regular file"):  # fmt: skip
        checkpoint.load(checkpoint.resolve(tmp_path))
    (tmp_path / "checkpoint-00000009.jaxbp").symlink_to("/dev/zero")  # reading would never end
    with pytest.raises(checkpoint.CheckpointError, match=r"checkpoint-00000009.jaxbp: not a regular file"):  # fmt: skip
        checkpoint.load(checkpoint.resolve(tmp_path))


def test_resolve_explains_a_missing_run(tmp_path):
    with pytest.raises(
        checkpoint.CheckpointError, match="no such run directory or checkpoint file"
    ):
        checkpoint.resolve(tmp_path / "absent")
    with pytest.raises(checkpoint.CheckpointError, match=r"no checkpoint-\*.jaxbp file"):
        checkpoint.resolve(tmp_path)
