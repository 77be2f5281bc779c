"""Every intermediate quantity of one forward/backward pass, computed by JAX's autodiff.

``layer_quantities`` returns per layer what ``jaxbp.manual.backward`` computes by hand (z, a,
dL/da, da/dz, dL/dz, and the parameter gradients), but obtains the backward quantities from
``jax.grad``: ``dL/dz_l`` and ``dL/da_l`` are gradients with respect to a zero perturbation added
to ``z_l`` and ``a_l`` in the forward pass, and ``da/dz`` is ``jax.jacobian`` of the activation.
It is the independent check that lets a worked example say "verified". The forward pass is
``jaxbp.model.mlp``'s own (:func:`jaxbp.model.mlp.forward_layers`): plain, it records the layers; with the
perturbations, the loss over it is what ``jax.grad`` differentiates.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from jaxbp.model.activations import ACTIVATIONS
from jaxbp.model.losses import LOSSES
from jaxbp.model.mlp import MLP, forward_layers
from jaxbp.model.steps import check_batch

if TYPE_CHECKING:
    from jaxbp._types import Array, ArrayLike, Params


@dataclasses.dataclass
class LayerQuantities:
    """One layer's quantities (shapes for a batch ``(batch, n_l)``; softmax ``da_dz`` is
    ``(batch, n_l, n_l)``)."""

    inputs: Array
    products: Array
    pre_activations: Array
    activations: Array
    dloss_dactivations: Array
    activation_derivatives: Array
    deltas: Array
    grads: dict[str, Array]


def _perturbed_loss(
    spec: MLP, loss: str, params: Params, x: Array, y: Array, dz: list[Array], da: list[Array]
) -> Array:
    return LOSSES[loss](forward_layers(spec, params, x, dz, da)[-1][3], y)


def _activation_derivative(name: str, z: Array) -> Array:
    function = ACTIVATIONS[name]
    if name == "softmax":
        return jax.vmap(jax.jacobian(function))(z)
    return jax.vmap(jax.vmap(jax.grad(function)))(z)


def layer_quantities(
    spec: MLP, loss: str, params: Params, x: ArrayLike, y: ArrayLike
) -> tuple[Array, list[LayerQuantities]]:
    """The loss and every layer's quantities, by JAX autodiff.

    Args:
        spec, loss, params: as for ``jaxbp.loss_and_grad``.
        x: ``(batch, sizes[0])`` (a single example ``(sizes[0],)`` is treated as a batch of one).
        y: ``(batch, sizes[-1])`` or ``(sizes[-1],)``.

    Returns:
        ``(loss, layers)`` with ``layers[l - 1]`` for layer ``l``.
    """
    check_batch("layer_quantities", spec, loss, params, x, y, pairing=False)
    x, y = jnp.atleast_2d(jnp.asarray(x)), jnp.atleast_2d(jnp.asarray(y))
    dtype = jnp.result_type(x, *(leaf for layer in params for leaf in layer.values()))
    zeros = [jnp.zeros((x.shape[0], size), dtype) for size in spec.sizes[1:]]
    recorded = forward_layers(spec, params, x)
    inputs, products, pre_activations, activations = (
        list(column) for column in zip(*recorded, strict=True)
    )
    value, (grads, dz, da) = jax.value_and_grad(_perturbed_loss, argnums=(2, 5, 6))(
        spec, loss, params, x, y, zeros, zeros
    )
    layers = [
        LayerQuantities(
            inputs=inputs[i],
            products=products[i],
            pre_activations=pre_activations[i],
            activations=activations[i],
            dloss_dactivations=da[i],
            activation_derivatives=_activation_derivative(spec.activations[i], pre_activations[i]),
            deltas=dz[i],
            grads=grads[i],
        )
        for i in range(spec.num_layers)
    ]
    return value, layers
