"""``Sequential``: layers applied in order, as one static, hashable network spec.

Parameters are a list with one dict per layer (``{}`` for a layer without parameters, the
layouts of :mod:`jaxbp.layers.specs`), so ``jax.grad`` and the manual chain rule return
gradients in the same layout. Every shape is worked out when the spec is built: a layer that
cannot take its input shape raises there, naming the layer index and the shapes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.layers import ops, specs
from jaxbp.model import checks as _checks
from jaxbp.model.activations import ACTIVATIONS
from jaxbp.model.mlp import DEFAULT_INITIALIZER, INITIALIZERS

if TYPE_CHECKING:
    from jaxbp._types import Array, ArrayLike, Params


@dataclasses.dataclass(frozen=True)
class Sequential:
    """A network of layers applied in order; a callable model ``(params, x) -> prediction``.

    Args:
        layers: layer specs from :mod:`jaxbp.layers` (``Dense``, ``Conv1D``, ``Residual``, ...).
        input_shape: the shape of one example, without the batch axis, e.g. ``(40, 1)``.
        conv_impl: ``"im2col"``, ``"lax"``, or ``"auto"`` for the faster one on the backend.

    Raises:
        ValueError: when a layer cannot take the shape the previous one gives.

    Example:
        >>> import jax, jaxbp
        >>> from jaxbp.layers import Conv1D, Dense, Flatten
        >>> net = jaxbp.Sequential(
        ...     layers=(Conv1D(4, kernel_size=3, activation="relu"), Flatten(), Dense(2)),
        ...     input_shape=(8, 1),
        ... )
        >>> net.shapes
        ((8, 1), (6, 4), (24,), (2,))
        >>> params = net.init(jax.random.key(0))
        >>> [sorted((k, v.shape) for k, v in layer.items()) for layer in params]
        [[('b', (4,)), ('w', (3, 1, 4))], [], [('b', (2,)), ('w', (24, 2))]]
        >>> net(params, jax.numpy.ones((5, 8, 1))).shape
        (5, 2)
    """

    layers: tuple[Any, ...]
    input_shape: tuple[int, ...]
    conv_impl: str = "auto"

    def __post_init__(self) -> None:
        where = "Sequential"
        if not isinstance(self.layers, tuple | list) or not self.layers:
            raise ValueError(
                f"{where}: layers must be a non-empty tuple of layers, got {self.layers!r}."
            )
        for index, layer in enumerate(self.layers):
            if not isinstance(layer, specs.LAYER_TYPES):
                raise TypeError(
                    f"{where}: layers[{index}] is {type(layer).__name__}, not a layer; use one of "
                    f"{', '.join(t.__name__ for t in specs.LAYER_TYPES)}."
                )
        shape = self.input_shape
        if isinstance(shape, int) and not isinstance(shape, bool):
            shape = (shape,)
        if not isinstance(shape, tuple | list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape
        ):
            raise ValueError(
                f"{where}: input_shape must be a tuple of positive ints (one example, no batch "
                f"axis), e.g. (40, 1), got {self.input_shape!r}."
            )
        _checks.check_name(where, "conv_impl", self.conv_impl, ops.CONV_IMPLS)
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "input_shape", tuple(shape))
        self.shapes  # noqa: B018  (works out every shape now, so a bad one raises here)

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        """Per-example shapes: the input, then each layer's output."""
        shapes = [self.input_shape]
        for index, layer in enumerate(self.layers):
            where = f"Sequential: layer {index} ({type(layer).__name__})"
            shapes.append(specs.output_shape(layer, shapes[-1], where))
        return tuple(shapes)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The shape of one example's prediction."""
        return self.shapes[-1]

    def init(self, key: Array, dtype: Any = jnp.float32) -> Params:
        """Random initial parameters: weights by ``init_scheme`` (He for relu, else Glorot), zero biases.

        Args:
            key: a ``jax.random.key``; split once per layer.
            dtype: floating dtype of every leaf.

        Returns:
            A list with one dict per layer (``{}`` for layers without parameters).
        """
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"Sequential.init: dtype must be floating, got {dtype}.")
        return _init_layers(self.layers, self.shapes, key, dtype)

    def apply(self, params: Params, x: ArrayLike) -> Array:
        """The forward pass.

        Args:
            params: as returned by ``init``.
            x: float array ``(batch, *input_shape)`` or one example ``input_shape``.

        Returns:
            ``(batch, *output_shape)`` or ``output_shape``.

        Raises:
            ValueError, TypeError: when params or x do not fit the spec.
        """
        where = "Sequential.apply"
        check_params(where, self, params)
        x = _checks.as_float_array(where, "x", x)
        shape, single = tuple(x.shape), x.ndim == len(self.input_shape)
        example_shape = shape if single else shape[1:]
        if example_shape != self.input_shape or (not single and shape[0] == 0):
            raise ValueError(
                f"{where}: x has shape {shape} but the network takes examples of shape "
                f"{self.input_shape}; pass x of shape (batch, {', '.join(map(str, self.input_shape))})."
            )
        x = jnp.asarray(x)
        out = apply_layers(self.layers, params, x[None] if single else x, self.conv_impl)
        return out[0] if single else out

    __call__ = apply


def _init_layers(layers: tuple[Any, ...], shapes: Any, key: Array, dtype: Any) -> Params:
    params: Params = []
    for layer, shape, layer_key in zip(
        layers, shapes, jax.random.split(key, len(layers)), strict=False
    ):
        if isinstance(layer, specs.Residual):
            inner = [shape]
            for sub in layer.layers:
                inner.append(specs.output_shape(sub, inner[-1], "Sequential.init"))
            params.append({"layers": _init_layers(layer.layers, inner, layer_key, dtype)})
            continue
        entry = {}
        for name, param_shape in specs.param_shapes(layer, shape).items():
            if name == "b":
                entry[name] = jnp.zeros(param_shape, dtype)
            else:
                scheme = layer.init_scheme or DEFAULT_INITIALIZER.get(layer.activation, "glorot")
                entry[name] = INITIALIZERS[scheme](layer_key, param_shape, dtype)
        params.append(entry)
    return params


def check_params(where: str, spec: Sequential, params: Any) -> None:
    """Check ``params`` has one dict per layer with the keys and shapes the spec expects."""
    _check_layer_params(where, spec.layers, spec.shapes, params, "params")


def _check_layer_params(where: str, layers: Any, shapes: Any, params: Any, name: str) -> None:
    if not isinstance(params, list | tuple):
        raise TypeError(
            f"{where}: {name} must be a list with one dict per layer, got {type(params).__name__}; "
            f"build it with spec.init(key)."
        )
    if len(params) != len(layers):
        raise ValueError(
            f"{where}: {name} has {len(params)} entries but the network has {len(layers)} layers; "
            f"build it with spec.init(key)."
        )
    for index, (layer, shape, entry) in enumerate(zip(layers, shapes, params, strict=False)):
        label = f"{name}[{index}]"
        if not isinstance(entry, Mapping):
            raise TypeError(f"{where}: {label} must be a dict, got {type(entry).__name__}.")
        if isinstance(layer, specs.Residual):
            if set(entry) != {"layers"}:
                raise ValueError(
                    f"{where}: {label} must be {{'layers': [...]}} for Residual, got keys {sorted(entry)}."
                )
            inner = [shape]
            for sub in layer.layers:
                inner.append(specs.output_shape(sub, inner[-1], where))
            _check_layer_params(where, layer.layers, inner, entry["layers"], f'{label}["layers"]')
            continue
        expected = specs.param_shapes(layer, shape)
        if set(entry) != set(expected):
            raise ValueError(
                f"{where}: {label} has keys {sorted(entry)} but layer {index} "
                f"({type(layer).__name__}) expects {sorted(expected)}."
            )
        for key, expected_shape in expected.items():
            got = tuple(np.shape(entry[key]))
            if got != expected_shape:
                raise ValueError(
                    f'{where}: {label}["{key}"] has shape {got} but layer {index} '
                    f"({type(layer).__name__}) expects {expected_shape}."
                )
            _checks.as_float_array(where, f'{label}["{key}"]', entry[key])


def apply_layer(layer: Any, params: Any, x: Array, impl: str) -> Array:
    """One layer's forward pass on a batch ``x`` of shape ``(batch, *input_shape)``."""
    if isinstance(layer, specs.Dense):
        z = x @ params["w"]  # (batch, fan_in) @ (fan_in, features)
        if "b" in params:
            z = z + params["b"]
        return ACTIVATIONS[layer.activation](z)
    if isinstance(layer, specs.CONV_TYPES):
        z = ops.conv(
            x, params["w"], params.get("b"), stride=layer.stride, padding=layer.padding, impl=impl
        )
        return ACTIVATIONS[layer.activation](z)
    if isinstance(layer, specs.POOL_TYPES):
        return ops.pool(x, window=layer.window, stride=layer.stride, kind=layer.kind)
    if isinstance(layer, specs.Flatten):
        return x.reshape(x.shape[0], -1)
    if isinstance(layer, specs.Reshape):
        return x.reshape(x.shape[0], *layer.shape)
    if isinstance(layer, specs.Activation):
        return ACTIVATIONS[layer.name](x)
    if isinstance(layer, specs.Residual):
        return x + apply_layers(layer.layers, params["layers"], x, impl)
    raise TypeError(f"{type(layer).__name__} is not a jaxbp layer.")


def apply_layers(layers: tuple[Any, ...], params: Any, x: Array, impl: str) -> Array:
    """The layers in order, without validation (for already-checked, traced code)."""
    for layer, layer_params in zip(layers, params, strict=True):
        x = apply_layer(layer, layer_params, x, impl)
    return x
