"""The epoch loop shared by ``fit`` and ``fit_ensemble``: batching and shuffling, for ``x`` and ``y`` of any rank.

Batching (``n`` examples):

- ``batch_size=None``: full-batch gradient descent, one step per epoch.
- ``batch_size=1``: stochastic gradient descent, ``n`` steps per epoch.
- otherwise mini-batch: ``n // batch_size`` steps per epoch. The remaining ``n % batch_size``
  examples of each epoch's order are left out of that epoch (with shuffling, a different set
  every epoch), so every step sees a full batch and one program serves every epoch. Without a
  key the same rows would be left out of every epoch: ``fit`` and ``fit_ensemble`` warn
  (:func:`jaxbp.training.inputs.warn_unused_rows`).

With a ``key``, every epoch's order is a fresh permutation drawn inside the program by
:func:`jaxbp.data.order.epoch_permutation` (the function the streamed path draws it with); without
one, the order is the data's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from jaxbp.data.order import epoch_permutation
from jaxbp.training import sharding as _sharding

if TYPE_CHECKING:
    from jaxbp._types import Array


def _shuffled_batches(x: Array, y: Array, batch_size: int, key: Array, epoch: Array):
    """The epoch's batches in the order ``epoch_permutation(key, epoch, n)``: ``(steps, batch, ...)``."""
    steps = x.shape[0] // batch_size
    order = epoch_permutation(key, epoch, x.shape[0])
    index = order[: steps * batch_size].reshape(steps, batch_size)
    return x[index], y[index]


def ordered_batches(x: Array, y: Array, batch_size: int):
    """The data's own order, cut into ``(steps, batch, ...)`` without copying (a reshape).

    Any rank: only the leading (example) axis is cut; the rest of each array's shape stays.
    """
    steps = x.shape[0] // batch_size
    used = steps * batch_size
    return (
        x[:used].reshape(steps, batch_size, *x.shape[1:]),
        y[:used].reshape(steps, batch_size, *y.shape[1:]),
    )


def run_batches(step, carry, batches, batch_sharding=None):
    """Apply ``step(carry, (xb, yb)) -> (carry, out)`` to pre-cut batches ``(steps, batch, ...)``.

    The inner loop of every mode but full batch: one ``lax.scan`` over the stacked batches, each
    constrained to ``batch_sharding`` when training data-parallel. Returns ``(carry, outs)``.
    """
    return jax.lax.scan(step, carry, _sharding.constrain_batches(batches, batch_sharding))


def run_epochs(step, carry, x, y, *, epochs, batch_size, key, start_epoch, batch_sharding=None):
    """Apply ``step(carry, (xb, yb)) -> (carry, out)`` to every batch of every epoch.

    Returns the final carry and the outputs stacked over all steps. The loop shape is chosen so
    that XLA sees as little per-step bookkeeping as possible: full batch is a single loop over
    epochs with ``x, y`` as loop constants; without shuffling the batches are cut once, outside
    the loops; with shuffling each epoch gathers its permuted batches once, then loops over them.
    With a ``batch_sharding`` (data-parallel training), the stacked batches are constrained to
    it, so every step's batch stays split over the mesh's data axis; full-batch data arrives
    already split by rows.
    """
    if batch_size is None:
        return jax.lax.scan(lambda c, _: step(c, (x, y)), carry, None, length=epochs)
    if key is None:
        batches = _sharding.constrain_batches(ordered_batches(x, y, batch_size), batch_sharding)

        def epoch(c, _):
            return jax.lax.scan(step, c, batches)
    else:

        def epoch(c, epoch_index):
            batches = _shuffled_batches(x, y, batch_size, key, epoch_index)
            return run_batches(step, c, batches, batch_sharding)

    carry, outs = jax.lax.scan(epoch, carry, start_epoch + jnp.arange(epochs))
    return carry, jax.tree.map(lambda out: out.reshape(-1, *out.shape[2:]), outs)
