"""The chunked loop and its prefetcher: same results as one scan, stopping, errors, shutdown."""

from __future__ import annotations

import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp._chunk_loop import run_chunks
from jaxbp.prefetch import Prefetcher
from jaxbp.sources import BatchError, Chunk


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
