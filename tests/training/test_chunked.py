"""The chunked loop and its prefetcher: same results as one scan, stopping, errors, shutdown."""

from __future__ import annotations

import itertools
import math
import threading
import time

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbp
from jaxbp.callbacks import Checkpoints, EarlyStopping
from jaxbp.data.sources import BatchError, Chunk
from jaxbp.training import checkpoint
from jaxbp.training.chunk_loop import run_chunks
from jaxbp.training.prefetch import Prefetcher


def _no_prefetch_threads() -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if not any(t.name == "jaxbp-prefetch" for t in threading.enumerate()):
            return True
        time.sleep(0.01)
    return False


def test_prefetcher_yields_every_placed_item_in_order():
    with Prefetcher(iter(range(10)), lambda i: i * i, depth=2) as ready:
        assert list(ready) == [i * i for i in range(10)]
    assert _no_prefetch_threads()


def test_prefetch_runs_in_a_background_thread_and_depth_0_in_the_caller():
    def place(item):
        return threading.get_ident()

    with Prefetcher(iter(range(3)), place, depth=2) as ready:
        assert set(ready) != {threading.get_ident()}
    with Prefetcher(iter(range(3)), place, depth=0) as ready:
        assert set(ready) == {threading.get_ident()}


def test_an_error_in_the_reader_is_raised_in_the_consumer_after_the_good_items():
    def produce():
        yield 1
        yield 2
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"), Prefetcher(produce(), lambda i: i) as ready:
        for item in ready:
            got.append(item)
    assert got == [1, 2]
    assert _no_prefetch_threads()


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_leaving_early_stops_an_endless_reader(error):
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    with pytest.raises(error), Prefetcher(endless(), lambda i: i, depth=2) as ready:
        for item in ready:
            if item == 5:
                raise error("stop here")
    assert _no_prefetch_threads()
    assert closed.is_set()  # the generator was closed, its finally ran


def test_prefetcher_refuses_a_negative_depth():
    with pytest.raises(ValueError, match="depth must be an int >= 0"):
        Prefetcher(iter([]), lambda i: i, depth=-1)


# A tiny linear model trained with plain SGD, written here as the oracle: one lax.scan over all
# batches in one program.
LR = 0.05


def _step(carry, batch):
    w, count = carry
    xb, yb = batch

    def loss(w):
        return jnp.mean((xb @ w - yb) ** 2)

    value, grad = jax.value_and_grad(loss)(w)
    return (w - LR * grad, count + 1), value


@jax.jit
def _run_chunk(carry, xs, ys):
    return jax.lax.scan(_step, carry, (xs, ys))


def _data(steps=13, batch=5, features=4):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps, batch, features))
    y = x @ np.arange(1.0, features + 1) + 0.1 * rng.normal(size=(steps, batch))
    return x, y


def _chunks(x, y, sizes):
    first = 0
    for size in sizes:
        yield Chunk(first, x[first : first + size], y[first : first + size])
        first += size


def _run(x, y, sizes, *, prefetch=2, after=None):
    carry = (jnp.zeros(x.shape[-1]), jnp.asarray(0))
    return run_chunks(
        lambda state, chunk: _run_chunk(state, chunk.x, chunk.y),
        carry,
        _chunks(x, y, sizes),
        start=0,
        place=lambda chunk: Chunk(chunk.first, jax.device_put(chunk.x), jax.device_put(chunk.y)),
        prefetch=prefetch,
        after_chunk=after or (lambda step, state, losses: None),
        on_error=lambda error, state, losses, done: None,
    )


@pytest.mark.parametrize("prefetch", [0, 2])
@pytest.mark.parametrize("sizes", [[13], [4, 4, 4, 1], [1] * 13, [8, 4, 1]], ids=str)
def test_chunks_give_the_params_of_one_scan_bit_for_bit(sizes, prefetch):
    x, y = _data()
    (want_w, _), want_losses = jax.jit(lambda c, xs, ys: jax.lax.scan(_step, c, (xs, ys)))(
        (jnp.zeros(4), jnp.asarray(0)), x, y
    )
    outcome = _run(x, y, sizes, prefetch=prefetch)
    np.testing.assert_array_equal(outcome.state[0], want_w)
    np.testing.assert_array_equal(np.concatenate(outcome.losses), want_losses)
    assert outcome.steps_done == 13 and outcome.stop is None
    assert _no_prefetch_threads()


def test_a_stop_after_a_chunk_returns_the_state_the_callback_saw():
    x, y = _data()
    seen = []

    def after(step, state, losses):
        seen.append((step, np.asarray(state[0])))
        return "stop" if step == 8 else None

    outcome = _run(x, y, [4, 4, 4, 1], after=after)
    assert outcome.stop == "stop" and outcome.steps_done == 8
    assert [s for s, _ in seen] == [4, 8]
    np.testing.assert_array_equal(outcome.state[0], seen[-1][1])
    assert int(outcome.state[1]) == 8 and len(outcome.losses) == 2
    (want_w, _), _ = jax.lax.scan(_step, (jnp.zeros(4), jnp.asarray(0)), (x[:8], y[:8]))
    np.testing.assert_array_equal(outcome.state[0], want_w)


def test_a_bad_chunk_hands_over_the_last_good_state_and_stops_the_reader():
    x, y = _data()
    attached = {}

    def chunks():
        yield from _chunks(x, y, [4, 4])
        raise BatchError("fit: batch 8 is broken", 8)

    def on_error(error, state, losses, done):
        attached.update(state=state, done=done, losses=len(losses))

    with pytest.raises(BatchError, match="batch 8 is broken"):
        run_chunks(
            lambda state, chunk: _run_chunk(state, chunk.x, chunk.y),
            (jnp.zeros(4), jnp.asarray(0)),
            chunks(),
            start=0,
            place=lambda chunk: chunk,
            prefetch=2,
            after_chunk=lambda *args: None,
            on_error=on_error,
        )
    assert attached["done"] == 8 and attached["losses"] == 2
    (want_w, _), _ = jax.lax.scan(_step, (jnp.zeros(4), jnp.asarray(0)), (x[:8], y[:8]))
    np.testing.assert_array_equal(attached["state"][0], want_w)
    assert _no_prefetch_threads()


# fit on data that is not on the device: the oracle is fit's whole-run program on device arrays
# (itself tested against the manual chain rule in test_train.py), which must agree bit for bit.
SPEC = jaxbp.MLP(sizes=(3, 5, 2), activations=("tanh", "linear"))
ROWS = 11  # batch 3 -> 3 steps per epoch and 2 rows left out; batch 2 -> 5 steps


def _fit_data(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(ROWS, 3)).astype(dtype)
    y = rng.normal(size=(ROWS, 2)).astype(dtype)
    params = jax.tree.map(lambda a: np.asarray(a, dtype), SPEC.init(jax.random.key(seed)))
    return params, x, y


def _assert_bitwise(actual, expected):
    chex.assert_trees_all_equal_structs(actual, expected)
    for got, want in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


ADAM = optax.adam(0.05)  # one object, so that every test reuses the compiled programs
SCHEDULE = optax.exponential_decay(0.2, 1, 0.9)
OPTIMIZERS = {"sgd": {"lr": 0.1}, "adam": {"optimizer": ADAM}}


@pytest.mark.parametrize(
    ("dtype", "optimizer", "batch_size", "shuffle"),
    [
        (np.float64, "sgd", None, False),
        (np.float64, "adam", None, False),
        (np.float64, "sgd", 2, False),
        (np.float64, "sgd", 2, True),
        (np.float64, "adam", 3, True),
        (np.float32, "sgd", None, False),
        (np.float32, "sgd", 3, False),
        (np.float32, "adam", 2, True),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_streamed_fit_equals_the_whole_run_program_bit_for_bit(
    dtype, optimizer, batch_size, shuffle
):
    params, x, y = _fit_data(dtype)
    key = jax.random.key(7) if shuffle else None
    kwargs = {"epochs": 3, "batch_size": batch_size, "key": key, **OPTIMIZERS[optimizer]}
    want, want_history = jaxbp.fit(SPEC, "mse", params, jnp.asarray(x), jnp.asarray(y), **kwargs)
    for chunk_steps in (None, 1, 4):  # 4 cuts chunks across epoch ends
        got, history = jaxbp.fit(SPEC, "mse", params, x, y, chunk_steps=chunk_steps, **kwargs)
        _assert_bitwise(got, want)
        np.testing.assert_array_equal(history["loss"], want_history["loss"])
        if optimizer == "adam":
            _assert_bitwise(history["opt_state"], want_history["opt_state"])


MOMENTUM = optax.sgd(1.0, momentum=0.9)
DIVERGING = {  # learning rates too large for the data: the loss grows geometrically
    "sgd-blowup": {"lr": 2.0},
    "momentum-blowup": {"optimizer": MOMENTUM},
    "sgd-nonfinite": {"lr": 1e200},  # the first update sends the next loss to infinity
}


@pytest.mark.parametrize("case", DIVERGING)
def test_the_guard_stops_both_paths_at_the_same_step_with_the_params_before_it(case, key):
    rate = DIVERGING[case]
    params, x, y = _fit_data()
    kwargs = {"epochs": 6, "batch_size": 2, "key": key, "stop_on_nonfinite": True, **rate}
    want, want_history = jaxbp.fit(SPEC, "mse", params, jnp.asarray(x), jnp.asarray(y), **kwargs)
    stop = want_history["stop_step"]
    assert 0 < stop < 29 and want_history["stop_reason"] == case.split("-")[1]
    assert np.isnan(want_history["loss"][stop + 1 :]).all()
    assert np.isfinite(want_history["loss"][:stop]).all()
    for chunk_steps in (1, 4, None):
        got, history = jaxbp.fit(SPEC, "mse", params, x, y, chunk_steps=chunk_steps, **kwargs)
        _assert_bitwise(got, want)
        done = len(history["loss"])  # the streamed run ends with the chunk holding the stop
        assert done == history["steps_done"] > stop
        np.testing.assert_array_equal(history["loss"], want_history["loss"][:done])
        for name in ("stop_step", "stop_reason", "nonfinite_path", "nonfinite_paths"):
            assert history[name] == want_history[name], name
        assert history["stop"] == want_history["stop_reason"]
        if "optimizer" in rate:
            _assert_bitwise(history["opt_state"], want_history["opt_state"])
    # The oracle: the same run without the guard, stopped by a callback after the steps before
    # the guard's stop step; its params and state are the ones the guard kept.
    unguarded = dict(kwargs, stop_on_nonfinite=False)
    before, history = jaxbp.fit(
        SPEC, "mse", params, x, y, chunk_steps=1, callbacks=[lambda step, p, m: step == stop],
        **unguarded,
    )  # fmt: skip
    assert history["steps_done"] == stop
    _assert_bitwise(got, before)
    np.testing.assert_array_equal(history["loss"], want_history["loss"][:stop])
    if "optimizer" in rate:
        _assert_bitwise(want_history["opt_state"], history["opt_state"])


@pytest.mark.parametrize(
    ("optimizer", "batch_size", "shuffle"),
    [("sgd", 2, False), ("sgd", 2, True), ("adam", 3, True), ("sgd", None, False)],
    ids=str,
)
def test_device_arrays_with_callbacks_stay_on_the_device_and_equal_the_whole_run_program(
    optimizer, batch_size, shuffle, monkeypatch
):
    params, x, y = _fit_data()
    x, y = jnp.asarray(x), jnp.asarray(y)
    key = jax.random.key(7) if shuffle else None
    kwargs = {"epochs": 3, "batch_size": batch_size, "key": key, **OPTIMIZERS[optimizer]}
    want, want_history = jaxbp.fit(SPEC, "mse", params, x, y, **kwargs)

    def no_host_source(*args, **kwargs):
        raise AssertionError("device arrays were sent to a host source")

    monkeypatch.setattr(jaxbp.data.sources.ArraySource, "__init__", no_host_source)
    # chunks of 1, 4 (cut at each epoch's end on the device) and validation every 2 steps
    for options in ({"chunk_steps": 1}, {"chunk_steps": 4}, {"validate_every": 2}):
        steps: list[int] = []
        got, history = jaxbp.fit(
            SPEC, "mse", params, x, y, callbacks=[lambda s, p, m, seen=steps: seen.append(s)],
            **options,
            **kwargs,
        )  # fmt: skip
        _assert_bitwise(got, want)
        np.testing.assert_array_equal(history["loss"], want_history["loss"])
        if optimizer == "adam":
            _assert_bitwise(history["opt_state"], want_history["opt_state"])
        per_epoch = 1 if batch_size is None else ROWS // batch_size
        assert batch_size is None or all(
            (b - 1) // per_epoch == a // per_epoch for a, b in zip([0, *steps], steps, strict=False)
        ), steps  # no chunk of mini-batches crosses an epoch's end
        assert steps[-1] == 3 * per_epoch


def test_device_arrays_resume_mid_epoch_exactly(key):
    params, x, y = _fit_data()
    x, y = jnp.asarray(x), jnp.asarray(y)
    kwargs = {"lr": 0.1, "batch_size": 2, "key": key}
    want, _ = jaxbp.fit(SPEC, "mse", params, x, y, epochs=3, **kwargs)
    first, history = jaxbp.fit(
        SPEC, "mse", params, x, y, epochs=3, callbacks=[lambda s, p, m: s >= 7], chunk_steps=1,
        **kwargs,
    )  # fmt: skip
    assert history["position"] == (1, 2)  # 5 steps per epoch: step 7 is epoch 1, step 2
    got, _ = jaxbp.fit(SPEC, "mse", first, x, y, epochs=2, start_epoch=1, start_step=2, **kwargs)
    _assert_bitwise(got, want)


def test_npy_files_and_memmaps_train_as_the_arrays_do(tmp_path, key):
    params, x, y = _fit_data()
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    kwargs = {"lr": 0.1, "epochs": 2, "batch_size": 2, "key": key}
    want, _ = jaxbp.fit(SPEC, "mse", params, jnp.asarray(x), jnp.asarray(y), **kwargs)
    by_path, _ = jaxbp.fit(SPEC, "mse", params, tmp_path / "x.npy", str(tmp_path / "y.npy"), **kwargs)  # fmt: skip
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r"), np.load(tmp_path / "y.npy", mmap_mode="r")
    by_memmap, _ = jaxbp.fit(SPEC, "mse", params, *mapped, **kwargs)
    _assert_bitwise(by_path, want)
    _assert_bitwise(by_memmap, want)


def test_an_iterable_of_batches_trains_as_the_data_order_does():
    params, x, y = _fit_data()
    batches = [(x[i : i + 2], y[i : i + 2]) for i in range(0, 10, 2)]  # the 5 batches of b2
    want, want_history = jaxbp.fit(
        SPEC, "mse", params, jnp.asarray(x), jnp.asarray(y), lr=0.1, epochs=2, batch_size=2
    )
    got, history = jaxbp.fit(SPEC, "mse", params, batches, None, lr=0.1, epochs=2, chunk_steps=3)
    _assert_bitwise(got, want)
    np.testing.assert_array_equal(history["loss"], want_history["loss"])
    assert history["steps_done"] == 10 and history["position"] == (2, 0)


def test_an_endless_generator_with_steps_per_epoch_trains_as_the_data_order_does():
    params, x, y = _fit_data()
    batches = [(x[i : i + 2], y[i : i + 2]) for i in range(0, 10, 2)]  # the 5 batches of b2
    want, want_history = jaxbp.fit(
        SPEC, "mse", params, jnp.asarray(x), jnp.asarray(y), lr=0.1, epochs=2, batch_size=2
    )
    endless = itertools.cycle(batches)  # one-shot and endless: each epoch reads on
    got, history = jaxbp.fit(SPEC, "mse", params, endless, None, lr=0.1, epochs=2, steps_per_epoch=5, chunk_steps=3)  # fmt: skip
    _assert_bitwise(got, want)
    np.testing.assert_array_equal(history["loss"], want_history["loss"])
    assert history["steps_done"] == 10 and history["position"] == (2, 0)


def test_an_iterable_whose_second_pass_is_empty_raises_with_the_first_epochs_params():
    params, x, y = _fit_data()
    batches = [(x[i : i + 2], y[i : i + 2]) for i in range(0, 10, 2)]

    class SameIterator:  # hands back one iterator: the second epoch finds it spent
        def __init__(self):
            self.iterator = iter(batches)

        def __iter__(self):
            return self.iterator

    one_epoch, _ = jaxbp.fit(SPEC, "mse", params, batches, None, lr=0.1, epochs=1)
    with pytest.raises(jaxbp.BatchError, match=r"ran out in epoch 1 \(counted from 0\) after 0 batches") as info:  # fmt: skip
        jaxbp.fit(SPEC, "mse", params, SameIterator(), None, lr=0.1, epochs=3, chunk_steps=3)
    assert info.value.steps_done == 5
    _assert_bitwise(info.value.params, one_epoch)


@pytest.mark.slow
def test_a_torch_dataloader_trains_as_the_data_order_does():
    torch = pytest.importorskip("torch")
    params, x, y = _fit_data()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        batch_size=3,
        drop_last=True,
    )
    want, _ = jaxbp.fit(
        SPEC, "mse", params, jnp.asarray(x), jnp.asarray(y), lr=0.1, epochs=2, batch_size=3
    )
    got, _ = jaxbp.fit(SPEC, "mse", params, loader, None, lr=0.1, epochs=2)
    _assert_bitwise(got, want)


@pytest.mark.parametrize("optimizer", ["sgd-schedule", "adam"])
@pytest.mark.parametrize("stop_at", [5, 7], ids=["epoch-end", "mid-epoch"])
def test_stopping_mid_epoch_and_resuming_from_the_position_is_exact(optimizer, stop_at, key):
    params, x, y = _fit_data()
    settings = {"lr": SCHEDULE} if optimizer == "sgd-schedule" else {"optimizer": ADAM}
    common = {"batch_size": 2, "key": key, **settings}  # 5 steps per epoch
    want, _ = jaxbp.fit(SPEC, "mse", params, x, y, epochs=3, **common)

    def stop(step, params, metrics):
        return step == stop_at

    first, history = jaxbp.fit(
        SPEC, "mse", params, x, y, epochs=3, chunk_steps=1, callbacks=[stop], **common
    )
    assert history["stop"] == "stop" and history["steps_done"] == stop_at
    epoch, step = history["position"]
    assert (epoch, step) == divmod(stop_at, 5)
    resumed = dict(common)
    if optimizer == "adam":
        resumed["opt_state"] = history["opt_state"]
    got, _ = jaxbp.fit(
        SPEC, "mse", first, x, y, epochs=3 - epoch, start_epoch=epoch, start_step=step, **resumed
    )
    _assert_bitwise(got, want)


def test_callbacks_see_each_chunk_in_order_and_can_stop():
    params, x, y = _fit_data()
    seen = []

    def record(step, params, metrics):
        seen.append((step, params, metrics["loss"], metrics["epoch"], metrics["step_in_epoch"]))

    def stop_after_two_epochs(step, params, metrics):
        return True if step == 10 else None

    got, history = jaxbp.fit(
        SPEC, "mse", params, x, y, lr=0.1, epochs=4, batch_size=2, chunk_steps=5,
        callbacks=[record, stop_after_two_epochs],
    )  # fmt: skip
    assert [s[0] for s in seen] == [5, 10]
    assert [(s[3], s[4]) for s in seen] == [(1, 0), (2, 0)]
    for epochs, (_, seen_params, loss, _, _) in zip((1, 2), seen, strict=True):
        want, want_history = jaxbp.fit(
            SPEC, "mse", params, jnp.asarray(x), jnp.asarray(y), lr=0.1, epochs=epochs, batch_size=2
        )
        _assert_bitwise(seen_params, want)
        assert loss == pytest.approx(float(np.mean(np.asarray(want_history["loss"])[-5:])))
    _assert_bitwise(got, seen[-1][1])
    assert history["stop"] == "stop_after_two_epochs" and history["loss"].shape == (10,)


def test_early_stopping_stops_after_patience_evaluations_without_improvement():
    max_epochs = 12
    params, x, y = _fit_data()
    x_val, y_val = x[:6], -y[:6]  # fitting y drives the validation loss up after a while
    stopper = EarlyStopping(patience=2)
    got, history = jaxbp.fit(
        SPEC, "mse", params, x, y, lr=0.3, epochs=max_epochs, batch_size=2,
        validation=(x_val, y_val), callbacks=[stopper],
    )  # fmt: skip
    # The oracle: validation losses of the whole-run program's params after each epoch (continued
    # one epoch per call, which is exact), and the patience rule applied to them by hand.
    losses, trained, after = [], params, {}
    for epoch in range(max_epochs):
        trained, _ = jaxbp.fit(
            SPEC, "mse", trained, jnp.asarray(x), jnp.asarray(y), lr=0.3, epochs=1,
            batch_size=2, start_epoch=epoch,
        )  # fmt: skip
        after[epoch + 1] = trained
        losses.append(float(jnp.mean((SPEC.apply(trained, x_val) - y_val) ** 2)))
    best, waited, stop_epoch = math.inf, 0, None
    for epoch, value in enumerate(losses, start=1):
        if value < best:
            best, waited, best_epoch = value, 0, epoch
        else:
            waited += 1
            if waited > 2:
                stop_epoch = epoch
                break
    assert stop_epoch is not None, "the scenario must overfit"
    assert history["stop"] == "EarlyStopping"
    assert history["steps_done"] == stop_epoch * 5
    np.testing.assert_allclose(history["val_loss"], losses[:stop_epoch], rtol=1e-12)
    np.testing.assert_array_equal(history["val_step"], 5 * np.arange(1, stop_epoch + 1))
    assert stopper.best_step == best_epoch * 5
    _assert_bitwise(got, after[stop_epoch])
    _assert_bitwise(stopper.best_params, after[best_epoch])


def test_a_bad_row_midway_stops_with_the_batch_index_and_the_last_good_params(tmp_path):
    params, x, y = _fit_data()
    x[7, 1] = np.nan  # batch 3 of every epoch (rows 6-7); epoch 1's is batch 8 overall
    np.save(tmp_path / "x.npy", x)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    with pytest.raises(jaxbp.BatchError, match=r"fit: batch 3 holds NaN .* in x.*after the 2 steps") as info:  # fmt: skip
        jaxbp.fit(SPEC, "mse", params, mapped, y, lr=0.1, epochs=2, batch_size=2, chunk_steps=2)
    error = info.value
    assert error.batch_index == 3 and error.position == (0, 3) and error.steps_done == 2
    want, _ = jaxbp.fit(SPEC, "mse", params, jnp.asarray(x[:4]), jnp.asarray(y[:4]), lr=0.1, epochs=1, batch_size=2)  # fmt: skip
    _assert_bitwise(error.params, want)
    assert error.history["loss"].shape == (2,)
    assert _no_prefetch_threads()


def test_nan_in_an_in_memory_array_is_refused_before_training():
    params, x, y = _fit_data()
    y[9, 1] = np.nan
    calls = []
    with pytest.raises(ValueError, match="fit: y holds NaN or infinite values"):
        jaxbp.fit(
            SPEC, "mse", params, x, y, lr=0.1, epochs=1, batch_size=2,
            callbacks=[lambda *args: calls.append(args)],
        )  # fmt: skip
    assert calls == []


def test_a_ragged_batch_from_a_loader_names_its_index():
    params, x, y = _fit_data()
    batches = [(x[0:2], y[0:2]), (x[2:4], y[2:4]), (x[4:7], y[4:7])]
    with pytest.raises(jaxbp.BatchError, match=r"batch 2 has x of shape \(3, 3\)") as info:
        jaxbp.fit(SPEC, "mse", params, batches, None, lr=0.1, epochs=1, chunk_steps=1)
    assert info.value.steps_done == 2  # the batches before it were all trained
    want, _ = jaxbp.fit(
        SPEC, "mse", params, jnp.asarray(x[:4]), jnp.asarray(y[:4]), lr=0.1, epochs=1, batch_size=2
    )
    _assert_bitwise(info.value.params, want)


def test_progress_stays_off_when_stderr_is_not_a_terminal(capsys):
    params, x, y = _fit_data()
    jaxbp.fit(SPEC, "mse", params, x, y, lr=0.1, epochs=2, batch_size=2, progress=True)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"start_step": 5}, ValueError, r"start_step 5 is not inside an epoch of 5 steps"),
        ({"chunk_steps": 0}, ValueError, "chunk_steps"),
        ({"prefetch": -1}, ValueError, "prefetch must be an int >= 0"),
        ({"validation": np.zeros(3)}, TypeError, r"validation must be a pair \(x_val, y_val\)"),
        ({"y": None}, ValueError, "y is None"),
        (
            {"steps_per_epoch": 3},
            ValueError,
            r"steps_per_epoch=3 applies to an iterable of \(x, y\) batches \(y=None\)",
        ),
        ({"steps_per_epoch": True}, TypeError, "steps_per_epoch must be an int"),
    ],
    ids=[
        "start-step",
        "chunk-steps",
        "prefetch",
        "validation",
        "no-y",
        "steps-per-epoch-arrays",
        "steps-per-epoch-bool",
    ],
)
def test_streamed_fit_refuses_bad_settings_before_training(change, error, message):
    params, x, y = _fit_data()
    kwargs = {"lr": 0.1, "epochs": 1, "batch_size": 2, **change}
    y_arg = kwargs.pop("y", y)
    with pytest.raises(error, match=message):
        jaxbp.fit(SPEC, "mse", params, x, y_arg, **kwargs)


def test_an_iterable_refuses_a_key_and_a_different_batch_size(key):
    params, x, y = _fit_data()
    batches = [(x[0:2], y[0:2])]
    with pytest.raises(ValueError, match="the loader owns the order"):
        jaxbp.fit(SPEC, "mse", params, batches, None, lr=0.1, epochs=1, key=key)
    with pytest.raises(ValueError, match="batch_size is 3 but the iterable's first batch has 2"):
        jaxbp.fit(SPEC, "mse", params, batches, None, lr=0.1, epochs=1, batch_size=3)


def test_a_checkpoint_written_between_chunks_resumes_the_run_exactly(tmp_path, key):
    params, x, y = _fit_data()
    common = {"batch_size": 2, "key": key, "optimizer": ADAM}  # 5 steps per epoch
    want, _ = jaxbp.fit(SPEC, "mse", params, x, y, epochs=3, **common)
    saver = Checkpoints(tmp_path / "run", every=3, model=SPEC, key=key)
    jaxbp.fit(
        SPEC, "mse", params, x, y, epochs=3, chunk_steps=1,
        callbacks=[saver, lambda step, p, m: step == 8], **common,
    )  # fmt: skip
    assert [checkpoint.load(p).step for p in saver.saved] == [3, 6]
    template = jax.tree.map(jnp.asarray, params)
    saved = checkpoint.load(
        checkpoint.resolve(tmp_path / "run"), params=template, opt_state=ADAM.init(template)
    )
    assert saved.step == 6 and saved.config["position"] == [1, 1]
    opt_state = saved.opt_state
    epoch, step = saved.config["position"]
    got, _ = jaxbp.fit(
        SPEC, "mse", saved.params, x, y, epochs=3 - epoch, start_epoch=epoch, start_step=step,
        **{**common, "opt_state": opt_state},
    )  # fmt: skip
    _assert_bitwise(got, want)


def test_bad_data_leaves_the_last_checkpoint_of_the_good_params(tmp_path):
    params, x, y = _fit_data()
    x[9, 0] = np.inf  # rows 8-9: batch 4
    np.save(tmp_path / "x.npy", x)  # a memmap's batches are checked as they are read
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    saver = Checkpoints(tmp_path / "run", every=2, model=SPEC)
    with pytest.raises(jaxbp.BatchError, match="batch 4 holds NaN or infinite") as info:
        jaxbp.fit(
            SPEC, "mse", params, mapped, y, lr=0.1, epochs=1, batch_size=2, chunk_steps=2,
            callbacks=[saver],
        )  # fmt: skip
    assert info.value.steps_done == 4
    saved = checkpoint.load(checkpoint.resolve(tmp_path / "run"))
    assert saved.step == 4
    _assert_bitwise(saved.params, jax.device_get(info.value.params))


def test_nan_in_the_validation_set_is_refused_before_training():
    params, x, y = _fit_data()
    x_val = x.copy()
    x_val[3, 1] = np.nan
    with pytest.raises(ValueError, match="fit: validation x holds NaN or infinite values"):
        jaxbp.fit(SPEC, "mse", params, x, y, lr=0.1, epochs=1, batch_size=2, validation=(x_val, y))  # fmt: skip


def test_a_loader_whose_iter_fails_in_a_later_epoch_raises_a_batch_error_with_the_params():
    params, x, y = _fit_data()
    batches = [(x[i : i + 2], y[i : i + 2]) for i in range(0, 10, 2)]

    class FailsOnSecondPass:
        def __init__(self):
            self.passes = 0

        def __iter__(self):
            self.passes += 1
            if self.passes > 1:
                raise OSError("shard list gone")
            return iter(batches)

    one_epoch, _ = jaxbp.fit(SPEC, "mse", params, batches, None, lr=0.1, epochs=1)
    with pytest.raises(jaxbp.BatchError, match=r"starting epoch 1 of the iterable \(iter\(x\)\) failed before batch 5: OSError: shard list gone") as info:  # fmt: skip
        jaxbp.fit(SPEC, "mse", params, FailsOnSecondPass(), None, lr=0.1, epochs=2, chunk_steps=3)
    assert info.value.steps_done == 5
    _assert_bitwise(info.value.params, one_epoch)
