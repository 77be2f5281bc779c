"""The chain rule by hand for :class:`jaxbp.Sequential` networks, in NumPy float64. Defined in
:mod:`jaxbp.manual.layers`.
"""

from __future__ import annotations

from jaxbp.manual.layers import (
    Backward,
    backprop,
    backward,
    backward_layers,
    col2im,
    conv_pads,
    forward_layers,
    im2col,
    layer_backward,
    layer_forward,
    targets,
    updated_state,
)

__all__ = (
    "Backward",
    "backprop",
    "backward",
    "backward_layers",
    "col2im",
    "conv_pads",
    "forward_layers",
    "im2col",
    "layer_backward",
    "layer_forward",
    "targets",
    "updated_state",
)
