"""Where every array of a sharded ``fit`` lives: data parallelism over a ``jax.sharding.Mesh``.

``fit(..., mesh=mesh)`` and ``fit_ensemble(..., mesh=mesh)`` hand their inputs to this module,
which places them with ``NamedSharding``s; the compiled training program is the same one
``fit`` runs on one device, and XLA's partitioner inserts the collectives (the all-reduce of the
gradient) into it. No user code changes. The rules, by mesh axis:

- The data axis is the mesh's first axis (any name, e.g. ``"data"``) that is not named
  ``"model"``. ``x`` and ``y`` are split by rows over it, and every step's batch is constrained,
  inside the program, to be split over it along its batch dimension.
- An axis named ``"model"``, if the mesh has one: in ``fit``, every layer whose ``fan_out`` divides
  by its size has ``w`` split by columns and ``b`` split over it (for wide layers); in
  ``fit_ensemble``, the models (the leading axis of every leaf) are split over it.
- Everything else (the params and optimizer state of narrow layers, scalars) is replicated.

Remainders are refused, not padded: the number of examples, the per-step batch (``batch_size``,
or every example for full batch) and, in ``fit_ensemble``, the number of models must divide by
the size of the axis they are split over; the error says which and by what.

Multi-process (after ``jax.distributed.initialize()``): every process calls ``fit`` with the same
arguments, except that host data (NumPy arrays, or arrays on this process's devices) is this
process's slice of the global batch; the global batch is the processes' slices in process order
(``jax.make_array_from_process_local_data``). A ``jax.Array`` that already spans the mesh is
used as it is. Params must be equal in every process (the same key gives the same init).

The library works on a copy of the mesh with every axis ``Auto``, so that XLA's sharding
propagation places the intermediate values; ``jax.make_mesh`` gives ``Explicit`` axes by
default, and both kinds of mesh are accepted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxbp.model import checks as _checks

if TYPE_CHECKING:
    from jaxbp._types import Array, Params

#: ``jax.sharding.AxisType`` where this JAX has it (before it, every mesh axis behaves as Auto).
_AXIS_TYPE: Any = getattr(jax.sharding, "AxisType", None)

#: The mesh axis name that ``fit`` uses for wide layers and ``fit_ensemble`` for its models.
MODEL_AXIS = "model"


def check_mesh(where: str, mesh: Any) -> Mesh:
    """Return ``mesh`` with every axis ``Auto``; raise a TypeError if it is not a ``Mesh`` and a
    ValueError if it lists a device more than once (``Mesh`` itself accepts that, and JAX then
    fails deep inside ``device_put`` with an unrelated message)."""
    if not isinstance(mesh, Mesh):
        raise TypeError(
            f"{where}: mesh must be a jax.sharding.Mesh, got {type(mesh).__name__}; "
            f'build one with jax.make_mesh((jax.device_count(),), ("data",)).'
        )
    devices = list(mesh.devices.flat)
    if len(set(devices)) != len(devices):
        repeated = next(d for d in devices if devices.count(d) > 1)
        raise ValueError(
            f"{where}: mesh lists device {repeated} {devices.count(repeated)} times (its "
            f"{len(devices)} entries are {len(set(devices))} distinct devices); each device must "
            f"appear once: use a mesh of distinct devices, e.g. "
            f'jax.make_mesh((jax.device_count(),), ("data",)).'
        )
    if _AXIS_TYPE is None or all(t == _AXIS_TYPE.Auto for t in mesh.axis_types):
        return mesh
    return Mesh(mesh.devices, mesh.axis_names, axis_types=(_AXIS_TYPE.Auto,) * mesh.devices.ndim)


def data_axis(mesh: Mesh) -> str | None:
    """The axis that splits the batch: the first one not named ``"model"`` (``None``: no such axis)."""
    return next((str(name) for name in mesh.axis_names if name != MODEL_AXIS), None)


def _axis_size(mesh: Mesh, axis: str | None) -> int:
    return 1 if axis is None else int(mesh.shape[axis])


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Rows of ``x``/``y`` split over the data axis; stacked batches ``(steps, batch, ...)``."""
    mesh = check_mesh("batch_sharding", mesh)
    return NamedSharding(mesh, P(None, data_axis(mesh)))


def constrain_batches(batches: Any, sharding: NamedSharding | None) -> Any:
    """Inside the program: every step's batch split over the data axis (``None``: unchanged)."""
    if sharding is None:
        return batches
    return jax.lax.with_sharding_constraint(batches, sharding)


def shard_batch(mesh: Mesh, x: Any, y: Any, *, where: str = "shard_batch") -> tuple[Array, Array]:
    """Place ``x`` and ``y`` with their rows split over the mesh's data axis.

    Placing the data once, before several ``fit`` calls, saves a copy per call.

    Args:
        mesh: a ``jax.sharding.Mesh``; its first axis splits the batch.
        x: ``(n, features)``; y: ``(n, outputs)``. In a multi-process run, host data is this
            process's slice and the result is the global batch.

    Returns:
        ``(x, y)`` as global ``jax.Array``s split by rows.

    Raises:
        ValueError: when the rows do not divide by the data axis size, or x and y have different
            numbers of rows; TypeError: when x or y is not an array (``None``, a path).
    """
    mesh = check_mesh(where, mesh)
    x, y = _checks.as_array(where, "x", x), _checks.as_array(where, "y", y)
    for name, value in (("x", x), ("y", y)):
        if value.ndim < 1:
            raise ValueError(f"{where}: {name} has shape (); it needs a leading batch axis of rows.")  # fmt: skip
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"{where}: x has {x.shape[0]} rows (shape {tuple(x.shape)}) but y has {y.shape[0]} "
            f"(shape {tuple(y.shape)}); pass one target per example."
        )
    return _place_rows(where, "x", mesh, x), _place_rows(where, "y", mesh, y)


def _place_rows(where: str, name: str, mesh: Mesh, value: Any) -> Array:
    axis = data_axis(mesh)
    sharding = NamedSharding(mesh, P(axis))
    if isinstance(value, jax.Array) and not value.is_fully_addressable:
        _check_divides(where, f"{name} has {value.shape[0]} rows;", value.shape[0], mesh, axis)
        return jax.device_put(value, sharding)
    if jax.process_count() == 1:
        rows = int(np.shape(value)[0])
        _check_divides(where, f"{name} has {rows} rows;", rows, mesh, axis)
        return jax.device_put(value, sharding)
    local = np.asarray(value)
    shards = _local_shards(mesh, axis)
    if local.shape[0] % shards:
        raise ValueError(
            f"{where}: process {jax.process_index()} passed {local.shape[0]} rows of {name}, which "
            f"do not split evenly over its {shards} devices along mesh axis {axis!r}; pass a "
            f"multiple of {shards} rows in every process."
        )
    return jax.make_array_from_process_local_data(sharding, local)


def _local_shards(mesh: Mesh, axis: str | None) -> int:
    """How many positions along ``axis`` this process's devices cover."""
    if axis is None:
        return 1
    mine = np.vectorize(lambda d: d.process_index == jax.process_index())(mesh.devices)
    positions = np.nonzero(mine)[mesh.axis_names.index(axis)]
    return len(set(positions.tolist()))


def _check_divides(where: str, what: str, count: int, mesh: Mesh, axis: str | None) -> None:
    size = _axis_size(mesh, axis)
    if count % size:
        nearest = sorted({max(count - count % size, size), count + size - count % size})
        raise ValueError(
            f"{where}: {what} it must divide by the {size} devices of mesh axis {axis!r} "
            f"(jaxbp does not pad); use {' or '.join(map(str, nearest))} instead, or a mesh "
            f"whose {axis!r} axis size divides {count}."
        )


def _check_step(where: str, mesh: Mesh, n: int, batch_size: int | None) -> None:
    step = n if batch_size is None else batch_size
    label = "the full batch" if batch_size is None else f"batch_size {batch_size}"
    what = f"every step's batch ({label}) has {step} examples;"
    _check_divides(where, what, step, mesh, data_axis(mesh))


def _replicated_or_model(mesh: Mesh, leaf: Any, model_sizes: set[tuple[int, ...]]) -> Any:
    """A param-like leaf split by its last axis over the model axis when it divides, else replicated."""
    shape = tuple(np.shape(leaf))
    size = _axis_size(mesh, MODEL_AXIS if MODEL_AXIS in mesh.axis_names else None)
    if size > 1 and shape and shape in model_sizes and shape[-1] % size == 0:
        return NamedSharding(mesh, P(*([None] * (len(shape) - 1)), MODEL_AXIS))
    return NamedSharding(mesh, P())


def place_fit(
    where: str, mesh: Mesh, params: Params, opt_state: Any, n: int, batch_size: int | None
) -> tuple[Params, Any, NamedSharding]:
    """Check the batch divides; place params and optimizer state; the in-program batch sharding.

    Params of layers whose ``fan_out`` divides by the model axis are split by columns over it;
    optimizer-state leaves shaped like those params follow them; the rest is replicated.
    """
    mesh = check_mesh(where, mesh)
    _check_step(where, mesh, n, batch_size)
    shapes = {tuple(np.shape(leaf)) for leaf in jax.tree.leaves(params)}
    params = jax.tree.map(
        lambda leaf: jax.device_put(leaf, _replicated_or_model(mesh, leaf, shapes)), params
    )
    opt_state = jax.tree.map(
        lambda leaf: jax.device_put(leaf, _replicated_or_model(mesh, leaf, shapes)), opt_state
    )
    return params, opt_state, batch_sharding(mesh)


def place_ensemble(
    where: str, mesh: Mesh, stacked_params: Params, n: int, batch_size: int | None
) -> tuple[Params, NamedSharding]:
    """Check the sizes divide; split the models over the model axis; the in-program batch sharding."""
    mesh = check_mesh(where, mesh)
    _check_step(where, mesh, n, batch_size)
    models = MODEL_AXIS if MODEL_AXIS in mesh.axis_names else None
    num_models = int(np.shape(jax.tree.leaves(stacked_params)[0])[0])
    _check_divides(where, f"the ensemble has {num_models} models;", num_models, mesh, models)
    sharding = NamedSharding(mesh, P(models))
    return jax.device_put(stacked_params, sharding), batch_sharding(mesh)
