"""The worked example of one SGD step as data: ``explain(...) -> Trace``, and back and forth to JSON.

Every number of a :class:`Trace` comes from the manual chain rule (:mod:`jaxbp.manual`, NumPy
float64). Each one is then recomputed by JAX (:func:`jaxbp.worked.autodiff.layer_quantities`, which takes
``jax.grad`` through the network, in float64) and the largest absolute difference is stored in a
:class:`Check`; the trace is *verified* when every difference is within float64 round-off
(``|manual - jax| <= ATOL + RTOL * max|manual|``). Layers are numbered ``l = 1..L``, as the seed
documents number them; ``layers[l - 1]`` holds layer ``l``::

    z_l = a_{l-1} @ W_l + b_l,   a_l = f_l(z_l)                       # forward, a_0 = x
    dL/dz_l = dL/da_l * f_l'(z_l)   (softmax: J_l^T dL/da_l)          # backward
    dL/dW_l = a_{l-1}^T @ dL/dz_l,  dL/db_l = sum_batch dL/dz_l,  dL/da_{l-1} = dL/dz_l @ W_l^T
    W_l' = W_l - lr * dL/dW_l,      b_l' = b_l - lr * dL/db_l         # the SGD update

A parameter named in ``frozen`` (``"b1"``, ``"W2"``, ...) takes no update: ``b1' = b1``, and the
forward pass after the update and every later step use it unchanged.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxbp import manual
from jaxbp.model import checks as _checks
from jaxbp.model.losses import LOSSES
from jaxbp.model.mlp import MLP
from jaxbp.model.steps import check_batch
from jaxbp.worked.checks import MAX_STEPS
from jaxbp.worked.names import UNIT_NAME, check_frozen
from jaxbp.worked.plain import read_numbers, to_plain
from jaxbp.worked.verify import Check, jax_checks

if TYPE_CHECKING:
    from jaxbp._types import ArrayLike, Params

_HIDDEN_LETTERS = "jklmnpqrstuvwxyz"


@dataclasses.dataclass
class LayerTrace:
    """Layer ``l``: its forward and backward quantities, its update, and the pass after the update.

    Shapes for a batch of ``B`` examples and a layer with ``fan_in`` inputs and ``n`` units:
    ``inputs`` ``a_{l-1}`` (B, fan_in); ``weights``/``dloss_dweights``/``new_weights`` (fan_in, n);
    ``bias``/``dloss_dbias``/``new_bias`` (n,) or ``None`` without bias; ``products``
    ``a_{l-1} @ W_l``, ``pre_activations`` ``z_l``, ``activations`` ``a_l``,
    ``dloss_dactivations`` ``dL/da_l`` and ``deltas`` ``dL/dz_l`` (B, n);
    ``activation_derivatives`` ``da_l/dz_l`` (B, n), or the full Jacobian (B, n, n) for softmax;
    ``dloss_dinputs`` ``dL/da_{l-1}`` (B, fan_in); ``*_after``: the forward pass with the
    updated parameters.
    """

    index: int
    activation: str
    inputs: np.ndarray
    weights: np.ndarray
    bias: np.ndarray | None
    products: np.ndarray
    pre_activations: np.ndarray
    activations: np.ndarray
    dloss_dactivations: np.ndarray
    activation_derivatives: np.ndarray
    deltas: np.ndarray
    dloss_dweights: np.ndarray
    dloss_dbias: np.ndarray | None
    dloss_dinputs: np.ndarray
    new_weights: np.ndarray
    new_bias: np.ndarray | None
    products_after: np.ndarray
    pre_activations_after: np.ndarray
    activations_after: np.ndarray


@dataclasses.dataclass
class Trace:
    """One forward pass, loss, backward pass and SGD update, number by number.

    Attributes:
        sizes, activations, bias: the architecture (``bias`` one bool per layer).
        loss_name: a name in ``jaxbp.LOSSES``; learning_rate: the SGD step size.
        units: one letter per layer of units, input first (``("i", "j", "k", "o")``): the documents'
            notation, unit ``j`` of layer ``l`` is ``units[l] + str(j)``.
        x, y: the batch, ``(B, sizes[0])`` and ``(B, sizes[-1])``.
        loss: the batch-mean loss before the update; loss_after: after it.
        layers: ``layers[l - 1]`` is layer ``l``.
        checks: manual chain rule against JAX, one per quantity.
        history: the loss before each of ``steps`` SGD steps and after the last one.
        frozen: the parameters that take no update (``("b1", "b2")``), in jaxbp's names.
    """

    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    bias: tuple[bool, ...]
    loss_name: str
    learning_rate: float
    units: tuple[str, ...]
    x: np.ndarray
    y: np.ndarray
    loss: float
    loss_after: float
    layers: list[LayerTrace]
    checks: list[Check]
    history: list[float]
    frozen: tuple[str, ...] = ()

    @property
    def verified(self) -> bool:
        """True when every quantity agrees with JAX within float64 round-off."""
        return all(check.verified for check in self.checks)

    @property
    def spec(self) -> MLP:
        return MLP(sizes=self.sizes, activations=self.activations, bias=self.bias)

    def names(self) -> dict[str, Any]:
        """The quantities under the names of :mod:`jaxbp.worked.grading._records` (``z1``, ``dW2``, ...)."""
        names: dict[str, Any] = {"x": self.x, "y": self.y, "a0": self.x}
        names |= {
            "loss": self.loss,
            "loss_new": self.loss_after,
            "dL_da0": self.layers[0].dloss_dinputs,
        }
        for layer in self.layers:
            fields = {
                "W": layer.weights,
                "b": layer.bias,
                "xw": layer.products,
                "z": layer.pre_activations,
                "a": layer.activations,
                "dL_da": layer.dloss_dactivations,
                "da_dz": layer.activation_derivatives,
                "delta": layer.deltas,
                "dW": layer.dloss_dweights,
                "db": layer.dloss_dbias,
            }
            fields_after = {
                "W": layer.new_weights,
                "b": layer.new_bias,
                "xw": layer.products_after,
                "z": layer.pre_activations_after,
                "a": layer.activations_after,
            }
            names |= {f"{k}{layer.index}": v for k, v in fields.items() if v is not None}
            names |= {f"{k}{layer.index}_new": v for k, v in fields_after.items() if v is not None}
        return names

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: arrays become nested lists."""
        return to_plain(dataclasses.asdict(self))

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trace:
        """The inverse of :meth:`to_dict`."""
        fields = dict(data)
        for key in ("sizes", "activations", "bias", "units", "frozen"):
            fields[key] = tuple(fields.get(key, ()))
        fields["x"], fields["y"] = _array(fields["x"]), _array(fields["y"])
        layers = []
        for layer in fields["layers"]:
            arrays: dict[str, Any] = {
                k: _array(v) for k, v in layer.items() if k not in ("index", "activation")
            }
            arrays |= {"index": int(layer["index"]), "activation": str(layer["activation"])}
            layers.append(LayerTrace(**arrays))
        fields["layers"] = layers
        fields |= read_numbers(fields)
        return cls(**fields)

    @classmethod
    def from_json(cls, text: str) -> Trace:
        return cls.from_dict(json.loads(text))

    def _repr_html_(self) -> str:
        """Jupyter: the interactive page (:func:`jaxbp.worked.render.html.fragment`), inline."""
        from jaxbp.worked.render.html import fragment, title_of

        return fragment(self, title_of(self))

    def _repr_markdown_(self) -> str:
        """Jupyter: the worked example as Markdown (:func:`jaxbp.worked.render.markdown`)."""
        from jaxbp.worked.render import markdown
        from jaxbp.worked.render.html import title_of

        return markdown(self, title_of(self))


def _array(value: Any) -> np.ndarray | None:
    return None if value is None else np.asarray(value, np.float64)


def default_units(num_layers: int) -> tuple[str, ...]:
    """The documents' unit letters: ``i`` for the input, ``o`` for the output, ``h`` for a single hidden
    layer, ``j, k, l, ...`` for several (``("i", "j", "k", "o")`` as in documents 000/002/004)."""
    hidden = num_layers - 1
    letters = ("h",) if hidden == 1 else tuple(_HIDDEN_LETTERS[:hidden])
    if hidden > len(_HIDDEN_LETTERS):
        letters = tuple(f"h{index}_" for index in range(1, hidden + 1))
    return ("i", *letters, "o")


def explain(
    spec: MLP,
    loss: str,
    params: Params,
    x: ArrayLike,
    y: ArrayLike,
    lr: float,
    *,
    steps: int = 1,
    units: Sequence[str] | None = None,
    frozen: Sequence[str] = (),
    on_step: Callable[[int, float], None] | None = None,
) -> Trace:
    """One SGD step computed by the manual chain rule, every quantity checked against ``jax.grad``.

    Args:
        spec: the architecture.
        loss: a name in ``jaxbp.LOSSES``.
        params: the parameters before the step, layout of ``MLP.init`` (any float dtype; all the
            arithmetic is float64).
        x: float array ``(batch, sizes[0])`` or ``(sizes[0],)``.
        y: float array ``(batch, sizes[-1])`` or ``(sizes[-1],)``.
        lr: the SGD learning rate, finite and > 0.
        steps: how many SGD steps ``history`` records (the trace details the first), at most
            :data:`jaxbp.worked.checks.MAX_STEPS`.
        units: one name per layer of units for the documents' notation; default :func:`default_units`.
        frozen: parameters that take no update, named ``"W1"``, ``"b2"``, ... (layer ``l`` from 1).
        on_step: called as ``on_step(step, loss)`` after each of the ``steps`` SGD steps (a
            progress display for long runs).

    Returns:
        A :class:`Trace`.

    Raises:
        ValueError, TypeError: on a bad spec/params/x/y combination, learning rate, steps or units.
    """
    where = "explain"
    if not isinstance(spec, MLP):
        raise TypeError(
            f"explain: spec must be a jaxbp.MLP, got {type(spec).__name__}; for a layer network "
            f"use jaxbp.explain_sequential, for your own model jaxbp.loss_and_grad."
        )
    _checks.check_name(where, "loss", loss, LOSSES)
    _checks.check_on_step(where, on_step)
    check_batch(where, spec, loss, params, x, y, pairing=False)
    _checks.check_learning_rate(where, lr)
    steps = _checks.check_positive_int(where, "steps", steps, MAX_STEPS)
    units = default_units(spec.num_layers) if units is None else tuple(units)
    if len(units) != len(spec.sizes) or not all(
        isinstance(u, str) and UNIT_NAME.fullmatch(u) for u in units
    ):
        raise ValueError(
            f"{where}: units needs one name per layer of units ({len(spec.sizes)}), each a letter "
            f"and up to 7 letters, digits or _ (e.g. i, h, o), got {str(units)[:80]}."
        )
    frozen = check_frozen(where, spec, frozen)
    params64 = [{k: np.asarray(v, np.float64) for k, v in layer.items()} for layer in params]
    x64, y64 = np.atleast_2d(np.asarray(x, np.float64)), np.atleast_2d(np.asarray(y, np.float64))
    # inf/nan (e.g. cross-entropy of a linear output) stay in the trace for the diagnostics to name
    with np.errstate(all="ignore"):
        record = manual.backward(spec, loss, params64, x64, y64)
        new_params = sgd_step(params64, record.grads, float(lr), frozen)
        after = manual.forward(spec, new_params, x64)
        loss_after = manual.loss_value(loss, after.activations[-1], y64)
        history = _history(spec, loss, params64, x64, y64, float(lr), steps, frozen, on_step)
    layers = [
        _layer(spec, index, params64, new_params, record, after) for index in range(spec.num_layers)
    ]
    return Trace(
        sizes=spec.sizes,
        activations=spec.activations,
        bias=spec.layer_bias,
        loss_name=loss,
        learning_rate=float(lr),
        units=units,
        x=x64,
        y=y64,
        loss=record.loss,
        loss_after=loss_after,
        layers=layers,
        checks=jax_checks(spec, loss, params64, x64, y64, record),
        history=history,
        frozen=frozen,
    )


def sgd_step(
    params: list[dict[str, np.ndarray]],
    grads: list[dict[str, np.ndarray]],
    lr: float,
    frozen: Sequence[str] = (),
) -> list[dict[str, np.ndarray]]:
    """``manual.sgd``, then every parameter named in ``frozen`` put back to its old value."""
    new_params = manual.sgd(params, grads, lr)
    for name in frozen:
        layer, key = int(name[1:]) - 1, name[0].lower()
        new_params[layer][key] = params[layer][key]
    return new_params


def _layer(
    spec: MLP,
    index: int,
    params: list[dict[str, np.ndarray]],
    new_params: list[dict[str, np.ndarray]],
    record: manual.Backward,
    after: manual.Forward,
) -> LayerTrace:
    forward = record.forward
    return LayerTrace(
        index=index + 1,
        activation=spec.activations[index],
        inputs=forward.inputs[index],
        weights=params[index]["w"],
        bias=params[index].get("b"),
        products=forward.products[index],
        pre_activations=forward.pre_activations[index],
        activations=forward.activations[index],
        dloss_dactivations=record.dloss_dactivations[index],
        activation_derivatives=record.activation_derivatives[index],
        deltas=record.deltas[index],
        dloss_dweights=record.grads[index]["w"],
        dloss_dbias=record.grads[index].get("b"),
        dloss_dinputs=record.dloss_dinputs[index],
        new_weights=new_params[index]["w"],
        new_bias=new_params[index].get("b"),
        products_after=after.products[index],
        pre_activations_after=after.pre_activations[index],
        activations_after=after.activations[index],
    )


def _history(
    spec: MLP,
    loss: str,
    params: list[dict[str, np.ndarray]],
    x: np.ndarray,
    y: np.ndarray,
    lr: float,
    steps: int,
    frozen: tuple[str, ...],
    on_step: Callable[[int, float], None] | None,
) -> list[float]:
    history = []
    for step in range(1, steps + 1):
        value, grads = manual.backprop(spec, loss, params, x, y)
        history.append(value)
        params = sgd_step(params, grads, lr, frozen)
        if on_step is not None:
            on_step(step, value)
    history.append(manual.loss_value(loss, manual.forward(spec, params, x).activations[-1], y))
    return history
