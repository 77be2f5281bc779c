"""Named layer networks ready to train (the MNIST-1D paper's models). Defined in
:mod:`jaxbp.layers.presets`.
"""

from __future__ import annotations

from jaxbp.layers.presets import (
    PRESETS,
    Preset,
    network,
)

__all__ = (
    "PRESETS",
    "Preset",
    "network",
)
