"""MNIST-1D generated offline: sizes, labels, determinism, no network access, no global RNG trace."""

from __future__ import annotations

import random
import socket

import numpy as np
import pytest

from jaxbp.data import datasets


@pytest.fixture(scope="module")
def mnist1d() -> datasets.Dataset:
    return datasets.mnist1d()


def test_mnist1d_has_the_papers_sizes(mnist1d: datasets.Dataset) -> None:
    assert mnist1d.x_train.shape == (4000, 40) and mnist1d.x_test.shape == (1000, 40)
    assert mnist1d.y_train.shape == (4000,) and mnist1d.y_test.shape == (1000,)
    assert mnist1d.x_train.dtype == np.float32 and mnist1d.y_train.dtype == np.int32
    assert set(np.unique(mnist1d.y_train)) == set(range(10))
    # 500 examples per class in all, as make_dataset draws them (num_samples // 10 each)
    counts = np.bincount(np.concatenate([mnist1d.y_train, mnist1d.y_test]))
    assert counts.tolist() == [500] * 10
    # standardised over the whole set: mean 0, standard deviation 1
    everything = np.concatenate([mnist1d.x_train, mnist1d.x_test])
    assert abs(everything.mean()) < 1e-5 and everything.std() == pytest.approx(1.0, rel=1e-5)


def test_mnist1d_is_generated_offline_and_leaves_global_rngs_alone(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("mnist1d tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    random.seed(5)
    np.random.seed(5)
    expected_python, expected_numpy = random.random(), np.random.random()
    random.seed(5)
    np.random.seed(5)
    small = datasets.mnist1d(seed=1, num_samples=100, train_split=0.5)
    assert random.random() == expected_python and np.random.random() == expected_numpy
    assert small.x_train.shape == (50, 40) and small.x_test.shape == (50, 40)
    again = datasets.mnist1d(seed=1, num_samples=100, train_split=0.5)
    np.testing.assert_array_equal(small.x_train, again.x_train)
    other = datasets.mnist1d(seed=2, num_samples=100, train_split=0.5)
    assert not np.array_equal(small.x_train, other.x_train)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"num_samples": 5}, "num_samples"), ({"train_split": 1.0}, "train_split")],
    ids=["samples", "split"],
)
def test_bad_arguments_raise(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        datasets.mnist1d(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        # make_dataset draws num_samples // 10 per class: 15 silently gave 10 examples
        ({"num_samples": 15}, ValueError, r"mnist1d: num_samples must be a multiple of the 10 "
         r"classes, at least 10, got 15 \(.* it would return 10\); use 10 or 20\."),
        ({"num_samples": 5}, ValueError, r"mnist1d: num_samples .* got 5 .* use 10\."),
        ({"num_samples": 20.0}, TypeError, r"mnist1d: num_samples must be an int >= 10, got 20\.0"),
        # int(20 * 0.01) == 0: an empty training set came back silently
        ({"num_samples": 20, "train_split": 0.01}, ValueError,
         r"mnist1d: train_split 0\.01 of 20 examples leaves no training example"),
        # these were NumPy's or Python's errors without the function's name
        ({"train_split": "0.5"}, TypeError, r"mnist1d: train_split must be a number in \(0, 1\), got '0\.5'"),
        ({"train_split": None}, TypeError, r"mnist1d: train_split must be a number .*got None"),
        ({"seed": -1}, ValueError, r"mnist1d: seed must be in \[0, 2\*\*32 - 1\], got -1"),
        ({"seed": 2**40}, ValueError, r"mnist1d: seed must be in \[0, 2\*\*32 - 1\]"),
        ({"seed": 1.5}, TypeError, r"mnist1d: seed must be an int in \[0, 2\*\*32 - 1\] .*got 1\.5"),
        ({"seed": True}, TypeError, r"mnist1d: seed must be an int .*got True"),
    ],
    ids=["samples15", "samples5", "samples-float", "empty-train", "split-str", "split-none",
         "seed-negative", "seed-big", "seed-float", "seed-bool"],
)  # fmt: skip
def test_mnist1d_refuses_what_it_would_mishandle_naming_itself(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        datasets.mnist1d(**kwargs)


def test_mnist1d_takes_numpy_integers_for_seed_and_num_samples() -> None:
    # np.int64 was refused as "num_samples must be an int", and random.seed refused it as a seed
    got = datasets.mnist1d(seed=np.int64(1), num_samples=np.int64(20), train_split=0.5)
    expected = datasets.mnist1d(seed=1, num_samples=20, train_split=0.5)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)
    assert got.x_train.shape == (10, 40) and got.x_test.shape == (10, 40)
