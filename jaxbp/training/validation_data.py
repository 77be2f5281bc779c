"""``fit``'s validation data, read whole and checked against the training data once.

:func:`check_validation` turns ``validation=(x_val, y_val)`` (arrays, :class:`~jaxbp.data.sources.Rows`
views or ``.npy`` paths) into device arrays: each named ``validation x`` / ``validation y`` in
messages, with the training data's shape beyond the batch axis and its kind of dtype (floats are
cast to the training dtype), finite, and fitting the model and loss as a training batch does.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import jax.numpy as jnp
import numpy as np

from jaxbp.data.sources import ArraySource, IterableSource, Rows
from jaxbp.model import batch_checks as _batch_checks
from jaxbp.model import checks as _checks
from jaxbp.model.steps import check_batch

if TYPE_CHECKING:
    from jaxbp._types import Array, Loss, Model, Params
    from jaxbp.training.inputs import Source


def check_validation(
    where: str, model: Model, loss: Loss, params: Params, validation: Any, source: Source
) -> tuple[Array, Array]:
    """``(x_val, y_val)`` as arrays, checked against the training data (shapes beyond the batch
    axis, dtypes, finite values) and against the model and loss."""
    if not isinstance(validation, tuple | list) or len(validation) != 2:
        raise TypeError(
            f"{where}: validation must be a pair (x_val, y_val), got {type(validation).__name__}."
        )
    # a Rows view (or a .npy path) of a validation set is read whole: it is evaluated in one go
    pair = [_whole(where, value) for value in validation]
    pair = [_checks.as_real_array(where, f"validation {n}", v) for n, v in zip("xy", pair, strict=True)]  # fmt: skip
    train = _training_pair(source)
    for name, value, reference in zip("xy", pair, train, strict=True):
        _check_like_training(where, name, value, reference)
    _checks.check_rows(f"{where} (validation)", *pair)
    for name, value in zip("xy", pair, strict=True):
        _batch_checks.check_finite(where, f"validation {name}", value)
    check_batch(f"{where} (validation)", model, loss, params, *pair)
    return _like(pair[0], train[0]), _like(pair[1], train[1])


def _like(value: Any, reference: Any) -> Array:
    """``value`` on the device, cast to the training data's float dtype when both are floats."""
    dtype = _checks.native(reference.dtype)
    if jnp.issubdtype(value.dtype, jnp.floating) and jnp.issubdtype(dtype, jnp.floating):
        return jnp.asarray(value, dtype)
    return jnp.asarray(value)


def _training_pair(source: Source) -> tuple[Any, Any]:
    if isinstance(source, ArraySource):
        return source.placeholders()
    if isinstance(source, IterableSource):
        return source.sample()
    return source.x, source.y


def _check_like_training(where: str, name: str, value: Any, reference: Any) -> None:
    """A validation array has the training array's shape beyond the batch axis and its dtype."""
    shape, expected = tuple(value.shape), tuple(reference.shape)
    if shape[1:] != expected[1:]:
        raise ValueError(
            f"{where}: validation {name} has shape {shape} but the training {name} has shape "
            f"{expected}; pass validation {name} of shape (n_val, {', '.join(map(str, expected[1:]))})."
            if len(expected) > 1
            else f"{where}: validation {name} has shape {shape} but the training {name} has "
            f"shape {expected}; pass validation {name} of shape (n_val,)."
        )
    got, want = _checks.native(value.dtype), _checks.native(reference.dtype)
    if got != want and not (
        jnp.issubdtype(got, jnp.floating) and jnp.issubdtype(want, jnp.floating)
    ):
        raise TypeError(
            f"{where}: validation {name} has dtype {got} but the training {name} has dtype "
            f"{want}; convert it, e.g. validation {name}.astype({str(want)!r})."
        )


def _whole(where: str, value: Any) -> Any:
    if isinstance(value, Rows):
        return value.read(np.arange(len(value)))
    if isinstance(value, str | os.PathLike):
        try:
            return np.load(value, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ValueError(f"{where}: cannot open the validation file {str(value)!r} ({error}).") from None  # fmt: skip
    return value
