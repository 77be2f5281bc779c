"""The conv worked example's manual chain rule recomputed by JAX: one :class:`Check` per quantity.

JAX runs in float64 inside :func:`jax_checks`. The forward pass is :mod:`jaxbp.layers.ops` with
``lax.conv_general_dilated`` (not im2col, so the check does not share the worked arithmetic),
each conv and dense layer split into ``z = conv(x) + b`` and ``a = f(z)``. ``jax.grad`` with
respect to a zero perturbation added to every ``z_l`` and ``a_l`` gives ``dL/dz_l`` and
``dL/da_l``; with respect to the parameters and the input, ``dL/dW_l``, ``dL/db_l`` and ``dL/dx``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp import _compat
from jaxbp.layers import specs
from jaxbp.layers.sequential import apply_layer
from jaxbp.model.activations import ACTIVATIONS
from jaxbp.model.losses import LOSSES
from jaxbp.worked.checks import Check, check_close
from jaxbp.worked.conv_steps import param_name

if TYPE_CHECKING:
    from jaxbp.layers.sequential import Sequential


def _has_z(layer: Any) -> bool:
    return isinstance(layer, specs.Conv1D | specs.Dense)


def _forward(spec: Sequential, params: Any, x: jax.Array, dz: list, da: list) -> tuple:
    zs, activations = [], []
    for layer, p, dz_l, da_l in zip(spec.layers, params, dz, da, strict=True):
        if _has_z(layer):
            z = apply_layer(dataclasses.replace(layer, activation="linear"), p, x, "lax")
            z = z + dz_l
            x = ACTIVATIONS[layer.activation](z) + da_l
        else:
            z, x = None, apply_layer(layer, p, x, "lax") + da_l
        zs.append(z)
        activations.append(x)
    return zs, activations


def _derivative(name: str, z: jax.Array) -> jax.Array:
    if name == "softmax":  # dense output: the Jacobian per example
        return jax.vmap(jax.jacobian(ACTIVATIONS[name]))(z)
    return jax.grad(lambda v: jnp.sum(ACTIVATIONS[name](v)))(z)  # element-wise f'


@functools.partial(jax.jit, static_argnums=(0, 1))
def _quantities(spec: Sequential, loss: str, params: Any, x: jax.Array, y: jax.Array) -> dict:
    zeros = [jnp.zeros((x.shape[0], *shape), x.dtype) for shape in spec.shapes[1:]]

    def perturbed(params: Any, x: jax.Array, dz: list, da: list) -> jax.Array:
        return LOSSES[loss](_forward(spec, params, x, dz, da)[1][-1], y)

    zs, activations = _forward(spec, params, x, zeros, zeros)
    value, (grads, dx, dz, da) = jax.value_and_grad(perturbed, argnums=(0, 1, 2, 3))(
        params, x, zeros, zeros
    )
    out: dict[str, Any] = {"loss": value, "dL_da0": dx}
    for index, layer in enumerate(spec.layers):
        n = index + 1
        out[f"a{n}"], out[f"dL_da{n}"] = activations[index], da[index]
        if _has_z(layer):
            out[f"z{n}"], out[f"delta{n}"] = zs[index], dz[index]
            out[f"da_dz{n}"] = _derivative(layer.activation, zs[index])
            out |= {"d" + param_name(k, n): g for k, g in grads[index].items()}
    return out


def jax_checks(
    spec: Sequential,
    loss: str,
    params: list[dict[str, np.ndarray]],
    x: np.ndarray,
    y: np.ndarray,
    layers: list[Any],
    value: float,
) -> list[Check]:
    """Every forward and backward quantity of ``layers`` (``LayerStep``) against JAX: the loss,
    then ``z`` and ``a`` from input to output, then the backward ones from output to input."""
    with _compat.enable_x64():
        jax_params = [{k: jnp.asarray(v) for k, v in p.items()} for p in params]
        computed = _quantities(spec, loss, jax_params, jnp.asarray(x), jnp.asarray(y))
        computed = {k: np.asarray(v) for k, v in computed.items()}
    manual = {"loss": value}
    for layer in layers:
        manual |= layer.quantities
    forward = [f"{k}{n}" for n in range(1, len(layers) + 1) for k in ("z", "a")]
    backward = [
        f"{k}{n}"
        for n in range(len(layers), 0, -1)
        for k in ("dL_da", "da_dz", "delta", "dW", "db")
    ]
    order = ["loss", *forward, *backward, "dL_da0"]
    return [check_close(name, manual[name], computed[name]) for name in order if name in computed]
