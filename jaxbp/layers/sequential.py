"""``Sequential``: layers applied in order, as one static, hashable network spec.

Parameters are a list with one dict per layer (``{}`` for a layer without parameters, the
layouts of :mod:`jaxbp.layers.specs`), so ``jax.grad`` and the manual chain rule return
gradients in the same layout. Every shape is worked out when the spec is built: a layer that
cannot take its input shape raises there, naming the layer index and the shapes.

Random keys and running state are arguments, never hidden: a ``key`` is split into one key per
layer with ``jax.random.split(key, len(layers))`` (a residual block splits its own again for its
inner layers), so the same key always drops the same entries. BatchNorm reads and returns its
running statistics through ``state``, a list in the layout of the params.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

from jaxbp.layers import checks as _layer_checks
from jaxbp.layers import modern, modern_forward, ops, specs
from jaxbp.layers.checks import check_params
from jaxbp.model import checks as _checks
from jaxbp.model.activations import ACTIVATIONS
from jaxbp.model.mlp import DEFAULT_INITIALIZER, INITIALIZERS

if TYPE_CHECKING:
    from collections.abc import Callable

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
        _layer_checks.check_embedding_first(where, self.layers)
        shape = _layer_checks.check_input_shape(where, self.input_shape)
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
    def param_shapes(self) -> list[Any]:
        """The shape of every parameter, in the layout of ``init``'s params."""
        return _shape_tree(self.layers, self.shapes, specs.param_shapes)

    @property
    def state_shapes(self) -> list[Any]:
        """The shape of every piece of running state, in the layout of ``init_state``'s state."""
        return _shape_tree(self.layers, self.shapes, modern.state_shapes)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The shape of one example's prediction."""
        return self.shapes[-1]

    @property
    def output_activation(self) -> str | None:
        """The activation the predictions come out of (``Flatten`` and ``Reshape`` looked through):
        an ``Activation`` layer's name, or a ``Dense`` or convolution's ``activation``; ``None``
        when the last layer is of another kind (a norm, a pool, a residual block)."""
        layers = [layer for layer in self.layers if not isinstance(layer, specs.Flatten | specs.Reshape)]  # fmt: skip
        last = layers[-1] if layers else None
        if isinstance(last, specs.Activation):
            return last.name
        if isinstance(last, specs.Dense | specs.Conv1D | specs.Conv2D):
            return last.activation
        return None

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
        _checks.check_init_key("Sequential.init", key)
        shapes = jax.tree.leaves(self.param_shapes, is_leaf=lambda leaf: isinstance(leaf, tuple))
        _checks.check_param_memory("Sequential.init", shapes, dtype)
        return _init_layers(self.layers, self.shapes, key, dtype)

    def init_state(self, dtype: Any = jnp.float32) -> Params:
        """The running state: BatchNorm's running mean (zeros) and variance (ones) per channel,
        ``{}`` for every other layer, ``{"layers": [...]}`` for a residual block."""
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"Sequential.init_state: dtype must be floating, got {dtype}.")
        return modern_forward.init_state(self.state_shapes, dtype)

    @property
    def stateful(self) -> bool:
        """Whether a layer keeps running state (BatchNorm), so the network needs
        :meth:`apply_with_state`."""
        return _has(self.layers, lambda layer: isinstance(layer, modern.BatchNorm))

    @property
    def uses_dropout(self) -> bool:
        """Whether a Dropout with a rate above zero is in the network, so that training it needs
        a random key (:meth:`apply` with ``key``)."""
        return _has(self.layers, lambda layer: isinstance(layer, modern.Dropout) and layer.rate > 0)

    def apply(self, params: Params, x: ArrayLike, *, key: Array | None = None) -> Array:
        """The forward pass.

        Args:
            params: as returned by ``init``.
            x: float array ``(batch, *input_shape)`` or one example ``input_shape``; integer
                tokens when the first layer is an ``Embedding``.
            key: a ``jax.random.key`` turns Dropout on (split once per layer); ``None``, the
                default, is evaluation: Dropout passes its input through.

        Returns:
            ``(batch, *output_shape)`` or ``output_shape``.

        Raises:
            ValueError, TypeError: when params, x or key do not fit the spec, or when a layer
                keeps running state (use :meth:`apply_with_state`).
        """
        where = "Sequential.apply"
        if self.stateful:
            raise ValueError(
                f"{where}: the network has a BatchNorm, whose running statistics are state; call "
                f"apply_with_state(params, state, x, training=...) with state = spec.init_state()."
            )
        check_params(where, self, params)
        batch, single = self._batch(where, x, key)
        out = apply_layers(self.layers, params, batch, self.conv_impl, key)
        return out[0] if single else out

    __call__ = apply

    def apply_with_state(
        self,
        params: Params,
        state: Params,
        x: ArrayLike,
        *,
        key: Array | None = None,
        training: bool = True,
    ) -> tuple[Array, Params]:
        """The forward pass with running state: ``(prediction, new_state)``.

        In training, BatchNorm normalises with the batch's statistics and returns running ones
        moved towards them; Dropout is on when a ``key`` is given. With ``training=False``,
        BatchNorm uses the running statistics, the state comes back unchanged and Dropout is off.

        Args:
            params: as returned by ``init``.
            state: as returned by ``init_state``.
            x, key: as for :meth:`apply`.
            training: batch statistics and dropout (``True``), or evaluation.

        Returns:
            The prediction and the new state, in the layout of ``state``.
        """
        where = "Sequential.apply_with_state"
        check_params(where, self, params)
        _layer_checks.check_state(where, self, state)
        if not isinstance(training, bool):
            raise TypeError(f"{where}: training must be True or False, got {training!r}.")
        batch, single = self._batch(where, x, key)
        if training and batch.shape[0] == 1:
            _refuse_one_value_per_channel(where, self.layers, self.shapes)
        out, new_state = run_layers(
            self.layers, params, state, batch, self.conv_impl, key, training
        )
        return (out[0] if single else out), new_state

    def _batch(self, where: str, x: ArrayLike, key: Any) -> tuple[Array, bool]:
        """``x`` checked, with a batch axis, and whether it came as one example."""
        array = jnp.asarray(_layer_checks.check_input(where, self, x))
        _layer_checks.check_key(where, key)
        single = array.ndim == len(self.input_shape)
        return (array[None] if single else array), single

    def dropout_masks(self, key: Array, batch: int) -> list[Any]:
        """The entries each Dropout keeps when the forward pass gets ``key`` and ``batch``
        examples: in the layout of the layers, a bool array ``(batch, *input)`` per Dropout, a
        list per residual block, ``None`` elsewhere (the ``masks`` of
        :func:`jaxbp.manual.layers.backprop`)."""
        _layer_checks.check_key("Sequential.dropout_masks", key)
        _checks.check_positive_int("Sequential.dropout_masks", "batch", batch)
        return dropout_masks(self.layers, self.shapes, key, batch)


def _has(layers: tuple[Any, ...], test: Callable[[Any], bool]) -> bool:
    """Whether a layer, at the top or inside a residual block, passes ``test``."""
    return any(
        test(layer) or (isinstance(layer, specs.Residual) and _has(layer.layers, test))
        for layer in layers
    )


def _refuse_one_value_per_channel(
    where: str, layers: tuple[Any, ...], shapes: Any, label: str = "layer"
) -> None:
    """A BatchNorm in training on one example whose channels have one position each normalises
    every channel over a single value: ``x - mean`` is 0, so its output is its bias whatever the
    input, and the running variance moves towards 0."""
    for index, (layer, shape) in enumerate(zip(layers, shapes, strict=False)):
        if isinstance(layer, specs.Residual):
            inner = _inner_shapes(layer, shape)
            _refuse_one_value_per_channel(
                where, layer.layers, inner, f"{label} {index}, inner layer"
            )
        elif isinstance(layer, modern.BatchNorm) and math.prod(shape[:-1]) == 1:
            raise ValueError(
                f"{where}: {label} {index} (BatchNorm) in training normalises each "
                f"channel over the batch, and one example of shape {shape} gives it one value "
                f"per channel: its output would be its bias whatever x is, and the running "
                f"variance would move towards 0. Pass a batch of at least 2 examples, or "
                f"training=False to use the running statistics."
            )


def _inner_shapes(layer: Any, shape: Any) -> list[Any]:
    inner = [shape]
    for sub in layer.layers:
        inner.append(specs.output_shape(sub, inner[-1], "Sequential"))
    return inner


def _init_layers(layers: tuple[Any, ...], shapes: Any, key: Array, dtype: Any) -> Params:
    params: Params = []
    for layer, shape, layer_key in zip(
        layers, shapes, jax.random.split(key, len(layers)), strict=False
    ):
        if isinstance(layer, specs.Residual):
            inner = _init_layers(layer.layers, _inner_shapes(layer, shape), layer_key, dtype)
            params.append({"layers": inner})
            continue
        shapes = specs.param_shapes(layer, shape)
        if isinstance(layer, modern.MODERN_TYPES):
            params.append(modern_forward.init(shapes, layer_key, dtype))
            continue
        entry = {}
        for name, param_shape in shapes.items():
            if name == "b":
                entry[name] = jnp.zeros(param_shape, dtype)
            else:
                scheme = layer.init_scheme or DEFAULT_INITIALIZER.get(layer.activation, "glorot")
                entry[name] = INITIALIZERS[scheme](layer_key, param_shape, dtype)
        params.append(entry)
    return params


def _shape_tree(layers: tuple[Any, ...], shapes: Any, shapes_of: Any) -> list[Any]:
    """One dict per layer, ``{"layers": [...]}`` for a residual block, of ``shapes_of(layer, shape)``."""
    tree: list[Any] = []
    for layer, shape in zip(layers, shapes, strict=False):
        if isinstance(layer, specs.Residual):
            inner = _shape_tree(layer.layers, _inner_shapes(layer, shape), shapes_of)
            tree.append({"layers": inner})
        else:
            tree.append(shapes_of(layer, shape))
    return tree


# --- the forward pass, without validation (for checked, traced code) ---------------------------
def apply_layer(layer: Any, params: Any, x: Array, impl: str) -> Array:
    """One layer without key or state on a batch ``x`` of shape ``(batch, *input_shape)``."""
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
    return run_layer(layer, params, None, x, impl, None, True)[0]


def run_layer(
    layer: Any, params: Any, state: Any, x: Array, impl: str, key: Any, training: bool
) -> tuple[Array, Any]:
    """One layer on a batch ``x``: ``(output, new state)``; ``state`` is ``None`` for a network
    without running state."""
    if isinstance(layer, modern.MODERN_TYPES):
        return modern_forward.run(layer, params, state, x, key, training)
    if isinstance(layer, specs.Residual):
        inner = None if state is None else state["layers"]
        block, inner = run_layers(layer.layers, params["layers"], inner, x, impl, key, training)
        return x + block, None if state is None else {"layers": inner}
    return apply_layer(layer, params, x, impl), state


def run_layers(
    layers: tuple[Any, ...], params: Any, state: Any, x: Array, impl: str, key: Any, training: bool
) -> tuple[Array, Any]:
    """The layers in order: ``(output, new state)`` (``None`` when ``state`` is ``None``)."""
    states = [None] * len(layers) if state is None else state
    keys = modern_forward.layer_keys(key, len(layers))
    new_states = []
    for layer, layer_params, layer_state, layer_key in zip(
        layers, params, states, keys, strict=True
    ):
        x, layer_state = run_layer(layer, layer_params, layer_state, x, impl, layer_key, training)
        new_states.append(layer_state)
    return x, None if state is None else new_states


def apply_layers(
    layers: tuple[Any, ...], params: Any, x: Array, impl: str, key: Any = None
) -> Array:
    """The layers in order, without running state; Dropout active when ``key`` is given."""
    return run_layers(layers, params, None, x, impl, key, True)[0]


def dropout_masks(layers: tuple[Any, ...], shapes: Any, key: Array, batch: int) -> list[Any]:
    """The entries each Dropout keeps with ``key``: a bool array ``(batch, *shape)`` per Dropout,
    a list per residual block, ``None`` elsewhere."""
    masks: list[Any] = []
    keys = modern_forward.layer_keys(key, len(layers))
    for layer, shape, layer_key in zip(layers, shapes, keys, strict=False):
        if isinstance(layer, specs.Residual):
            inner = _inner_shapes(layer, shape)
            masks.append(dropout_masks(layer.layers, inner, layer_key, batch))
        else:
            masks.append(modern_forward.mask(layer, layer_key, (batch, *shape)))
    return masks
