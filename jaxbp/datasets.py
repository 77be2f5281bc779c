"""Data sets that need no download: MNIST-1D generated locally. Defined in
:mod:`jaxbp.data.datasets`.
"""

from __future__ import annotations

from jaxbp.data.datasets import (
    Dataset,
    mnist1d,
)

__all__ = (
    "Dataset",
    "mnist1d",
)
