"""The manual chain rule of a Trace recomputed by JAX: one :class:`Check` per quantity.

JAX runs in float64 inside :func:`jax_checks` (``jax.enable_x64`` as a context manager, so the
caller's setting is untouched): ``jaxbp.worked.autodiff.layer_quantities`` gives z, a, dL/da, da/dz,
dL/dz and the parameter gradients by ``jax.grad``; ``jax.grad`` with respect to the input gives
dL/dx. A difference within ``ATOL + RTOL * max|manual|`` counts as float64 round-off (the
tolerance of the test suite's float64 comparisons).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp import _compat, manual
from jaxbp.model.steps import batch_loss
from jaxbp.worked.autodiff import LayerQuantities, layer_quantities
from jaxbp.worked.checks import Check, check_close

if TYPE_CHECKING:
    from jaxbp.model.mlp import MLP


@functools.partial(jax.jit, static_argnums=(0, 1))
def _jax_quantities_compiled(
    spec: MLP, loss: str, params: list[dict[str, Any]], x: jax.Array, y: jax.Array
) -> tuple[jax.Array, list[dict[str, Any]], jax.Array]:
    # One compiled program per network shape: eager op-by-op dispatch takes seconds here.
    value, layers = layer_quantities(spec, loss, params, x, y)
    dloss_dx = jax.grad(batch_loss, argnums=3)(spec, loss, params, x, y)
    return value, [dataclasses.asdict(layer) for layer in layers], dloss_dx


def _jax_quantities(
    spec: MLP, loss: str, params: list[dict[str, Any]], x: jax.Array, y: jax.Array
) -> tuple[jax.Array, list[LayerQuantities], jax.Array]:
    value, layers, dloss_dx = _jax_quantities_compiled(spec, loss, params, x, y)
    return value, [LayerQuantities(**layer) for layer in layers], dloss_dx


def jax_checks(
    spec: MLP,
    loss: str,
    params: list[dict[str, np.ndarray]],
    x: np.ndarray,
    y: np.ndarray,
    record: manual.Backward,
) -> list[Check]:
    """Every forward and backward quantity of ``record`` against JAX, output layer first."""
    # float64 inside this block only, whatever the caller's jax_enable_x64 setting.
    with _compat.enable_x64():
        jax_params = [{k: jnp.asarray(v) for k, v in layer.items()} for layer in params]
        jax_x, jax_y = jnp.asarray(x), jnp.asarray(y)
        jax_loss, quantities, dloss_dx = _jax_quantities(spec, loss, jax_params, jax_x, jax_y)
        checks = [check_close("loss", record.loss, jax_loss)]
        for index, layer in enumerate(quantities):
            n = index + 1
            checks += [
                check_close(f"z{n}", record.forward.pre_activations[index], layer.pre_activations),
                check_close(f"a{n}", record.forward.activations[index], layer.activations),
            ]
        for index in reversed(range(spec.num_layers)):
            n, layer = index + 1, quantities[index]
            checks += [
                check_close(
                    f"dL_da{n}", record.dloss_dactivations[index], layer.dloss_dactivations
                ),
                check_close(
                    f"da_dz{n}", record.activation_derivatives[index], layer.activation_derivatives
                ),
                check_close(f"delta{n}", record.deltas[index], layer.deltas),
                check_close(f"dW{n}", record.grads[index]["w"], layer.grads["w"]),
            ]
            if "b" in record.grads[index]:
                checks.append(check_close(f"db{n}", record.grads[index]["b"], layer.grads["b"]))
        # dL/da_{l-1} of layer l > 1 is dL_da{l-1} above; only the input gradient is new.
        checks.append(check_close("dL_da0", record.dloss_dinputs[0], dloss_dx))
    return checks
