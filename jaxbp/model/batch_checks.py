"""Checks of a batch against the model and loss contract that go beyond one argument's own shape.

- :func:`native_params`: params leaves in native byte order; a nested list of numbers refused.
- :func:`check_prediction`: on shapes alone, the model's prediction keeps the batch size of ``x``,
  and the prediction and ``y`` do not broadcast into a new axis (``(B, 1)`` against ``(B,)``
  gives ``(B, B)``: every example's loss over every target).
- :func:`check_values`: on the values of a few examples, the loss of each example depends on that
  example alone, and params (and data) hold no NaN or infinity; one small compiled program, run
  only on concrete arrays (inside a caller's ``jit`` the values are unknown and it is skipped).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.model.checks import native

if TYPE_CHECKING:
    from jaxbp._types import Array, Loss, Model

#: Examples whose losses are computed alone and in a batch to see that they agree.
PROBE_EXAMPLES = 3


def native_params(where: str, params: Any, name: str = "params") -> Any:
    """``params`` with every NumPy leaf in native byte order; a Python number inside a list or
    tuple (a nested list where an array was meant) is refused, naming its path; so is a dict whose
    keys cannot be sorted (JAX sorts them to flatten it)."""
    try:
        flat = jax.tree_util.tree_flatten_with_path(params)[0]
    except (ValueError, TypeError) as error:
        found = _unsortable_keys(params, name)
        if found is None:
            raise
        raise TypeError(
            f"{where}: {found[0]} is a dict with keys of different types ({found[1]}) that cannot "
            f"be sorted, and JAX sorts a dict's keys to flatten it; use keys of one type, e.g. "
            f"all strings."
        ) from error
    for path, leaf in flat:
        in_sequence = any(isinstance(key, jax.tree_util.SequenceKey) for key in path[-1:])
        if isinstance(leaf, int | float) and in_sequence:
            raise TypeError(
                f"{where}: {name}{jax.tree_util.keystr(path)} is a Python {type(leaf).__name__} "
                f"in a list: a nested list is a tree of scalars, not an array; make each "
                f"parameter an array, e.g. jnp.asarray([[0.0], [0.0]])."
            )

    def convert(leaf: Any) -> Any:
        if isinstance(leaf, np.ndarray | np.generic) and not leaf.dtype.isnative:
            return leaf.astype(native(leaf.dtype))
        return leaf

    return jax.tree.map(convert, params)


def _unsortable_keys(tree: Any, where: str) -> tuple[str, str] | None:
    """The first dict in ``tree`` (nested dicts, lists and tuples) whose keys ``sorted`` refuses:
    its path and two of its keys of different types."""
    if isinstance(tree, dict):
        try:
            sorted(tree)
        except TypeError:
            kinds = {type(key): key for key in tree}
            shown = ", ".join(repr(key)[:30] for key in list(kinds.values())[:2])
            return where, shown
        items = [(f"{where}[{key!r:.30}]", value) for key, value in tree.items()]
    elif isinstance(tree, list | tuple):
        items = [(f"{where}[{index}]", value) for index, value in enumerate(tree)]
    else:
        return None
    for path, value in items:
        found = _unsortable_keys(value, path)
        if found is not None:
            return found
    return None


def check_prediction(
    where: str, loss: Loss, prediction: Any, y: jax.ShapeDtypeStruct, batch: int
) -> None:
    """On shapes alone: the prediction keeps ``x``'s batch, and does not broadcast with ``y``."""
    leaves = jax.tree.leaves(prediction)
    if not leaves:
        raise TypeError(
            f"{where}: the model returned {_kind(prediction)}, no array; it must return the "
            f"predictions, one per example (shape ({batch}, ...)): is a return statement missing?"
        )
    if isinstance(loss, str) and not isinstance(prediction, jax.ShapeDtypeStruct):
        raise TypeError(
            f"{where}: the model returned {_kind(prediction)}, but the loss {loss!r} takes one "
            f"array of predictions; return that array, or pass a callable loss "
            f"(prediction, y) -> (batch,) that picks it from the {type(prediction).__name__}."
        )
    if len(leaves) != 1:  # a tree (say a prediction and an auxiliary scalar): one leaf batched
        if leaves and not any(leaf.ndim >= 1 and leaf.shape[0] == batch for leaf in leaves):
            shapes = [tuple(leaf.shape) for leaf in leaves]
            raise ValueError(
                f"{where}: the model returned arrays of shapes {shapes} for x with {batch} "
                f"examples, none with one prediction per example (shape ({batch}, ...))."
            )
        return
    leaf = leaves[0]
    if leaf.ndim < 1 or leaf.shape[0] != batch:
        raise ValueError(
            f"{where}: the model returned a prediction of shape {tuple(leaf.shape)} for x "
            f"with {batch} examples; it must return one prediction per example, shape "
            f"({batch}, ...): compute it from each row of x (no mean or fixed size over "
            f"the batch axis)."
        )
    if not jnp.issubdtype(leaf.dtype, jnp.inexact):
        raise TypeError(
            f"{where}: the model returned predictions of dtype {leaf.dtype}; the gradient "
            f"through integer or bool values is zero, so training would not change params. "
            f"Return the float values (e.g. logits, not their argmax)."
        )
    shape, target = tuple(leaves[0].shape), tuple(y.shape)
    if isinstance(loss, str) and shape != target:
        raise ValueError(
            f"{where}: y has shape {target} but the predictions have shape {shape}; the loss "
            f"{loss!r} compares them element by element, so pass y of shape {shape}."
        )
    if len(shape) == len(target) or not jnp.issubdtype(y.dtype, jnp.inexact):
        return  # equal ranks line batch up with batch; integer y holds labels
    try:
        mixed = np.broadcast_shapes(shape, target)
    except ValueError:
        return
    fix = "y[:, None]" if len(target) < len(shape) else f"y.reshape({shape})"
    raise ValueError(
        f"{where}: y has shape {target} but the predictions have shape {shape}; they broadcast "
        f"to {mixed}, which pairs every prediction with every target. Reshape y to {shape} "
        f"({fix}), or make the model return predictions of shape {target}."
    )


def _kind(prediction: Any) -> str:
    """The words for what a model returned: ``None``, a dict with its keys, a tuple of n."""
    if prediction is None:
        return "None"
    if isinstance(prediction, dict):
        return f"a dict with keys {sorted(map(str, prediction))}"
    if isinstance(prediction, list | tuple):
        return f"a {type(prediction).__name__} of {len(prediction)}"
    return f"a {type(prediction).__name__}"


@jax.jit
def _finite_leaves(params: Any) -> list[Array]:
    return [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(params)]


@functools.partial(jax.jit, static_argnums=(0, 1, 5))
def _probe(
    model: Model, loss: Loss, params: Any, x: Array, y: Array, data: bool
) -> tuple[Any, list[Array], Array, Array]:
    """Per-leaf finiteness of params (and, with ``data``, of ``x`` and ``y``), and the losses of
    the first few examples in one batch and each alone."""
    finite = _finite_leaves(params)
    inexact = [a for a in (x, y) if jnp.issubdtype(a.dtype, jnp.inexact)] if data else []
    data_finite = [jnp.all(jnp.isfinite(a)) for a in inexact]
    if isinstance(loss, str):
        return finite, data_finite, jnp.zeros(0), jnp.zeros(0)
    rows = min(PROBE_EXAMPLES, x.shape[0])
    prediction = model(params, x[:rows])  # a jaxbp.MLP too: its checks pass traced values through
    together = loss(prediction, y[:rows])
    alone = jnp.concatenate(
        [
            loss(jax.tree.map(lambda a, i=i: _row(a, i, rows), prediction), y[i : i + 1])
            for i in range(rows)
        ]
    )
    return finite, data_finite, together, alone


def _row(leaf: Array, i: int, rows: int) -> Array:
    """Example ``i`` of a batched prediction leaf; a leaf without the batch axis as it is."""
    return leaf[i : i + 1] if leaf.ndim >= 1 and leaf.shape[0] == rows else leaf


def _is_concrete(*trees: Any) -> bool:
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(trees))


def _refuse_nonfinite(where: str, params: Any, finite: Any, name: str) -> None:
    for path, ok in zip(jax.tree_util.tree_flatten_with_path(params)[0], finite, strict=True):
        if not ok:
            raise ValueError(
                f"{where}: {name}{jax.tree_util.keystr(path[0])} holds NaN or infinite values; "
                f"training from them gives NaN. Initialise it afresh (e.g. from init(key)) or "
                f"restore a finite checkpoint."
            )


def check_finite_params(where: str, params: Any, name: str = "params") -> None:
    """Refuse NaN or infinity in concrete params, naming the first such leaf."""
    if _is_concrete(params):
        _refuse_nonfinite(where, params, jax.device_get(_finite_leaves(params)), name)


def check_values(
    where: str, model: Model, loss: Loss, params: Any, x: Any, y: Any, *, data: bool = False
) -> None:
    """Refuse non-finite params (and with ``data`` non-finite ``x`` or ``y``), and a loss whose
    value for one example depends on the others.

    Computes the losses of the first :data:`PROBE_EXAMPLES` examples in one batch and each alone,
    in one small compiled program whose results are waited for; they must agree. Skipped for
    traced arguments (their values are unknown).
    """
    if not _is_concrete(params, x, y):
        return
    rows = min(PROBE_EXAMPLES, int(np.shape(x)[0]))
    if not data:  # only the first rows are needed: host data is not sent whole
        x, y = (a[:rows] if isinstance(a, np.ndarray) else a for a in (x, y))
    finite, data_finite, together, alone = jax.device_get(_probe(model, loss, params, x, y, data))
    _refuse_nonfinite(where, params, finite, "params")
    names = [n for n, a in (("x", x), ("y", y)) if jnp.issubdtype(a.dtype, jnp.inexact)]
    for name, ok in zip(names if data else [], data_finite, strict=True):
        if not ok:
            refuse_nonfinite_data(where, name)
    if rows < 2:
        return
    # a batch's arithmetic may differ from one example's by a few rounding errors of the dtype
    rtol = max(1e-3, 50 * float(jnp.finfo(together.dtype).eps))
    together, alone = np.asarray(together, np.float64), np.asarray(alone, np.float64)
    usable = np.isfinite(together) & np.isfinite(alone)  # NaN data is refused by its own check
    together, alone = np.where(usable, together, 0.0), np.where(usable, alone, 0.0)
    agree = np.abs(together - alone) <= rtol * (np.abs(together) + np.abs(alone)) + 1e-6
    if not np.all(agree):
        bad = int(np.argmin(agree))
        raise ValueError(
            f"{where}: the loss of example {bad} alone is {alone[bad]:.6g} but in a batch of "
            f"{rows} it is {together[bad]:.6g}: the loss mixes examples (often predictions "
            f"of shape (B, 1) broadcast against y of shape (B,), or a mean over the batch "
            f"inside the loss). It must return one loss per example, computed from that "
            f"example alone."
        )


def check_finite(where: str, name: str, array: Any) -> None:
    """Refuse NaN or infinity in concrete float data (a traced array is not checked)."""
    if isinstance(array, jax.core.Tracer) or not jnp.issubdtype(array.dtype, jnp.inexact):
        return
    # host data on the host; a device array in one compiled reduction
    finite = np.isfinite(array).all() if isinstance(array, np.ndarray) else _finite_leaves(array)[0]
    if not bool(finite):
        refuse_nonfinite_data(where, name)


def refuse_nonfinite_data(where: str, name: str) -> None:
    variable = name.replace("validation ", "") + "_val" if " " in name else name
    raise ValueError(
        f"{where}: {name} holds NaN or infinite values; training on them gives NaN "
        f"gradients. Remove or impute them first (e.g. np.isfinite({variable}).all(axis=1) "
        f"selects the complete rows)."
    )
