"""The epoch loop shared by ``fit`` and ``fit_ensemble``: batching, shuffling, the SGD update.

Batching (``n`` examples):

- ``batch_size=None``: full-batch gradient descent, one step per epoch.
- ``batch_size=1``: stochastic gradient descent, ``n`` steps per epoch.
- otherwise mini-batch: ``n // batch_size`` steps per epoch. The remaining ``n % batch_size``
  examples of each epoch's order are left out of that epoch (with shuffling, a different set
  every epoch), so every step sees a full batch and one program serves every epoch.

With a ``key``, every epoch's order is a fresh permutation drawn inside the program from
``jax.random.fold_in(key, epoch)``; without one, the order is the data's own.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp import _checks
from jaxbp import sharding as _sharding
from jaxbp._types import Array, Grads, Params
from jaxbp.mlp import MLP
from jaxbp.sgd import check_batch


def batches_per_epoch(where: str, n: int, batch_size: int | None) -> int:
    if batch_size is None:
        return 1
    _checks.check_positive_int(where, "batch_size", batch_size)
    if batch_size > n:
        raise ValueError(
            f"{where}: batch_size {batch_size} is larger than the {n} examples; "
            f"pass batch_size <= {n}, or None for full-batch gradient descent."
        )
    return n // batch_size


def _shuffled_batches(x: Array, y: Array, batch_size: int, key: Array, epoch: Array):
    """The epoch's batches in the order ``permutation(fold_in(key, epoch))``: ``(steps, batch, .)``."""
    steps = x.shape[0] // batch_size
    order = jax.random.permutation(jax.random.fold_in(key, epoch), x.shape[0])
    index = order[: steps * batch_size].reshape(steps, batch_size)
    return x[index], y[index]


def _ordered_batches(x: Array, y: Array, batch_size: int):
    """The data's own order, cut into ``(steps, batch, .)`` without copying (a reshape)."""
    steps = x.shape[0] // batch_size
    used = steps * batch_size
    return (
        x[:used].reshape(steps, batch_size, x.shape[1]),
        y[:used].reshape(steps, batch_size, y.shape[1]),
    )


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
        batches = _sharding.constrain_batches(_ordered_batches(x, y, batch_size), batch_sharding)

        def epoch(c, _):
            return jax.lax.scan(step, c, batches)
    else:

        def epoch(c, epoch_index):
            batches = _shuffled_batches(x, y, batch_size, key, epoch_index)
            return jax.lax.scan(step, c, _sharding.constrain_batches(batches, batch_sharding))

    carry, outs = jax.lax.scan(epoch, carry, start_epoch + jnp.arange(epochs))
    return carry, jax.tree.map(lambda out: out.reshape(-1, *out.shape[2:]), outs)


def sgd_update(params: Params, grads: Grads, lr: Array) -> Params:
    return jax.tree.map(lambda p, g: p - lr * g, params, grads)


def as_batch_arrays(where: str, x: Any, y: Any) -> tuple[Array, Array]:
    # Device arrays pass through untouched (no dispatch); anything else is converted once.
    x = x if isinstance(x, jax.Array) else jnp.asarray(x)
    y = y if isinstance(y, jax.Array) else jnp.asarray(y)
    if x.ndim != 2:
        raise ValueError(f"{where}: x must be a batch (n, features), got shape {tuple(x.shape)}.")
    return x, y


def dtype_of(leaf: Any) -> np.dtype:
    return leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype


def float_dtype(params: Params) -> np.dtype:
    """The dtype the parameters promote to (float32 params keep float32 learning rates)."""
    return np.dtype(jnp.result_type(*(dtype_of(leaf) for leaf in jax.tree.leaves(params))))


def check_run(
    where: str,
    spec: MLP,
    loss: str,
    params: Params,
    x: Any,
    y: Any,
    *,
    epochs: int,
    batch_size: int | None,
    mesh: jax.sharding.Mesh | None,
) -> tuple[Array, Array]:
    """Validate a training run's inputs once, before compiling; return ``x, y`` as placed arrays.

    ``params`` may be shape-and-dtype stand-ins (a NumPy array per leaf). With a mesh, the data is
    split over its data axis first, so the batch-size check sees the global row count.
    """
    check_batch(where, spec, loss, params, x, y)
    x, y = as_batch_arrays(where, x, y)
    if mesh is not None:
        x, y = _sharding.shard_batch(mesh, x, y, where=where)
    _checks.check_positive_int(where, "epochs", epochs)
    batches_per_epoch(where, x.shape[0], batch_size)
    return x, y
