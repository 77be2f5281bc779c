"""One SGD step of a small 1-D CNN, number by number: ``explain_sequential(...) -> SequentialTrace``.

The network is a :class:`jaxbp.Sequential` of ``Conv1D``, ``MaxPool1D``/``AvgPool1D``, ``Flatten``
and ``Dense`` layers. Every number comes from the chain rule written out here in NumPy float64,
with a convolution as im2col (:func:`jaxbp.manual.layers.im2col`); then each quantity is
recomputed by JAX (:mod:`jaxbp.worked.conv_verify`: ``lax.conv_general_dilated`` forward, ``jax.grad``
backward) and the trace is *verified* when every difference is within float64 round-off. Layers
are numbered ``l = 1..L`` and ``a0 = x``; the names follow :class:`jaxbp.Trace` (``z1``, ``dW2``,
``delta1``, ``W1_new``, ``loss_new``) plus those of the convolution::

    patches_l = im2col(a_{l-1})       # (B * positions, kernel * C_in): one window per row
    K_l       = W_l.reshape(kernel * C_in, C_out)
    z_l       = patches_l @ K_l + b_l,      a_l = f(z_l)
    delta_l   = dL/da_l * f'(z_l)          # (B * positions, C_out)
    dK_l      = patches_l^T @ delta_l,     db_l = sum over rows of delta_l
    dpatches_l = delta_l @ K_l^T,          dL/da_{l-1} = col2im(dpatches_l)  # scatter-add
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxbp.layers.sequential import Sequential, check_params
from jaxbp.model import checks as _checks
from jaxbp.model.losses import LOSSES
from jaxbp.worked.checks import MAX_STEPS
from jaxbp.worked.conv_steps import (
    LayerStep,
    after_step,
    check_network,
    forward_backward,
    history,
    param_name,
    sgd,
)
from jaxbp.worked.conv_verify import jax_checks
from jaxbp.worked.plain import read_numbers, to_plain
from jaxbp.worked.verify import Check

if TYPE_CHECKING:
    from jaxbp._types import ArrayLike

__all__ = ("LayerStep", "SequentialTrace", "check_network", "explain_sequential")


@dataclasses.dataclass
class SequentialTrace:
    """One forward pass, loss, backward pass and SGD update of a Sequential network.

    Attributes:
        shapes: per-example shapes, the input then each layer's output.
        loss_name, learning_rate: the loss (a name in ``jaxbp.LOSSES``) and the SGD step size.
        x, y: the batch, ``(B, *input_shape)`` and ``(B, outputs)``.
        loss, loss_after: the batch-mean loss before and after the update.
        layers: ``layers[l - 1]`` is layer ``l``.
        checks: manual chain rule against JAX, one per quantity.
        history: the loss before each of ``steps`` SGD steps and after the last one.
    """

    shapes: tuple[tuple[int, ...], ...]
    loss_name: str
    learning_rate: float
    x: np.ndarray
    y: np.ndarray
    loss: float
    loss_after: float
    layers: list[LayerStep]
    checks: list[Check]
    history: list[float]

    @property
    def verified(self) -> bool:
        """True when every quantity agrees with JAX within float64 round-off."""
        return all(check.verified for check in self.checks)

    def names(self) -> dict[str, Any]:
        """Every quantity under its jaxbp name (``x``, ``patches1``, ``dK1``, ``loss_new``, ...)."""
        names: dict[str, Any] = {"x": self.x, "y": self.y, "a0": self.x}
        names |= {"loss": self.loss, "loss_new": self.loss_after}
        for layer in self.layers:
            names |= layer.quantities
        return names

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: arrays become nested lists."""
        return to_plain(dataclasses.asdict(self))

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SequentialTrace:
        """The inverse of :meth:`to_dict`."""
        fields = dict(data)
        fields["shapes"] = tuple(tuple(shape) for shape in fields["shapes"])
        fields["x"], fields["y"] = np.asarray(fields["x"], float), np.asarray(fields["y"], float)
        fields["layers"] = [
            LayerStep(
                **{
                    **layer,
                    "quantities": {k: np.asarray(v, float) for k, v in layer["quantities"].items()},
                }
            )
            for layer in fields["layers"]
        ]
        fields |= read_numbers(fields)
        return cls(**fields)

    @classmethod
    def from_json(cls, text: str) -> SequentialTrace:
        return cls.from_dict(json.loads(text))

    def to_markdown(self, title: str = "A 1-D CNN, one SGD step", digits: int = 4) -> str:
        """The worked example as Markdown (:mod:`jaxbp.worked.render._conv`), ``digits`` significant."""
        from jaxbp.worked.render._conv import markdown

        return markdown(self, title, digits)

    def _repr_markdown_(self) -> str:
        """Jupyter: the worked example as Markdown."""
        return self.to_markdown()


def _check_data(where: str, spec: Sequential, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(_checks.as_float_array(where, "x", x), np.float64)
    if x.shape == spec.input_shape:
        x = x[None]
    if x.shape[1:] != spec.input_shape or x.shape[0] == 0:
        raise ValueError(
            f"{where}: x has shape {x.shape} but the network takes examples of shape "
            f"{spec.input_shape}; pass x of shape {spec.input_shape} or (batch, "
            f"{', '.join(map(str, spec.input_shape))})."
        )
    y = np.asarray(_checks.as_float_array(where, "y", y), np.float64)
    y = y[None] if y.shape == spec.output_shape else y
    if y.shape != (len(x), *spec.output_shape):
        raise ValueError(
            f"{where}: y has shape {y.shape} but the network gives predictions of shape "
            f"{(len(x), *spec.output_shape)} for {len(x)} examples; pass y of that shape."
        )
    return x, y


def explain_sequential(
    spec: Sequential,
    loss: str,
    params: Any,
    x: ArrayLike,
    y: ArrayLike,
    lr: float,
    *,
    steps: int = 1,
    on_step: Callable[[int, float], None] | None = None,
) -> SequentialTrace:
    """One SGD step of a 1-D CNN by the manual chain rule (im2col), checked against ``jax.grad``.

    Args:
        spec: a Sequential of Conv1D, MaxPool1D, AvgPool1D, Flatten and Dense layers whose output
            is ``(outputs,)`` per example.
        loss: a name in ``jaxbp.LOSSES``.
        params: the layout of ``spec.init`` (any float dtype; the arithmetic is float64).
        x: ``(batch, *spec.input_shape)`` or one example ``spec.input_shape``.
        y: ``(batch, outputs)`` or ``(outputs,)``.
        lr: the SGD learning rate, finite and > 0.
        steps: how many SGD steps ``history`` records (the trace details the first), at most
            :data:`jaxbp.worked.checks.MAX_STEPS`.
        on_step: called as ``on_step(step, loss)`` after each of the ``steps`` SGD steps (a
            long run's progress).

    Returns:
        A :class:`SequentialTrace`.

    Raises:
        ValueError, TypeError: on an unsupported layer or a bad params/x/y/loss/lr/steps.

    Example:
        >>> import jaxbp
        >>> from jaxbp.layers import Conv1D, Dense, Flatten
        >>> net = jaxbp.Sequential((Conv1D(1, 2), Flatten(), Dense(1)), input_shape=(3, 1))
        >>> params = [{"w": [[[1.0]], [[-1.0]]], "b": [0.0]}, {}, {"w": [[1.0], [2.0]], "b": [0.0]}]
        >>> trace = jaxbp.explain_sequential(net, "half_se", params, [[1.0], [3.0], [2.0]], [0.0], 0.1)
        >>> trace.names()["patches1"].tolist(), trace.loss, trace.verified
        ([[1.0, 3.0], [3.0, 2.0]], 0.0, True)
    """
    where = "explain_sequential"
    check_network(where, spec)
    check_params(where, spec, params)
    _checks.check_name(where, "loss", loss, LOSSES)
    _checks.check_learning_rate(where, lr)
    steps = _checks.check_positive_int(where, "steps", steps, MAX_STEPS)
    _checks.check_on_step(where, on_step)
    x64, y64 = _check_data(where, spec, x, y)
    params64 = [{k: np.asarray(v, np.float64) for k, v in layer.items()} for layer in params]
    with np.errstate(all="ignore"):
        layers, value = forward_backward(spec, loss, params64, x64, y64)
        grads = [
            {k: layers[i].quantities["d" + param_name(k, i + 1)] for k in p}
            for i, p in enumerate(params64)
        ]
        new_params = sgd(params64, grads, float(lr))
        after, loss_after = after_step(spec, loss, new_params, x64, y64)
        steps_history = history(spec, loss, params64, x64, y64, float(lr), steps, on_step)
    for index, layer in enumerate(layers):
        for key, new in new_params[index].items():
            layer.quantities[param_name(key, index + 1) + "_new"] = new
        layer.quantities |= after[index]
    return SequentialTrace(
        shapes=spec.shapes,
        loss_name=loss,
        learning_rate=float(lr),
        x=x64,
        y=y64,
        loss=value,
        loss_after=loss_after,
        layers=layers,
        checks=jax_checks(spec, loss, params64, x64, y64, layers, value),
        history=steps_history,
    )
