"""Streamed sources: which rows each batch holds, resuming, process slices, bad batches."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import hypothesis.strategies as st
import jax
import numpy as np
import pytest
from hypothesis import given

import jaxbp
from benchmarks import make_synthetic
from jaxbp.data import _rows, order, sources
from jaxbp.data.sources import ArraySource, BatchError, IterableSource, chunk_plan, next_chunk_size

N, FEATURES, BATCH = 23, 3, 4  # 5 batches per epoch, 3 rows left out of every epoch


def make_data(n=N):
    x = np.arange(n * FEATURES, dtype=np.float32).reshape(n, FEATURES)
    y = np.arange(n, dtype=np.float32)[:, None] * 10
    return x, y


def all_chunks(source, *, key, first, total, chunk_steps, every=None):
    plan = chunk_plan(first, total, chunk_steps, every)
    return list(sources.array_chunks(source, batch_size=BATCH, key=key, plan=plan))


def batch_rows(chunks):
    """The row index of every example of every batch (y holds 10 * row)."""
    return np.concatenate([np.asarray(c.y)[..., 0] / 10 for c in chunks]).astype(int)


def test_unshuffled_batches_are_consecutive_rows_and_chunks_cross_epochs():
    source = ArraySource("fit", *make_data())
    chunks = all_chunks(source, key=None, first=0, total=10, chunk_steps=3)
    assert [(c.first, c.steps) for c in chunks] == [(0, 3), (3, 3), (6, 3), (9, 1)]
    expected = np.concatenate([np.arange(20).reshape(5, 4)] * 2)  # 2 epochs, rows 20..22 unused
    np.testing.assert_array_equal(batch_rows(chunks), expected)
    x, _ = make_data()
    np.testing.assert_array_equal(chunks[0].x, x[:12].reshape(3, 4, FEATURES))


def test_shuffled_epochs_use_fold_in_permutations(key):
    source = ArraySource("fit", *make_data())
    rows = batch_rows(all_chunks(source, key=key, first=0, total=15, chunk_steps=4))
    for epoch in range(3):
        order = np.asarray(jax.random.permutation(jax.random.fold_in(key, epoch), N))
        np.testing.assert_array_equal(rows[epoch * 5 : (epoch + 1) * 5], order[:20].reshape(5, 4))
    # every epoch: 20 distinct rows, not the same set twice in a row
    assert all(len(set(rows[e * 5 : (e + 1) * 5].ravel())) == 20 for e in range(3))
    assert not np.array_equal(rows[:5], rows[5:10])


@pytest.mark.parametrize("key_seed", [None, 3], ids=["ordered", "shuffled"])
@pytest.mark.parametrize("resume_at", [1, 5, 7, 13])
def test_resume_at_any_step_gives_the_same_remaining_batches(key_seed, resume_at):
    key = None if key_seed is None else jax.random.key(key_seed)
    source = ArraySource("fit", *make_data())
    whole = all_chunks(source, key=key, first=0, total=15, chunk_steps=4)
    rest = all_chunks(source, key=key, first=resume_at, total=15, chunk_steps=4)
    np.testing.assert_array_equal(
        np.concatenate([c.x for c in rest]), np.concatenate([c.x for c in whole])[resume_at:]
    )
    assert rest[0].first == resume_at


def test_each_process_reads_its_slice_of_every_batch(key):
    x, y = make_data()
    whole = all_chunks(ArraySource("fit", x, y), key=key, first=0, total=7, chunk_steps=3)
    parts = [
        all_chunks(
            ArraySource("fit", x, y, process_index=p, process_count=2),
            key=key,
            first=0,
            total=7,
            chunk_steps=3,
        )
        for p in range(2)
    ]
    for i, chunk in enumerate(whole):
        assert parts[0][i].x.shape == (chunk.steps, BATCH // 2, FEATURES)
        joined = np.concatenate([parts[0][i].x, parts[1][i].x], axis=1)
        np.testing.assert_array_equal(joined, chunk.x)


@pytest.mark.parametrize("process_count", [2, 4])
@pytest.mark.parametrize("features", [FEATURES, 64], ids=["small-rows", "wide-rows"])
def test_each_process_asks_the_reader_of_a_memmap_for_only_its_rows(
    tmp_path, key, monkeypatch, process_count, features
):
    reads: list[np.ndarray] = []
    original = sources.row_reader

    def recording(array):  # x's reader records the rows of every read
        read = original(array)
        if array.shape[1:] != (features,):
            return read
        return lambda rows: (reads.append(rows.copy()), read(rows))[1]

    monkeypatch.setattr(sources, "row_reader", recording)
    x = np.arange(N * features, dtype=np.float32).reshape(N, features)  # read with preadv
    np.save(tmp_path / "x.npy", x)
    y = make_data()[1]
    memmap = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert _rows._file_location(memmap) is not None  # rows of any width: preadv
    whole = all_chunks(ArraySource("fit", memmap, y), key=key, first=0, total=7, chunk_steps=3)
    part = BATCH // process_count
    parts, local = [], []
    for process in range(process_count):
        del reads[:]
        source = ArraySource("fit", memmap, y, process_index=process, process_count=process_count)
        parts.append(all_chunks(source, key=key, first=0, total=7, chunk_steps=3))
        local.append(np.concatenate([rows.reshape(-1, part) for rows in reads]))
    # side by side, in process order, the processes' reads are every step's global batch
    np.testing.assert_array_equal(np.concatenate(local, axis=1), batch_rows(whole))
    assert [rows.size for rows in local] == [7 * BATCH // process_count] * process_count
    for i, chunk in enumerate(whole):  # what each process got is x at the rows it read
        joined = np.concatenate([p[i].x for p in parts], axis=1)
        np.testing.assert_array_equal(joined, chunk.x)


def test_a_batch_that_does_not_split_over_processes_is_refused():
    source = ArraySource("fit", *make_data(), process_index=0, process_count=3)
    with pytest.raises(ValueError, match="does not split over 3 processes"):
        all_chunks(source, key=None, first=0, total=2, chunk_steps=2)


def test_npy_paths_open_as_memmaps_and_read_the_same_rows(tmp_path, key):
    x, y = make_data()
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    source = ArraySource("fit", tmp_path / "x.npy", str(tmp_path / "y.npy"))
    assert isinstance(source.x, np.memmap) and isinstance(source.y, np.memmap)
    rows = np.array([7, 2, 19, 2, 11])
    got_x, got_y = source.read(rows)
    np.testing.assert_array_equal(got_x, x[rows])
    np.testing.assert_array_equal(got_y, y[rows])
    assert type(got_x) is np.ndarray  # a copy in memory, not a view of the file


def test_bad_paths_and_mismatched_rows_are_refused(tmp_path):
    np.savez(tmp_path / "x.npz", x=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"fit: x is the path .*only \.npy files"):
        ArraySource("fit", tmp_path / "x.npz", np.zeros((3, 1)))
    with pytest.raises(ValueError, match="fit: cannot open y"):
        ArraySource("fit", np.zeros((3, 2)), tmp_path / "missing.npy")
    with pytest.raises(ValueError, match=r"x has 3 examples \(shape \(3, 2\)\) but y has 4"):
        ArraySource("fit", np.zeros((3, 2)), np.zeros((4, 1)))


def test_a_failing_read_names_the_batches(tmp_path):
    x = np.ones((N, 80), np.float32)  # 320-byte rows: read from the file with pread
    np.save(tmp_path / "x.npy", x)
    source = ArraySource("fit", np.load(tmp_path / "x.npy", mmap_mode="r"), make_data()[1])
    size = (tmp_path / "x.npy").stat().st_size
    with open(tmp_path / "x.npy", "r+b") as handle:  # rows 10 on are gone
        handle.truncate(size - 320 * (N - 10))
    with pytest.raises(
        BatchError, match=r"batches 2\.\.3 \(from epoch 0, step 2\) failed: .*x\.npy: the file is"
    ) as info:
        all_chunks(source, key=None, first=0, total=5, chunk_steps=2)
    assert info.value.batch_index == 2
    assert info.value.position == sources.Position(0, 2)


@given(
    first=st.integers(0, 50),
    length=st.integers(0, 200),
    chunk_steps=st.integers(1, 40),
    every=st.one_of(st.none(), st.integers(1, 60)),
)
def test_chunk_plan_covers_the_run_and_respects_boundaries(first, length, chunk_steps, every):
    plan = list(chunk_plan(first, first + length, chunk_steps, every))
    assert sum(size for _, size in plan) == length
    index = first
    for start, size in plan:
        assert start == index and size >= 1
        assert size == chunk_steps or (size < chunk_steps and size & (size - 1) == 0)
        if every is not None:  # no chunk crosses a multiple of `every`
            assert start // every == (start + size - 1) // every
        index += size
    sizes = {size for _, size in plan}
    assert len(sizes) <= 1 + chunk_steps.bit_length()


def test_next_chunk_size_at_the_end():
    assert next_chunk_size(10, 8, None, 10) == 0
    assert next_chunk_size(3, 8, None, 10) == 4
    assert next_chunk_size(6, 8, 8, None) == 2


def batches(count, rows=BATCH, start=0):
    x, y = make_data(200)
    return [
        (x[i * rows : (i + 1) * rows], y[i * rows : (i + 1) * rows]) for i in range(start, count)
    ]


def test_iterable_source_stacks_batches_and_reiterates_each_epoch():
    data = batches(5)
    source = IterableSource("fit", data, epochs=2)
    chunks = list(source.chunks(epochs=2, chunk_steps=3, every=None))
    assert [(c.first, c.steps) for c in chunks] == [(0, 3), (3, 3), (6, 3), (9, 1)]
    stacked = np.concatenate([c.x for c in chunks])
    np.testing.assert_array_equal(stacked, np.stack([b[0] for b in data + data]))


def test_a_one_shot_iterator_is_refused_for_several_epochs_and_works_for_one():
    with pytest.raises(ValueError, match=r"one-shot iterator .* for 2 epochs"):
        IterableSource("fit", iter(batches(3)), epochs=2)
    source = IterableSource("fit", iter(batches(3)), epochs=1)
    chunks = list(source.chunks(epochs=1, chunk_steps=2, every=None))
    assert [c.steps for c in chunks] == [2, 1]


def test_torch_dataloader_as_a_source():
    torch = pytest.importorskip("torch")
    x, y = make_data(40)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        batch_size=8,
        drop_last=True,
    )
    chunks = list(
        IterableSource("fit", loader, epochs=1).chunks(epochs=1, chunk_steps=2, every=None)
    )
    np.testing.assert_array_equal(np.concatenate([c.x for c in chunks]), x.reshape(5, 8, FEATURES))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ((np.zeros((3, FEATURES), np.float32), np.zeros((3, 1), np.float32)), r"batch 3 has x of shape \(3, 3\).*batch 0 had shape \(4, 3\).*drop_last"),
        ((np.zeros((4, FEATURES), np.float64), np.zeros((4, 1), np.float32)), r"batch 3 has x of .*float64.*float32"),
        ((np.zeros((4, FEATURES), np.float32), np.zeros((4, 2), np.float32)), r"batch 3 has y of shape \(4, 2\)"),
        (np.zeros((4, FEATURES)), r"batch 3 is shape \(4, 3\) .*not an \(x, y\) pair"),
    ],
    ids=["ragged", "dtype", "y-shape", "not-a-pair"],
)  # fmt: skip
def test_a_bad_batch_midway_names_its_index(bad, message):
    data = [*batches(3), bad, *batches(6, start=4)]
    source = IterableSource("fit", data, epochs=1)
    seen = []
    with pytest.raises(BatchError, match=message) as info:
        for chunk in source.chunks(epochs=1, chunk_steps=2, every=None):
            seen.append(chunk.first)
    assert info.value.batch_index == 3
    assert seen == [0]  # the chunk of batches 0-1 came out; the one holding batch 3 did not


def test_a_loader_that_fails_midway_names_the_batch():
    def loader():
        yield from batches(4)
        raise OSError("connection reset")

    class Reiterable:
        def __iter__(self):
            return loader()

    source = IterableSource("fit", Reiterable(), epochs=2)
    with pytest.raises(BatchError, match=r"reading batch 4 \(epoch 0\) failed: OSError") as info:
        list(source.chunks(epochs=2, chunk_steps=8, every=None))
    assert info.value.batch_index == 4


def test_an_empty_iterable_is_refused():
    with pytest.raises(ValueError, match="yielded no batch"):
        IterableSource("fit", [], epochs=1)


def _status_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def test_reading_a_file_backed_memmap_does_not_grow_the_process(tmp_path, key):
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc/self/status")
    rows, features = 65536, 256  # 64 MiB of float32
    x_path, y_path = make_synthetic.write_dataset(tmp_path, rows, features, block_rows=4096)
    source = ArraySource("fit", x_path, y_path)
    order.draw_epoch_permutation(
        key, 0, rows
    ).block_until_ready()  # compiled: not the read's memory
    before = _status_kib("VmRSS")
    total = 0
    plan = chunk_plan(0, 256, 16, None)  # 16 chunks of 4 MiB, shuffled
    for chunk in sources.array_chunks(source, batch_size=256, key=key, plan=plan):
        total += chunk.x.nbytes
        del chunk
        assert (_status_kib("VmRSS") - before) * 1024 < 24 * 2**20
    assert total == rows * features * 4  # the whole file went through


def test_make_synthetic_writes_a_learnable_float32_data_set_in_blocks(tmp_path):
    x_path, y_path = make_synthetic.write_dataset(tmp_path, 1000, 8, outputs=2, seed=3, block_rows=128)  # fmt: skip
    x, y = np.load(x_path), np.load(y_path)
    assert x.shape == (1000, 8) and y.shape == (1000, 2)
    assert x.dtype == y.dtype == np.float32
    w, v = make_synthetic.teacher(8, 2, 3)
    residual = y - np.tanh(x @ w) @ v  # the teacher explains all but the noise
    assert 0.005 < residual.std() < 0.02
    assert y.std() > 0.1


@pytest.mark.parametrize(
    "view",
    ["whole", "tail-slice", "raw-memmap-offset", "small-rows", "in-memory"],
)
def test_row_readers_read_exactly_the_rows_asked_for(tmp_path, view):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(300, 80)).astype(np.float32)  # 320-byte rows: read with pread
    np.save(tmp_path / "x.npy", data)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    if view == "whole":
        array, want = mapped, data
    elif view == "tail-slice":
        array, want = mapped[37:], data[37:]
    elif view == "raw-memmap-offset":
        (tmp_path / "raw.bin").write_bytes(b"\x01" * 24 + data.tobytes())
        array = np.memmap(tmp_path / "raw.bin", np.float32, "r", offset=24, shape=data.shape)
        want = data
    elif view == "small-rows":  # 8-byte rows out of 320-byte ones: read through the mapping
        array, want = mapped[:, :2], data[:, :2]
    else:
        array, want = data, data
    uses_pread = view in ("whole", "tail-slice", "raw-memmap-offset")
    assert (_rows._file_location(array) is not None) == uses_pread
    read = _rows.row_reader(array)
    for rows in (rng.permutation(len(want))[:50], np.arange(10, 60), np.array([5, 5, 0])):
        got = read(rows.astype(np.int64))
        np.testing.assert_array_equal(got, want[rows])
        assert got.ctypes.data % 64 == 0


def test_a_file_truncated_under_a_memmap_fails_with_os_error(tmp_path):
    data = np.ones((100, 64), np.float32)
    np.save(tmp_path / "x.npy", data)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    read = _rows.row_reader(mapped)
    size = (tmp_path / "x.npy").stat().st_size
    with open(tmp_path / "x.npy", "r+b") as handle:
        handle.truncate(size - 256 * 10)
    with pytest.raises(_rows.FileShrankError, match=f"is {size - 2560:,} bytes but its header"):
        read(np.array([99, 3], np.int64))


# Rows: a lazy view of some rows, transformed as read. Oracle: NumPy's own fancy indexing and
# the transform applied to the materialised array, and fit on that materialised array.


def _standardise_and_one_hot(x, y):
    mean, scale = x.astype(np.float64).mean(0), x.astype(np.float64).std(0)

    def on_x(block):
        return ((block.astype(np.float64) - mean) / scale).astype(np.float32)

    def on_y(block):
        return np.eye(3, dtype=np.float32)[block]

    return on_x, on_y


def test_rows_read_the_indexed_rows_transformed_and_report_the_transformed_shape(tmp_path):
    x = np.arange(40 * 70, dtype=np.float32).reshape(40, 70)  # 280-byte rows: read by preadv
    np.save(tmp_path / "x.npy", x)
    index = np.array([39, 0, 5, 5, 17])
    view = sources.Rows(tmp_path / "x.npy", index, lambda b: b[:, :3] * 2.0)
    assert isinstance(view.array, np.memmap)
    assert (len(view), view.shape, view.dtype, view.ndim) == (5, (5, 3), np.float32, 2)
    np.testing.assert_array_equal(view.read(np.array([4, 0, 2])), x[[17, 39, 5], :3] * 2)
    plain = sources.Rows(x)  # no index, no transform: the array's own rows
    assert plain.shape == x.shape and plain.dtype == x.dtype
    np.testing.assert_array_equal(plain.read(np.array([3, 1])), x[[3, 1]])
    placeholder = view.placeholder()
    assert placeholder.shape == (5, 3) and placeholder.dtype == np.float32
    assert placeholder.strides == (0, 0)  # holds no memory


@pytest.mark.parametrize(
    ("index", "transform", "error", "message"),
    [
        (np.array([0, 40]), None, ValueError, r"rows 0\.\.40, but the array has rows 0\.\.39"),
        (np.array([-1]), None, ValueError, r"no negatives"),
        (np.array([[0, 1]]), None, ValueError, r"index must be 1-D"),
        (np.array([0.0, 1.0]), None, TypeError, r"integer row numbers, got dtype float64"),
        (
            None,
            lambda b: b[1:],
            ValueError,
            r"transform turned a block of 1 rows into shape \(0, 3\)",
        ),
    ],
    ids=["past-the-end", "negative", "2-d", "float", "drops-rows"],
)
def test_rows_refuse_bad_index_and_transform(index, transform, error, message):
    x, _ = make_data(40)
    with pytest.raises(error, match=message):
        sources.Rows(x, index, transform).read(np.array([0, 1]))


def test_rows_refuse_what_is_not_an_array(tmp_path):
    with pytest.raises(TypeError, match=r"Rows: array must be a NumPy array"):
        sources.Rows(np.float32(3.0))
    with pytest.raises(ValueError, match=r"only \.npy files are streamed"):
        sources.Rows(tmp_path / "x.csv")


@pytest.mark.parametrize("shuffle", [False, True], ids=["ordered", "shuffled"])
@pytest.mark.parametrize("on_disk", [False, True], ids=["in-memory", "memmap"])
def test_fit_on_rows_gives_the_params_of_fit_on_the_materialised_rows(tmp_path, shuffle, on_disk):
    import jaxbp

    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 70)).astype(np.float32)  # 280-byte rows: the preadv reader
    y = rng.integers(0, 3, 300)
    if on_disk:
        np.save(tmp_path / "x.npy", x)
        x = np.load(tmp_path / "x.npy", mmap_mode="r")
    index = rng.permutation(300)[:250]
    on_x, on_y = _standardise_and_one_hot(np.asarray(x), y)
    spec = jaxbp.MLP(sizes=(70, 7, 3), activations=("tanh", "linear"))
    params = spec.init(jax.random.key(1), np.float32)
    key = jax.random.key(2) if shuffle else None
    settings = dict(lr=0.1, epochs=3, batch_size=32, key=key)
    x_whole = jax.numpy.asarray(on_x(np.asarray(x)[index]))
    y_whole = jax.numpy.asarray(on_y(y[index]))
    expected, _ = jaxbp.fit(spec, "softmax_cross_entropy", params, x_whole, y_whole, **settings)
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(expected))
    got, history = jaxbp.fit(
        spec, "softmax_cross_entropy", params, sources.Rows(x, index, on_x), sources.Rows(y, index, on_y), **settings
    )  # fmt: skip
    assert "chunks" in history  # it streamed
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_fit_on_rows_refuses_a_non_finite_transformed_chunk():
    import jaxbp

    x, _ = make_data(40)
    y = np.zeros((40, 1), np.float32)
    spec = jaxbp.MLP(sizes=(FEATURES, 1), activations=("linear",))
    params = spec.init(jax.random.key(0), np.float32)
    view = sources.Rows(x, None, lambda b: np.where(b > 100, np.inf, b).astype(np.float32))
    with pytest.raises(BatchError, match=r"batch \d+ holds NaN or infinite values in x"):
        jaxbp.fit(spec, "mse", params, view, y, lr=0.1, epochs=1, batch_size=8)


def test_fit_refuses_a_non_finite_bfloat16_batch_as_it_does_a_float32_one():
    # the check skipped bfloat16 (np.issubdtype does not count it as floating): an iterable of
    # bfloat16 batches with a NaN trained on it and ended with NaN params and a warning
    import ml_dtypes

    x = np.ones((8, FEATURES), ml_dtypes.bfloat16)
    y = np.ones((8, 1), ml_dtypes.bfloat16)
    x[5, 1] = np.nan
    spec = jaxbp.MLP(sizes=(FEATURES, 1), activations=("linear",))
    params = spec.init(jax.random.key(0), jax.numpy.bfloat16)
    batches = [(x[i : i + 2], y[i : i + 2]) for i in range(0, 8, 2)]
    with pytest.raises(BatchError, match=r"fit: batch 2 holds NaN or infinite values in x"):
        jaxbp.fit(spec, "mse", params, batches, None, lr=0.1, epochs=1)


def test_a_validation_set_as_rows_or_a_path_is_read_once_and_gives_the_arrays_losses(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 3))
    y = rng.normal(size=(40, 2))
    np.save(tmp_path / "xv.npy", x)
    np.save(tmp_path / "yv.npy", y)
    spec = jaxbp.MLP(sizes=(3, 4, 2), activations=("tanh", "linear"))
    params = spec.init(jax.random.key(0))
    index = np.array([5, 1, 30, 7, 22, 9])
    kwargs = {"lr": 0.1, "epochs": 2, "batch_size": 8, "validate_every": 5}
    want = jaxbp.fit(spec, "mse", params, x, y, validation=(x[index], y[index]), **kwargs)[1]
    views = (jaxbp.Rows(x, index), jaxbp.Rows(y, index))
    got = jaxbp.fit(spec, "mse", params, x, y, validation=views, **kwargs)[1]
    np.testing.assert_array_equal(got["val_loss"], want["val_loss"])
    whole = jaxbp.fit(spec, "mse", params, x, y, validation=(x, y), **kwargs)[1]
    paths = (tmp_path / "xv.npy", str(tmp_path / "yv.npy"))
    by_path = jaxbp.fit(spec, "mse", params, x, y, validation=paths, **kwargs)[1]
    np.testing.assert_array_equal(by_path["val_loss"], whole["val_loss"])
    with pytest.raises(ValueError, match=r"fit: cannot open the validation file '.*nothere.npy'"):
        jaxbp.fit(spec, "mse", params, x, y, validation=(tmp_path / "nothere.npy", y), **kwargs)


class SameIterator:
    """An iterable whose ``__iter__`` hands back one stored iterator: a second pass is empty."""

    def __init__(self, data):
        self.iterator = iter(data)

    def __iter__(self):
        return self.iterator


def test_a_later_epoch_without_batches_raises_naming_it_after_the_batches_before():
    data = batches(3)
    source = IterableSource("fit", SameIterator(data), epochs=2)
    seen = []
    with pytest.raises(BatchError, match=r"ran out in epoch 1 \(counted from 0\) after 0 batches, none at all; pass an iterable whose __iter__ starts a new pass.*steps_per_epoch=N") as info:  # fmt: skip
        for chunk in source.chunks(epochs=2, chunk_steps=2, every=None):
            seen.append((chunk.first, chunk.steps))
    assert seen == [(0, 2), (2, 1)]  # every batch of epoch 0 came out first
    assert info.value.batch_index == 3


def test_an_epoch_short_of_its_length_raises():
    class Shrinking:  # len() says 4; the second pass gives 2
        def __init__(self):
            self.passes = 0

        def __len__(self):
            return 4

        def __iter__(self):
            self.passes += 1
            return iter(batches(4 if self.passes == 1 else 2))

    source = IterableSource("fit", Shrinking(), epochs=2)
    with pytest.raises(BatchError, match=r"ran out in epoch 1 \(counted from 0\) after 2 batches, not the 4 its len\(\) gives") as info:  # fmt: skip
        list(source.chunks(epochs=2, chunk_steps=8, every=None))
    assert info.value.position == (1, 2)


def test_steps_per_epoch_reads_a_generator_on_across_epochs():
    data = batches(7)
    source = IterableSource("fit", iter(data), epochs=2, steps_per_epoch=3)
    chunks = list(source.chunks(epochs=2, chunk_steps=4, every=None))
    assert [(c.first, c.steps) for c in chunks] == [(0, 4), (4, 2)]
    np.testing.assert_array_equal(np.concatenate([c.x for c in chunks]), np.stack([b[0] for b in data[:6]]))  # fmt: skip


def test_steps_per_epoch_takes_the_first_batches_of_each_pass_of_a_reiterable():
    data = batches(5)
    source = IterableSource("fit", data, epochs=2, steps_per_epoch=2)
    chunks = list(source.chunks(epochs=2, chunk_steps=8, every=None))
    expected = np.stack([b[0] for b in data[:2] + data[:2]])
    np.testing.assert_array_equal(np.concatenate([c.x for c in chunks]), expected)


def test_an_endless_stream_ends_after_epochs_times_steps_per_epoch():
    stream = itertools.repeat(batches(1)[0])
    source = IterableSource("fit", stream, epochs=3, steps_per_epoch=5)
    chunks = list(source.chunks(epochs=3, chunk_steps=4, every=5))
    assert sum(c.steps for c in chunks) == 15


def test_steps_per_epoch_beyond_a_pass_raises_naming_the_epoch():
    source = IterableSource("fit", iter(batches(4)), epochs=2, steps_per_epoch=3)
    with pytest.raises(BatchError, match=r"ran out in epoch 1 \(counted from 0\) after 1 batches, not the steps_per_epoch=3 asked for"):  # fmt: skip
        list(source.chunks(epochs=2, chunk_steps=8, every=None))


def test_an_iterable_longer_than_the_int32_step_counter_is_refused():
    params = jaxbp.MLP(sizes=(FEATURES, 1), activations="linear").init(jax.random.key(0))
    stream = itertools.repeat(batches(1)[0])
    with pytest.raises(ValueError, match=r"reach step 4294967296, beyond the 2147483647 steps"):
        jaxbp.fit(jaxbp.MLP(sizes=(FEATURES, 1), activations="linear"), "mse", params, stream, None, lr=0.1, epochs=2, steps_per_epoch=2**31)  # fmt: skip


def test_a_gather_reads_contiguous_rows_in_one_call_and_far_rows_apart(tmp_path, monkeypatch):
    data = np.arange(1000 * 10, dtype=np.float32).reshape(1000, 10)  # 40-byte rows
    np.save(tmp_path / "x.npy", data)
    read = _rows.row_reader(np.load(tmp_path / "x.npy", mmap_mode="r"))
    calls: list[int] = []
    original = os.preadv
    monkeypatch.setattr(os, "preadv", lambda fd, buffers, at: (calls.append(at), original(fd, buffers, at))[1])  # fmt: skip
    rows = np.random.default_rng(1).permutation(np.arange(10, 61))  # one run, shuffled
    np.testing.assert_array_equal(read(rows), data[rows])
    assert len(calls) == 1
    del calls[:]
    far = _rows.GAP_BYTES // 40 + 2  # more than GAP_BYTES between the two rows
    rows = np.array([far, 0, 0])
    np.testing.assert_array_equal(read(rows), data[rows])
    assert len(calls) == 2
