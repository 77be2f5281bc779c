"""Data sets generated offline: MNIST-1D (Greydanus and Kobak, ICML 2024).

MNIST-1D draws ten 1-D templates ("digits"), pads, shears, translates and scales them and adds
correlated and i.i.d. noise, giving 40-feature signals in 10 classes where convolutions matter.
It comes from the ``mnist1d`` package (``pip install jaxbp[data]``), which generates it locally:
:func:`mnist1d` calls ``mnist1d.data.make_dataset`` only, never ``get_dataset`` (which downloads),
so nothing touches the network. With the default arguments the arrays equal the published
``mnist1d_data.pkl`` (4,000 training and 1,000 test examples).
"""

from __future__ import annotations

import random
from typing import NamedTuple

import numpy as np


class Dataset(NamedTuple):
    """Training and test arrays.

    Attributes:
        x_train: float32 ``(n_train, features)``.
        y_train: int32 class labels ``(n_train,)``.
        x_test: float32 ``(n_test, features)``.
        y_test: int32 class labels ``(n_test,)``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def mnist1d(seed: int = 42, num_samples: int = 5000, train_split: float = 0.8) -> Dataset:
    """MNIST-1D, generated locally (about 5 s); the defaults give the paper's data set.

    ``make_dataset`` seeds Python's and NumPy's global random generators; their states are
    restored afterwards, so calling this leaves no trace on the caller's random streams.

    Args:
        seed: the generator's seed (42 is the published data set).
        num_samples: examples in all, a multiple of the 10 classes, split into training and
            test sets.
        train_split: fraction of the examples used for training.

    Returns:
        A :class:`Dataset`: ``x`` of shape ``(n, 40)`` (standardised), labels 0..9.

    Raises:
        ImportError: when the ``mnist1d`` package is not installed.
        ValueError: on a ``seed`` outside [0, 2**32 - 1], a ``num_samples`` below 10 or not a
            multiple of the 10 classes (``make_dataset`` draws ``num_samples // 10`` per class),
            or a ``train_split`` outside (0, 1) or that leaves the training set empty.
        TypeError: on a ``seed``, ``num_samples`` or ``train_split`` that is not a number.
    """
    checked_seed = _check_seed(seed)
    if isinstance(num_samples, bool) or not isinstance(num_samples, int | np.integer):
        raise TypeError(f"mnist1d: num_samples must be an int >= 10, got {num_samples!r:.40}.")
    num_samples = int(num_samples)
    if num_samples < 10 or num_samples % 10:
        # make_dataset draws num_samples // 10 examples per class: 15 gave 10 examples
        nearest = sorted(
            {max(num_samples - num_samples % 10, 10), num_samples - num_samples % 10 + 10}
        )
        raise ValueError(
            f"mnist1d: num_samples must be a multiple of the 10 classes, at least 10, got "
            f"{num_samples} (the generator draws num_samples // 10 examples of each class, so "
            f"it would return {num_samples // 10 * 10}); use {' or '.join(map(str, nearest))}."
        )
    if isinstance(train_split, bool) or not isinstance(train_split, float | int | np.floating):
        raise TypeError(
            f"mnist1d: train_split must be a number in (0, 1), got {train_split!r:.40}."
        )
    if not 0.0 < train_split < 1.0:
        raise ValueError(f"mnist1d: train_split must be in (0, 1), got {train_split!r}.")
    n_train = int(num_samples * train_split)  # as make_dataset splits
    if n_train == 0:
        raise ValueError(
            f"mnist1d: train_split {train_split!r} of {num_samples} examples leaves no training "
            f"example (int({num_samples} * {train_split!r}) is 0); use a larger train_split or "
            f"more examples."
        )
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as error:
        raise ImportError(
            "mnist1d: the mnist1d package is not installed; pip install 'jaxbp[data]'."
        ) from error
    args = get_dataset_args()
    args.seed, args.num_samples, args.train_split = checked_seed, num_samples, train_split
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(args)
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    return Dataset(
        x_train=np.asarray(data["x"], np.float32),
        y_train=np.asarray(data["y"], np.int32),
        x_test=np.asarray(data["x_test"], np.float32),
        y_test=np.asarray(data["y_test"], np.int32),
    )


def _check_seed(seed: object) -> int | None:
    """``seed`` as ``make_dataset`` takes it: an int in [0, 2**32 - 1] (a NumPy integer is
    converted: Python's ``random.seed`` refuses one), or ``None`` for fresh entropy."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(
            f"mnist1d: seed must be an int in [0, 2**32 - 1] (42 is the published data set), "
            f"got {seed!r:.40}."
        )
    if not 0 <= int(seed) < 2**32:
        raise ValueError(f"mnist1d: seed must be in [0, 2**32 - 1], got {int(seed)}.")
    return int(seed)
