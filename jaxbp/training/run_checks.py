"""The rules a training run is checked against, each written once, before anything compiles.

``fit`` (through :func:`jaxbp.training.run.describe_run`, on both of its paths) and
``fit_ensemble`` call these; besides the model/loss/params/data checks of
``jaxbp.model.steps.check_batch``: the run's sizes (epochs, batch size, the start position, the
int32 step counter), the shuffling key, finite data, the learning rate or an optimizer (never
both) and the rate or schedule over the run's steps, and the divergence guard's reference loss.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.model import batch_checks as _batch_checks
from jaxbp.model import checks as _checks
from jaxbp.model.mlp import MLP

if TYPE_CHECKING:
    from jaxbp._types import Array, Model, Params

#: The step counter of the compiled loop is int32: a run has at most this many steps.
MAX_STEPS = 2**31 - 1
#: A schedule is evaluated on every step of a run up to this many steps, else on this many
#: evenly spaced steps (the first and last included).
SCHEDULE_CHECK_POINTS = 2**20


def dtype_of(leaf: Any) -> np.dtype:
    return leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype


def float_dtype(params: Params) -> np.dtype:
    """The dtype the parameters promote to (float32 params keep float32 learning rates)."""
    return np.dtype(jnp.result_type(*(dtype_of(leaf) for leaf in jax.tree.leaves(params))))


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


def as_batch_arrays(where: str, model: Model, x: Any, y: Any) -> tuple[Array, Array]:
    # Device arrays pass through untouched (no dispatch); anything else is converted once.
    x = x if isinstance(x, jax.Array) else jnp.asarray(x)
    y = y if isinstance(y, jax.Array) else jnp.asarray(y)
    if isinstance(model, MLP) and x.ndim != 2:
        raise ValueError(f"{where}: x must be a batch (n, features), got shape {tuple(x.shape)}.")
    return x, y


@jax.jit
def _all_finite(tree: Any) -> Array:
    leaves = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def all_finite(tree: Any) -> bool:
    """Whether every leaf of ``tree`` (an array, or params) is finite: one reduction on the device."""
    return bool(_all_finite(tree))


def check_finite_data(where: str, name: str, array: Any) -> None:
    """Refuse NaN or infinity in float data (one reduction on the device for a device array)."""
    _batch_checks.check_finite(where, name, array)


def check_stacked(where: str, stacked_params: Any) -> int:
    """The number of models M of an ensemble's params: a leading axis M on every leaf; a list of
    per-model params, or one model's params, is refused with how to stack them."""
    leaves = jax.tree.leaves(stacked_params)
    sizes = [np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in leaves]
    if leaves and None not in sizes and len(set(sizes)) == 1:
        if sizes[0] == 0:
            raise ValueError(
                f"{where}: stacked_params holds 0 models (a leading model axis of size 0 on "
                f"every leaf); stack at least one: jax.vmap(init)(jax.random.split(key, M)), M >= 1."
            )
        return int(sizes[0])  # type: ignore[arg-type]
    shapes = ", ".join(
        f"{path}: {tuple(np.shape(leaf))}"
        for path, leaf in zip(_checks.leaf_paths(stacked_params), leaves, strict=True)
    )
    raise ValueError(
        f"{where}: stacked_params needs a leading model axis, the same model axis M on every leaf; "
        f"got leaf shapes {{{shapes}}}. Stack M models' params: jax.vmap(init)(jax.random.split("
        f"key, M)), or from a list of params, jax.tree.map(lambda *a: jnp.stack(a), *params_list)."
    )


def check_key(where: str, key: Any) -> None:
    """Check a shuffling key is ``None``, a ``jax.random.key`` (shape ``()``) or a legacy uint32 (2,)."""
    if key is None:
        return
    if isinstance(key, jax.Array | np.ndarray):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            if key.shape == ():
                return
        elif key.dtype == np.uint32 and key.shape == (2,):
            return
    described = (
        f"{type(key).__name__} of dtype {key.dtype} and shape {tuple(key.shape)}"
        if hasattr(key, "shape")
        else f"{type(key).__name__} {key!r:.40}"
    )
    raise TypeError(
        f"{where}: key must be one PRNG key, jax.random.key(seed) (shape ()), got {described}; "
        f"pass key=jax.random.key(0), or key=None to keep the data's order."
    )


def most_epochs(steps_per_epoch: int, start_epoch: int = 0) -> int:
    """The most epochs a run from ``start_epoch`` can have: its last step must fit the int32 step
    counter of the compiled loop (:data:`MAX_STEPS`)."""
    return max(MAX_STEPS // steps_per_epoch - start_epoch, 0)


def check_step_count(where: str, epochs: int, start_epoch: int, steps_per_epoch: int) -> None:
    """Bound the run so that the int32 step counter cannot overflow."""
    if epochs > most_epochs(steps_per_epoch, start_epoch):
        last = (start_epoch + epochs) * steps_per_epoch
        raise ValueError(
            f"{where}: epochs {epochs} (from start_epoch {start_epoch}) at {steps_per_epoch} "
            f"steps per epoch reach step {last}, beyond the {MAX_STEPS} steps the int32 step "
            f"counter holds; pass epochs <= {most_epochs(steps_per_epoch, start_epoch)}."
        )


def check_start(where: str, start_epoch: Any, start_step: Any = 0) -> None:
    """The position a run starts from: ``start_epoch`` epochs done and ``start_step`` steps of the
    next one, each an int >= 0."""
    for name, value in (("start_epoch", start_epoch), ("start_step", start_step)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"{where}: {name} must be an int >= 0, got {value!r}.")


def check_rate(
    where: str, lr: Any, dtype: Any, first: int, steps: int | None, *, allow_vector: bool = False
) -> None:
    """The hand-written SGD's learning rate: a number (one per model with ``allow_vector``),
    finite and > 0 in the params' dtype, or a schedule, finite and >= 0 on the run's ``steps``
    steps from global step ``first`` (not evaluated when ``steps`` is unknown, ``None``).

    The schedule is evaluated on the host, before compiling, on every step of the run when it has
    at most ``SCHEDULE_CHECK_POINTS`` steps, else on that many evenly spaced steps.
    """
    _checks.check_learning_rate(where, lr, allow_vector=allow_vector, allow_schedule=True)
    if not callable(lr):
        with np.errstate(over="ignore"):
            cast = np.asarray(lr, dtype)
        if not np.all(np.isfinite(cast)):
            raise ValueError(
                f"{where}: learning rate {lr!r} overflows the params' dtype {np.dtype(dtype)}; "
                f"pass a smaller one."
            )
        if not np.all(cast > 0):
            raise ValueError(
                f"{where}: learning rate {lr!r} is 0 in the params' dtype {np.dtype(dtype)} "
                f"(smallest: {np.finfo(dtype).smallest_subnormal:.3g}), so no step would change "
                f"the params; pass a larger one."
            )
    elif steps is not None:
        _check_schedule(where, lr, first, steps)


def _check_schedule(where: str, lr: Any, first: int, steps: int) -> None:
    count = min(steps, SCHEDULE_CHECK_POINTS)
    points = np.unique(np.linspace(first, first + steps - 1, count).round().astype(np.int32))
    try:
        values = np.asarray(lr(jnp.asarray(points)))
        if values.shape != points.shape:
            raise ValueError
    except Exception:  # a schedule written for one step at a time (Python control flow)
        points = np.unique(np.linspace(first, first + steps - 1, min(count, 1000)).round())
        try:
            each = [np.asarray(lr(jnp.int32(p))) for p in points.astype(np.int32)]
        except Exception as error:
            raise TypeError(
                f"{where}: lr is a function, but calling it with a step number failed "
                f"({type(error).__name__}: {error}); a learning-rate schedule is a function of "
                f"the int32 step count, e.g. optax.cosine_decay_schedule(0.1, decay_steps)."
            ) from error
        shape = next((value.shape for value in each if value.shape != ()), None)
        if shape is not None:
            raise ValueError(
                f"{where}: the learning-rate schedule gives values of shape {shape} for one "
                f"step; it must give one number per step."
            ) from None
        values = np.array(each)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        index = int(np.argmax(bad))
        raise ValueError(
            f"{where}: the learning-rate schedule gives {float(values[index]):.6g} at step "
            f"{int(points[index])}; it must be finite and >= 0 on every step of the run "
            f"({first} to {first + steps - 1}). Check its end value and horizon."
        )


def check_lr_or_optimizer(
    where: str, lr: Any, optimizer: Any, lr_forms: str, opt_state: Any = None
) -> None:
    """Exactly one of ``lr`` (the hand-written SGD's; ``lr_forms`` says what it may be) and
    ``optimizer`` (checked to be an optax ``GradientTransformation``); an ``opt_state`` only
    with an optimizer (the hand-written SGD has none to continue from)."""
    if optimizer is None:
        if opt_state is not None:
            raise ValueError(
                f"{where}: opt_state is given but no optimizer; the hand-written SGD (lr) keeps "
                f"no state. Pass the optimizer that made it (optimizer=..., lr=None), or drop "
                f"opt_state."
            )
        if lr is None:
            raise ValueError(f"{where}: pass lr ({lr_forms}), or an optimizer.")
        return
    _checks.check_optimizer(where, optimizer)
    if lr is not None:
        raise ValueError(
            f"{where}: an optimizer carries its own learning rate; pass lr=None, "
            f"e.g. optimizer=optax.sgd(0.1) or optax.sgd(optax.cosine_decay_schedule(...))."
        )


def check_reference(where: str, reference_loss: Any) -> np.ndarray:
    """The loss the divergence guard's blow-up rule compares with: finite, or ``None`` (NaN: the
    run's first loss)."""
    if reference_loss is None:
        return np.float32(np.nan)
    array = np.asarray(reference_loss) if not isinstance(reference_loss, str | bytes) else None
    if (
        isinstance(reference_loss, bool)
        or array is None
        or array.shape != ()
        or array.dtype.kind not in "iuf"
    ):
        raise TypeError(
            f"{where}: reference_loss must be one real number (a run's first loss), got "
            f"{type(reference_loss).__name__} {reference_loss!r:.40}; pass e.g. "
            f"reference_loss=float(history['loss'][0])."
        )
    with np.errstate(over="ignore"):
        value = np.float32(array)
    if not np.isfinite(value):
        raise ValueError(
            f"{where}: reference_loss must be a finite number in float32 (a run's first loss), "
            f"got {reference_loss!r}."
        )
    return value
