"""Data parallelism over a device mesh: the batch split along its first axis, parameters
replicated (``fit(..., mesh=...)``). Defined in :mod:`jaxbp.training.sharding`.
"""

from __future__ import annotations

from jaxbp.training.sharding import (
    MODEL_AXIS,
    batch_sharding,
    check_mesh,
    constrain_batches,
    data_axis,
    place_ensemble,
    place_fit,
    shard_batch,
)

__all__ = (
    "MODEL_AXIS",
    "batch_sharding",
    "check_mesh",
    "constrain_batches",
    "data_axis",
    "place_ensemble",
    "place_fit",
    "shard_batch",
)
