"""Checks of what a :class:`jaxbp.Sequential` is called with: params, running state, inputs
(float arrays, or integer tokens for an Embedding) and random keys, before anything runs.

Params and state are checked against the trees of shapes the spec works out
(:attr:`jaxbp.Sequential.param_shapes`, :attr:`~jaxbp.Sequential.state_shapes`), so this module
needs no layer specs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.layers import modern
from jaxbp.model import checks as _checks

if TYPE_CHECKING:
    from jaxbp.layers.sequential import Sequential


def check_input_shape(where: str, input_shape: Any) -> tuple[int, ...]:
    """``input_shape`` as a tuple of positive ints (an int ``n`` stands for ``(n,)``)."""
    shape = (input_shape,) if isinstance(input_shape, int) else input_shape
    if not isinstance(shape, tuple | list) or not all(
        isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= modern.MAX_SIZE for n in shape
    ):
        raise ValueError(
            f"{where}: input_shape must be a tuple of positive ints (one example, no batch "
            f"axis, each at most {modern.MAX_SIZE:,}), e.g. (40, 1), got "
            f"{modern.short_repr(input_shape)}."
        )
    return tuple(shape)


def check_embedding_first(where: str, layers: Any) -> None:
    """An Embedding takes integer tokens, so only the first layer can be one."""
    for index, layer in enumerate(layers[1:], start=1):
        if isinstance(layer, modern.Embedding):
            raise ValueError(
                f"{where}: layers[{index}] is an Embedding, which takes integer tokens; only the "
                f"first layer can be one."
            )


def check_params(where: str, spec: Sequential, params: Any) -> None:
    """Check ``params`` has one dict per layer with the keys and shapes the spec expects."""
    _check_tree(where, spec.layers, spec.param_shapes, params, "params")


def check_state(where: str, spec: Sequential, state: Any) -> None:
    """Check ``state`` has one dict per layer with the keys and shapes of ``spec.init_state()``."""
    _check_tree(where, spec.layers, spec.state_shapes, state, "state")


def _check_tree(where: str, layers: Any, expected_tree: Any, tree: Any, name: str) -> None:
    """``tree`` against the expected shapes, one dict per layer; a residual block's entry is
    ``{"layers": [...]}``, checked against its own layers."""
    build = "spec.init(key)" if name.startswith("params") else "spec.init_state()"
    if not isinstance(tree, list | tuple):
        raise TypeError(
            f"{where}: {name} must be a list with one dict per layer, got {type(tree).__name__}; "
            f"build it with {build}."
        )
    if len(tree) != len(layers):
        raise ValueError(
            f"{where}: {name} has {len(tree)} entries but the network has {len(layers)} layers; "
            f"build it with {build}."
        )
    for index, (layer, expected, entry) in enumerate(zip(layers, expected_tree, tree, strict=True)):
        label, kind = f"{name}[{index}]", type(layer).__name__
        if not isinstance(entry, Mapping):
            raise TypeError(f"{where}: {label} must be a dict, got {type(entry).__name__}.")
        if isinstance(expected.get("layers"), list):  # a residual block
            if set(entry) != {"layers"}:
                raise ValueError(
                    f"{where}: {label} must be {{'layers': [...]}} for {kind}, got keys {sorted(entry)}."
                )
            inner = f'{label}["layers"]'
            _check_tree(where, layer.layers, expected["layers"], entry["layers"], inner)
            continue
        if set(entry) != set(expected):
            raise ValueError(
                f"{where}: {label} has keys {sorted(entry)} but layer {index} ({kind}) expects "
                f"{sorted(expected)}."
            )
        for key, expected_shape in expected.items():
            got = tuple(np.shape(entry[key]))
            if got != expected_shape:
                raise ValueError(
                    f'{where}: {label}["{key}"] has shape {got} but layer {index} ({kind}) '
                    f"expects {expected_shape}."
                )
            _checks.as_float_array(where, f'{label}["{key}"]', entry[key])


def check_input(where: str, spec: Sequential, x: Any) -> Any:
    """``x`` as an array of the network's example shape, with or without a batch axis: floats,
    or integer tokens in ``[0, vocab_size)`` when the first layer is an Embedding (their range
    is checked when they are concrete, not while traced)."""
    first = spec.layers[0]
    if isinstance(first, modern.Embedding):
        x = x if isinstance(x, jax.Array | np.ndarray) else np.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.integer):
            raise TypeError(
                f"{where}: x has dtype {x.dtype} but the Embedding takes integer tokens; pass "
                f"token ids, e.g. x.astype(jnp.int32)."
            )
        if not isinstance(x, jax.core.Tracer) and np.size(x):
            low, high = int(np.min(x)), int(np.max(x))
            if low < 0 or high >= first.vocab_size:
                bad = low if low < 0 else high
                raise ValueError(
                    f"{where}: x holds token {bad} but the Embedding has vocab_size="
                    f"{first.vocab_size}; tokens must lie in [0, {first.vocab_size})."
                )
    else:
        x = _checks.as_float_array(where, "x", x)
    shape, single = tuple(x.shape), x.ndim == len(spec.input_shape)
    example_shape = shape if single else shape[1:]
    if example_shape != spec.input_shape or (not single and shape[0] == 0):
        raise ValueError(
            f"{where}: x has shape {shape} but the network takes examples of shape "
            f"{spec.input_shape}; pass x of shape (batch, {', '.join(map(str, spec.input_shape))})."
        )
    return x


def check_key(where: str, key: Any) -> None:
    """``key`` is ``None``, a ``jax.random.key`` (shape ``()``) or a legacy uint32 ``(2,)`` key."""
    if key is None:
        return
    if isinstance(key, jax.Array | np.ndarray):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ():
            return
        if key.dtype == np.uint32 and key.shape == (2,):
            return
    raise TypeError(
        f"{where}: key must be a jax.random.key(seed) (or None for no dropout), got "
        f"{type(key).__name__} {getattr(key, 'shape', '')}."
    )
