"""The MLP spec: a static, hashable architecture, and the pure forward pass over plain pytree params.

Parameter layout, one dict per layer ``l = 1..L`` (stored at list index ``l - 1``)::

    params[l - 1] == {"w": W_l of shape (fan_in, fan_out), "b": b_l of shape (fan_out,)}

with no ``"b"`` key for a layer without bias. The forward pass is, with ``a_0 = x``::

    z_l = a_{l-1} @ W_l + b_l        # (batch, fan_in) @ (fan_in, fan_out) + (fan_out,)
    a_l = f_l(z_l)

so ``x @ w + b`` needs no transpose, and ``jax.grad`` returns gradients with the same layout.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.model import checks as _checks
from jaxbp.model.activations import ACTIVATIONS

if TYPE_CHECKING:
    from jaxbp._types import Array, ArrayLike, Params

#: Weight initialisers by name (all from ``jax.nn.initializers``, biases start at zero).
INITIALIZERS = {
    "glorot": jax.nn.initializers.glorot_normal(),
    "he": jax.nn.initializers.he_normal(),
    "lecun": jax.nn.initializers.lecun_normal(),
}

#: The initialiser each activation gets when ``MLP.init_scheme`` is ``None``.
DEFAULT_INITIALIZER = {
    "relu": "he",
    "sigmoid": "glorot",
    "tanh": "glorot",
    "softmax": "glorot",
    "linear": "glorot",
    "gelu": "he",
}


@dataclasses.dataclass(frozen=True)
class MLP:
    """A multi-layer perceptron's architecture: static and hashable, so ``jit`` takes it as static.

    Args:
        sizes: units per layer including the input, e.g. ``(1, 4, 2, 1)``.
        activations: one name per layer (``len(sizes) - 1``), from ``jaxbp.ACTIVATIONS``.
        bias: ``True``/``False`` for every layer, or one bool per layer.
        init_scheme: ``"glorot"``, ``"he"`` or ``"lecun"`` for every layer, one name per layer, or
            ``None`` for He on ReLU layers and Glorot elsewhere.

    Raises:
        ValueError: on non-positive sizes, a count mismatch, or an unknown name.

    Example:
        >>> import jax, jaxbp
        >>> spec = jaxbp.MLP(sizes=(1, 4, 2, 1), activations=("relu", "sigmoid", "linear"))
        >>> params = spec.init(jax.random.key(0))
        >>> [layer["w"].shape for layer in params]
        [(1, 4), (4, 2), (2, 1)]
        >>> spec.apply(params, jax.numpy.ones((3, 1))).shape
        (3, 1)
    """

    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    bias: bool | tuple[bool, ...] = True
    init_scheme: str | tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        where = "MLP"
        sizes = tuple(self.sizes)
        if len(sizes) < 2:
            raise ValueError(
                f"{where}: sizes needs at least an input and an output size, got {sizes}."
            )
        for size in sizes:
            if isinstance(size, bool | np.bool_) or not isinstance(size, int | np.integer):
                raise ValueError(f"{where}: sizes must be positive ints, got {sizes}.")
            if size < 1:
                raise ValueError(f"{where}: sizes must be positive ints, got {sizes}.")
        sizes = tuple(int(size) for size in sizes)  # NumPy integers become ints: one hash, one repr
        activations = (
            (self.activations,) * (len(sizes) - 1)
            if isinstance(self.activations, str)
            else tuple(self.activations)
        )
        if len(activations) != len(sizes) - 1:
            raise ValueError(
                f"{where}: sizes {sizes} define {len(sizes) - 1} layers but {len(activations)} "
                f"activations were given; pass one activation per layer."
            )
        for name in activations:
            _checks.check_name(where, "activation", name, ACTIVATIONS)
        bias = self.bias if isinstance(self.bias, bool) else tuple(self.bias)
        if isinstance(bias, tuple) and (
            len(bias) != len(sizes) - 1 or not all(isinstance(b, bool) for b in bias)
        ):
            raise ValueError(
                f"{where}: bias must be a bool or one bool per layer ({len(sizes) - 1}), got {bias}."
            )
        scheme = self.init_scheme
        if scheme is not None:
            scheme = (scheme,) * (len(sizes) - 1) if isinstance(scheme, str) else tuple(scheme)
            if len(scheme) != len(sizes) - 1:
                raise ValueError(
                    f"{where}: init_scheme needs one name per layer ({len(sizes) - 1}), got {scheme}."
                )
            for name in scheme:
                _checks.check_name(where, "init_scheme", name, INITIALIZERS)
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "activations", activations)
        object.__setattr__(self, "bias", bias)
        object.__setattr__(self, "init_scheme", scheme)

    @property
    def num_layers(self) -> int:
        """Number of weight layers, ``len(sizes) - 1``."""
        return len(self.sizes) - 1

    @property
    def layer_shapes(self) -> tuple[tuple[int, int], ...]:
        """``(fan_in, fan_out)`` of every layer's weight matrix."""
        return tuple(zip(self.sizes[:-1], self.sizes[1:], strict=True))

    @property
    def layer_bias(self) -> tuple[bool, ...]:
        """Whether each layer has a bias."""
        return self.bias if isinstance(self.bias, tuple) else (self.bias,) * self.num_layers

    @property
    def output_activation(self) -> str:
        """The last layer's activation: what the predictions are (``"softmax"``: probabilities)."""
        return self.activations[-1]

    @property
    def layer_init(self) -> tuple[str, ...]:
        """The initialiser name used for each layer."""
        if isinstance(self.init_scheme, tuple):
            return self.init_scheme
        return tuple(DEFAULT_INITIALIZER[name] for name in self.activations)

    def init(self, key: Array, dtype: Any = jnp.float32) -> Params:
        """Random initial parameters.

        Args:
            key: a ``jax.random.key``; split once per layer.
            dtype: floating dtype of every leaf.

        Returns:
            A list with one ``{"w": (fan_in, fan_out), "b": (fan_out,)}`` dict per layer; biases
            are zero, weights follow ``layer_init``.
        """
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"MLP.init: dtype must be floating, got {dtype}.")
        _checks.check_init_key("MLP.init", key)
        shapes = [(i * o + (o if bias else 0),) for (i, o), bias in zip(self.layer_shapes, self.layer_bias, strict=True)]  # fmt: skip
        _checks.check_param_memory("MLP.init", shapes, dtype)
        keys = jax.random.split(key, self.num_layers)
        params: Params = []
        for layer_key, shape, has_bias, scheme in zip(
            keys, self.layer_shapes, self.layer_bias, self.layer_init, strict=True
        ):
            layer = {"w": INITIALIZERS[scheme](layer_key, shape, dtype)}
            if has_bias:
                layer["b"] = jnp.zeros(shape[1], dtype)
            params.append(layer)
        return params

    def params_from(
        self,
        ws: Sequence[ArrayLike],
        bs: Sequence[ArrayLike | None] | None = None,
        dtype: Any = None,
    ) -> Params:
        """Parameters from explicit values, as a worked example writes them.

        Args:
            ws: one weight matrix per layer, shape ``(fan_in, fan_out)``.
            bs: one bias vector per layer (``None`` for a layer without bias), or ``None`` when
                no layer has one.
            dtype: dtype of every leaf; ``None`` for JAX's default float.

        Raises:
            ValueError: when a count or shape does not fit the spec.
        """
        where = "MLP.params_from"
        if len(ws) != self.num_layers:
            raise ValueError(
                f"{where}: got {len(ws)} weight matrices for {self.num_layers} layers."
            )
        bs = [None] * self.num_layers if bs is None else list(bs)
        if len(bs) != self.num_layers:
            raise ValueError(f"{where}: got {len(bs)} bias entries for {self.num_layers} layers.")
        dtype = dtype or jnp.result_type(float)
        params: Params = []
        for i, (w, b, has_bias) in enumerate(zip(ws, bs, self.layer_bias, strict=True)):
            if (b is not None) != has_bias:
                raise ValueError(
                    f"{where}: layer {i} has bias={has_bias} but bs[{i}] is "
                    f"{'None' if b is None else 'given'}."
                )
            layer = {"w": jnp.asarray(w, dtype)}
            if has_bias:
                layer["b"] = jnp.asarray(b, dtype)
            params.append(layer)
        _checks.check_params(where, self, params)
        return params

    def apply(self, params: Params, x: ArrayLike) -> Array:
        """The forward pass ``a_L``.

        Args:
            params: as returned by ``init`` or ``params_from``.
            x: float array of shape ``(sizes[0],)`` or ``(batch, sizes[0])``.

        Returns:
            Array of shape ``(sizes[-1],)`` or ``(batch, sizes[-1])``.

        Raises:
            ValueError, TypeError: when params or x do not fit the spec.
        """
        _checks.check_params("MLP.apply", self, params)
        x = _checks.check_input("MLP.apply", self, x)
        return forward(self, params, jnp.asarray(x))

    def __call__(self, params: Params, x: ArrayLike) -> Array:
        """``spec(params, x) == spec.apply(params, x)``: an MLP is a model like any other."""
        return self.apply(params, x)


def forward(spec: MLP, params: Params, x: Array) -> Array:
    """The forward pass without validation (for use inside already-checked, traced code)."""
    return forward_layers(spec, params, x)[-1][3]


def forward_layers(
    spec: MLP,
    params: Params,
    x: Array,
    dz: Sequence[Array] | None = None,
    da: Sequence[Array] | None = None,
) -> list[tuple[Array, Array, Array, Array]]:
    """The forward pass, recorded: ``(a_{l-1}, a_{l-1} @ W_l, z_l, a_l)`` for every layer.

    ``dz[l - 1]`` and ``da[l - 1]``, when given, are added to ``z_l`` and ``a_l``: zero
    perturbations whose gradients are ``dL/dz_l`` and ``dL/da_l`` (see :mod:`jaxbp.worked.autodiff`).
    No validation: for already-checked, traced code.
    """
    layers, a = [], x
    for index, (layer, activation) in enumerate(zip(params, spec.activations, strict=True)):
        product = a @ layer["w"]
        z = product + layer["b"] if "b" in layer else product
        if dz is not None:
            z = z + dz[index]
        out = ACTIVATIONS[activation](z)
        if da is not None:
            out = out + da[index]
        layers.append((a, product, z, out))
        a = out
    return layers
