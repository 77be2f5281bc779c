"""Smoke test of benchmarks/mnist1d_cnn.py: the correctness check that precedes its timing.

No timing is asserted. jaxbp.fit (the cnn preset and a user's own function), the raw lax.scan and,
when installed, PyTorch's loop all take 3 Adam steps from the same weights and must agree.
"""

from __future__ import annotations

import numpy as np
import pytest

import jaxbp
from benchmarks import mnist1d_cnn as mnist1d
from benchmarks._harness import installed


@pytest.mark.slow
def test_smoke_mnist1d_contenders_compute_the_same_parameters() -> None:
    data = jaxbp.data.datasets.mnist1d(num_samples=1000)  # 800 training examples: 8 batches
    trainers = mnist1d.trainers(data)
    keep = ["jaxbp.fit, cnn preset", "jaxbp.fit, own function", "raw lax.scan, im2col"]
    if installed("torch"):
        keep.append("PyTorch eager (the paper's loop)")
    trained = {name: trainers[name](mnist1d.CHECK_STEPS) for name in keep}
    mnist1d.check(trained)


def test_the_layout_conversions_invert_each_other() -> None:
    rng = np.random.default_rng(0)
    params = [
        {},
        *(
            {"w": rng.standard_normal(s), "b": rng.standard_normal(25)}
            for s in ((5, 1, 25), (3, 25, 25), (3, 25, 25))
        ),
        {},
        {"w": rng.standard_normal((125, 10)), "b": rng.standard_normal(10)},
    ]
    from benchmarks import mnist1d_contenders as rivals

    back = rivals._from_channels_first(rivals._channels_first(params))
    for got, want in zip(back, params, strict=True):
        assert got.keys() == want.keys()
        for key in got:
            np.testing.assert_array_equal(got[key], want[key])
    # PyTorch flattens (channels, length): column c * 5 + l of its linear weight is jaxbp's row l * 25 + c
    torch_w = rivals._linear_to_channels_first(params[5]["w"])
    assert np.array_equal(torch_w[:, 3 * 5 + 2], params[5]["w"][2 * 25 + 3])
