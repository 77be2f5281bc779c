"""The chain rule by hand, in NumPy float64: the teaching tool and the test oracle.

Nothing here uses JAX. The forward pass records, for every layer ``l = 1..L`` (list index
``l - 1``), the pre-activation and the activation::

    z_l = a_{l-1} @ W_l + b_l      # (batch, fan_in) @ (fan_in, fan_out) + (fan_out,)
    a_l = f_l(z_l)                 # a_0 = x

The backward pass walks from the loss to the input, one layer at a time::

    dL/da_L = loss'(a_L, y)                          # derivative of the batch-mean loss
    delta_l = dL/dz_l = dL/da_l * f_l'(z_l)          # element-wise activations
            = J_l^T dL/da_l                          # softmax: full Jacobian per example
    dL/dW_l = a_{l-1}^T @ delta_l                    # (fan_in, batch) @ (batch, fan_out)
    dL/db_l = sum over the batch of delta_l          # (fan_out,)
    dL/da_{l-1} = delta_l @ W_l^T                    # (batch, fan_out) @ (fan_out, fan_in)

Every derivative is written out below, next to its function, so a reader can follow a worked
example line by line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jaxbp.manual import layers
from jaxbp.manual.elementwise import (
    ACTIVATIONS,
    DERIVATIVES,
    PER_EXAMPLE_DERIVATIVES,
    PER_EXAMPLE_LOSSES,
    activation_derivative,
    loss_derivative,
    loss_value,
    sgd,
    softmax_jacobian,
)
from jaxbp.manual.mlp import Backward, Forward, backward, check_params, forward

if TYPE_CHECKING:
    from jaxbp.layers import Sequential
    from jaxbp.model.mlp import MLP

__all__ = (
    "ACTIVATIONS",
    "DERIVATIVES",
    "PER_EXAMPLE_DERIVATIVES",
    "PER_EXAMPLE_LOSSES",
    "Backward",
    "Forward",
    "activation_derivative",
    "backprop",
    "backward",
    "check_params",
    "forward",
    "layers",
    "loss_derivative",
    "loss_value",
    "sgd",
    "softmax_jacobian",
)


def backprop(
    spec: MLP | Sequential, loss: str, params: Any, x: Any, y: Any, **options: Any
) -> tuple[float, list[dict[str, Any]]]:
    """``(loss, grads)`` by the explicit chain rule, float64; ``grads`` has the layout of params.

    A :class:`jaxbp.Sequential` goes to :func:`jaxbp.manual.layers.backprop` (conv, pooling,
    attention, ...), with its ``options``: ``state``, ``masks``, ``training``.
    """
    if hasattr(spec, "layers"):  # a Sequential; an MLP has sizes and activations
        return layers.backprop(spec, loss, params, x, y, **options)
    if options:
        raise TypeError(f"manual.backprop: an MLP takes no {', '.join(sorted(options))}.")
    record = backward(spec, loss, params, x, y)
    return record.loss, record.grads
