"""The manual chain rule of a Trace recomputed by JAX: one :class:`Check` per quantity.

JAX runs in float64 inside :func:`jax_checks` (``jax.enable_x64`` as a context manager, so the
caller's setting is untouched): ``jaxbp.autodiff.layer_quantities`` gives z, a, dL/da, da/dz,
dL/dz and the parameter gradients by ``jax.grad``; ``jax.grad`` with respect to the input gives
dL/dx. A difference within ``ATOL + RTOL * max|manual|`` counts as float64 round-off (the
tolerance of the test suite's float64 comparisons).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp import _compat, manual
from jaxbp.autodiff import LayerQuantities, layer_quantities
from jaxbp.mlp import MLP
from jaxbp.steps import batch_loss

RTOL, ATOL = 1e-10, 1e-12


@dataclasses.dataclass
class Check:
    """The largest ``|manual - JAX|`` of one quantity (e.g. ``"dW2"``) and the round-off bound."""

    quantity: str
    max_abs_diff: float
    tolerance: float

    @property
    def verified(self) -> bool:
        return bool(self.max_abs_diff <= self.tolerance)


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


def _check(quantity: str, manual_value: Any, jax_value: Any) -> Check:
    manual_value = np.asarray(manual_value, np.float64)
    jax_value = np.asarray(jax_value, np.float64)
    with np.errstate(invalid="ignore"):  # inf - inf: equal infinities agree, nan never does
        difference = np.where(manual_value == jax_value, 0.0, np.abs(manual_value - jax_value))
    finite = manual_value[np.isfinite(manual_value)]
    scale = float(np.max(np.abs(finite))) if finite.size else 0.0
    return Check(quantity, float(np.max(difference, initial=0.0)), ATOL + RTOL * scale)


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
        checks = [_check("loss", record.loss, jax_loss)]
        for index, layer in enumerate(quantities):
            n = index + 1
            checks += [
                _check(f"z{n}", record.forward.pre_activations[index], layer.pre_activations),
                _check(f"a{n}", record.forward.activations[index], layer.activations),
            ]
        for index in reversed(range(spec.num_layers)):
            n, layer = index + 1, quantities[index]
            checks += [
                _check(f"dL_da{n}", record.dloss_dactivations[index], layer.dloss_dactivations),
                _check(
                    f"da_dz{n}", record.activation_derivatives[index], layer.activation_derivatives
                ),
                _check(f"delta{n}", record.deltas[index], layer.deltas),
                _check(f"dW{n}", record.grads[index]["w"], layer.grads["w"]),
            ]
            if "b" in record.grads[index]:
                checks.append(_check(f"db{n}", record.grads[index]["b"], layer.grads["b"]))
        # dL/da_{l-1} of layer l > 1 is dL_da{l-1} above; only the input gradient is new.
        checks.append(_check("dL_da0", record.dloss_dinputs[0], dloss_dx))
    return checks
