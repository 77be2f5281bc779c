"""Layer specs: static, hashable descriptions of one layer each, and their shape arithmetic.

Nothing here uses JAX, so both the JAX forward pass (:mod:`jaxbp.layers.ops`) and the NumPy
chain rule (:mod:`jaxbp.manual.layers`) read the same specs. Arrays are channels-last: a 1-D signal
is ``(batch, length, channels)``, an image ``(batch, height, width, channels)``. Parameter layout::

    Dense:   {"w": (fan_in, features), "b": (features,)}
    Conv1D:  {"w": (kernel, in_channels, features), "b": (features,)}
    Conv2D:  {"w": (kernel_h, kernel_w, in_channels, features), "b": (features,)}
    Residual: {"layers": [one dict per inner layer]}
    pooling, Flatten, Reshape, Activation: {} (no parameters)

The layers of modern networks (Embedding, LayerNorm, SelfAttention, Dropout, BatchNorm, ...) are
specified in :mod:`jaxbp.layers.modern`; their shapes are worked out here with the rest.

A convolution's output length along each spatial axis is
``(length + pad_low + pad_high - kernel) // stride + 1``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

from jaxbp.layers import modern, ops
from jaxbp.model.activations import ACTIVATIONS

Shape = tuple[int, ...]


def _positive_tuple(where: str, name: str, value: Any, ndim: int) -> tuple[int, ...]:
    """The rule for sizes shared with the functions on arrays (:func:`ops.positive_ints`), and
    each size at most :data:`modern.MAX_SIZE`."""
    values = ops.positive_ints(where, name, value, ndim)
    if max(values) > modern.MAX_SIZE:
        raise ValueError(
            f"{where}: {name} must be at most {modern.MAX_SIZE:,} (XLA's dimensions are int32), "
            f"got {modern.short_repr(value)}."
        )
    return values


def _padding(where: str, value: Any, ndim: int) -> Any:
    """The padding rule shared with the functions on arrays (:func:`ops.padding_pairs`), and
    each pad at most :data:`modern.MAX_SIZE`."""
    pads = ops.padding_pairs(where, value, ndim)
    if not isinstance(pads, str) and max(max(pair) for pair in pads) > modern.MAX_SIZE:
        raise ValueError(
            f"{where}: padding must be at most {modern.MAX_SIZE:,} per side (XLA's dimensions "
            f"are int32), got {modern.short_repr(value)}."
        )
    return pads


#: The weight initialisers a Dense or convolution layer names (``init_scheme``); ``None`` picks
#: He for relu, else Glorot.
INIT_SCHEMES = ("glorot", "he", "lecun")


def _check_weights(where: str, layer: Any) -> None:
    """``features`` one positive int, ``bias`` a bool, ``init_scheme`` a name or ``None``."""
    modern.check_positive_int(where, "features", layer.features)
    if not isinstance(layer.bias, bool):
        raise ValueError(f"{where}: bias must be true or false, got {modern.short_repr(layer.bias)}.")  # fmt: skip
    if layer.init_scheme is not None and (
        not isinstance(layer.init_scheme, str) or layer.init_scheme not in INIT_SCHEMES
    ):
        raise ValueError(
            f"{where}: unknown init_scheme {modern.short_repr(layer.init_scheme)}; valid: "
            f"{', '.join(map(repr, INIT_SCHEMES))} or null (He for relu, else Glorot)."
        )


def _check_activation(where: str, name: Any) -> None:
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(
            f"{where}: unknown activation {name!r}; valid names are {', '.join(sorted(ACTIVATIONS))}."
        )


@dataclasses.dataclass(frozen=True)
class Dense:
    """A fully connected layer ``a = f(x @ w + b)`` on ``(batch, fan_in)`` inputs.

    Args:
        features: output units.
        activation: a name in ``jaxbp.ACTIVATIONS``.
        bias: whether the layer has ``b``.
        init_scheme: ``"glorot"``, ``"he"``, ``"lecun"`` or ``None`` (He for relu, else Glorot).
    """

    features: int
    activation: str = "linear"
    bias: bool = True
    init_scheme: str | None = None

    def __post_init__(self) -> None:
        _check_weights("Dense", self)
        _check_activation("Dense", self.activation)


@dataclasses.dataclass(frozen=True)
class _Conv:
    """The fields and checks Conv1D and Conv2D share; ``ndim`` is the number of spatial axes."""

    ndim: ClassVar[int]
    features: int
    kernel_size: Any
    stride: Any = 1
    padding: Any = "VALID"
    activation: str = "linear"
    bias: bool = True
    init_scheme: str | None = None

    def __post_init__(self) -> None:
        where, ndim = type(self).__name__, self.ndim
        _check_weights(where, self)
        object.__setattr__(
            self, "kernel_size", _positive_tuple(where, "kernel_size", self.kernel_size, ndim)
        )
        object.__setattr__(self, "stride", _positive_tuple(where, "stride", self.stride, ndim))
        object.__setattr__(self, "padding", _padding(where, self.padding, ndim))
        _check_activation(where, self.activation)


@dataclasses.dataclass(frozen=True)
class Conv1D(_Conv):
    """A 1-D convolution (cross-correlation, as in every framework) on ``(batch, length, channels)``.

    ``out[n, i, o] = f(sum_{k, c} x_pad[n, i * stride + k, c] * w[k, c, o] + b[o])``.

    Args:
        features: output channels.
        kernel_size: kernel length.
        stride: step between windows.
        padding: ``"VALID"`` (none), ``"SAME"`` (output length ``ceil(length / stride)``), an int
            for both ends, or a ``(low, high)`` pair.
        activation, bias, init_scheme: as for :class:`Dense`.
    """

    ndim: ClassVar[int] = 1


@dataclasses.dataclass(frozen=True)
class Conv2D(_Conv):
    """A 2-D convolution on ``(batch, height, width, channels)``; arguments as :class:`Conv1D`,
    each an int for both axes or a pair (padding: one int or ``(low, high)`` pair per axis)."""

    ndim: ClassVar[int] = 2


@dataclasses.dataclass(frozen=True)
class _Pool:
    """The fields and checks the pooling layers share; ``kind`` is ``"max"`` or ``"avg"``."""

    ndim: ClassVar[int]
    kind: ClassVar[str]
    window: Any
    stride: Any = None

    def __post_init__(self) -> None:
        where, ndim = type(self).__name__, self.ndim
        window = _positive_tuple(where, "window", self.window, ndim)
        stride = window if self.stride is None else self.stride
        object.__setattr__(self, "window", window)
        object.__setattr__(self, "stride", _positive_tuple(where, "stride", stride, ndim))


@dataclasses.dataclass(frozen=True)
class MaxPool1D(_Pool):
    """The maximum over windows of ``window`` steps, ``stride`` apart (default: ``window``), per channel."""

    ndim: ClassVar[int] = 1
    kind: ClassVar[str] = "max"


@dataclasses.dataclass(frozen=True)
class MaxPool2D(_Pool):
    """The maximum over ``window`` patches of an image, per channel."""

    ndim: ClassVar[int] = 2
    kind: ClassVar[str] = "max"


@dataclasses.dataclass(frozen=True)
class AvgPool1D(_Pool):
    """The mean over windows of ``window`` steps, ``stride`` apart (default: ``window``), per channel."""

    ndim: ClassVar[int] = 1
    kind: ClassVar[str] = "avg"


@dataclasses.dataclass(frozen=True)
class AvgPool2D(_Pool):
    """The mean over ``window`` patches of an image, per channel."""

    ndim: ClassVar[int] = 2
    kind: ClassVar[str] = "avg"


@dataclasses.dataclass(frozen=True)
class Flatten:
    """``(batch, d1, d2, ...) -> (batch, d1 * d2 * ...)``, row-major (channels vary fastest)."""


@dataclasses.dataclass(frozen=True)
class Reshape:
    """Reshape every example to ``shape`` (the batch axis stays), e.g. ``(40,) -> (40, 1)``."""

    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        shape = tuple(self.shape) if isinstance(self.shape, tuple | list) else self.shape
        ndim = len(shape) if isinstance(shape, tuple) and shape else 1
        object.__setattr__(self, "shape", _positive_tuple("Reshape", "shape", shape, ndim))


@dataclasses.dataclass(frozen=True)
class Activation:
    """An activation as a layer of its own, ``a = f(x)`` (softmax over the last axis)."""

    name: str

    def __post_init__(self) -> None:
        _check_activation("Activation", self.name)


@dataclasses.dataclass(frozen=True)
class Residual:
    """A skip connection around a block: ``out = x + block(x)``; the block keeps x's shape."""

    layers: tuple[Any, ...]

    def __post_init__(self) -> None:
        layers = tuple(self.layers) if isinstance(self.layers, tuple | list) else None
        if not layers:
            raise ValueError(
                f"Residual: layers must be a non-empty tuple of layers, got {self.layers!r}."
            )
        for index, layer in enumerate(layers):
            if not isinstance(layer, LAYER_TYPES):
                raise TypeError(
                    f"Residual: layers[{index}] is {type(layer).__name__}, not a layer; use one of "
                    f"{', '.join(t.__name__ for t in LAYER_TYPES)}."
                )
        object.__setattr__(self, "layers", layers)


CONV_TYPES = (Conv1D, Conv2D)
POOL_TYPES = (MaxPool1D, MaxPool2D, AvgPool1D, AvgPool2D)
LAYER_TYPES: tuple[type, ...] = (
    Dense,
    *CONV_TYPES,
    *POOL_TYPES,
    Flatten,
    Reshape,
    Activation,
    Residual,
    *modern.MODERN_TYPES,
)


# --- shape arithmetic --------------------------------------------------------------------
def conv_pads(layer: Any, spatial: Shape) -> tuple[tuple[int, int], ...]:
    """Explicit ``(low, high)`` padding per spatial axis (``"SAME"`` as ``lax`` resolves it)."""
    return ops.conv_pads(layer.padding, layer.kernel_size, layer.stride, spatial)


def output_shape(layer: Any, shape: Shape, where: str) -> Shape:
    """The per-example output shape of ``layer`` on a per-example input ``shape``.

    Raises:
        ValueError: when the layer cannot take that shape; the message starts with ``where``.
    """
    if isinstance(layer, Dense):
        if len(shape) != 1:
            raise ValueError(
                f"{where}: Dense needs (batch, features) inputs but gets examples of shape "
                f"{shape}; put a Flatten() before it."
            )
        return (layer.features,)
    if isinstance(layer, CONV_TYPES + POOL_TYPES):
        ndim, name = layer.ndim, type(layer).__name__
        if len(shape) != ndim + 1:
            layout = "(length, channels)" if ndim == 1 else "(height, width, channels)"
            raise ValueError(
                f"{where}: {name} needs examples of shape {layout} but gets {shape}; "
                f"add a Reshape layer, e.g. Reshape({(*shape, 1)})."
            )
        if isinstance(layer, CONV_TYPES):
            window, pads = layer.kernel_size, conv_pads(layer, shape[:-1])
        else:
            window, pads = layer.window, ((0, 0),) * ndim
        out = ops.window_output(shape[:-1], window, layer.stride, pads)
        if min(out) < 1:
            raise ValueError(
                f"{where}: {name} with window {window} and padding {pads} does not fit examples "
                f"of spatial shape {shape[:-1]}; use a smaller window, more padding, or a larger input."
            )
        return (*out, layer.features if isinstance(layer, CONV_TYPES) else shape[-1])
    if isinstance(layer, Flatten):
        return (math.prod(shape),)
    if isinstance(layer, Reshape):
        if math.prod(layer.shape) != math.prod(shape):
            raise ValueError(
                f"{where}: Reshape{layer.shape} cannot take examples of shape {shape} "
                f"({math.prod(shape)} values, not {math.prod(layer.shape)})."
            )
        return layer.shape
    if isinstance(layer, Activation):
        return shape
    if isinstance(layer, Residual):
        inner = shape
        for index, sub in enumerate(layer.layers):
            inner = output_shape(sub, inner, f"{where}, inner layer {index}")
        if inner != shape:
            raise ValueError(
                f"{where}: Residual block maps examples of shape {shape} to {inner}; x + block(x) "
                f"needs the same shape, so make the block's last layer give {shape}."
            )
        return shape
    if isinstance(layer, modern.MODERN_TYPES):
        return modern.output_shape(layer, shape, where)
    raise TypeError(f"{where}: {type(layer).__name__} is not a jaxbp layer.")


def param_shapes(layer: Any, shape: Shape) -> dict[str, Shape]:
    """The shape of each parameter of ``layer`` (not Residual) on per-example inputs ``shape``."""
    shapes: dict[str, Shape]
    if isinstance(layer, Dense):
        shapes = {"w": (shape[0], layer.features)}
    elif isinstance(layer, CONV_TYPES):
        shapes = {"w": (*layer.kernel_size, shape[-1], layer.features)}
    else:
        return modern.param_shapes(layer, shape)
    if layer.bias:
        shapes["b"] = (layer.features,)
    return shapes
