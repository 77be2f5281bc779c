"""The chain rule by hand for :class:`jaxbp.Sequential` networks, in NumPy float64.

The oracle the layers' ``jax.grad`` is tested against; no JAX function is used. Every layer has a
forward step that keeps what its backward step needs, and a backward step that takes
``dL/d(output)`` and returns ``dL/d(input)`` and the layer's parameter gradients. Convolution and
pooling are written as im2col: every window of the (padded) input becomes one row of ``patches``
(:func:`im2col`), so a convolution is one matrix product, and the gradient of a window's input is
scattered back into the input with :func:`col2im`::

    out      = patches @ K + b        # (rows, kvol * C_in) @ (kvol * C_in, C_out)
    dK       = patches^T @ delta      # (kvol * C_in, rows) @ (rows, C_out)
    dpatches = delta @ K^T            # (rows, C_out) @ (C_out, kvol * C_in)
    dx       = col2im(dpatches)       # each entry added back where im2col read it

with ``rows = batch * output positions`` and ``kvol`` the kernel's volume. Max pooling routes each
window's gradient to the window's argmax, average pooling spreads it evenly, and a residual block
adds the gradient of its identity path to that of its block path. Embeddings, normalisation,
self-attention and dropout are written out in :mod:`jaxbp.manual.modern`; what is random or
running state there (dropout masks, BatchNorm's running statistics) comes in as an argument.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from jaxbp.manual import elementwise as manual
from jaxbp.manual import modern
from jaxbp.manual.im2col import col2im, conv_pads, im2col

Matrix = np.ndarray

# Layers are told apart by their class name, so this oracle imports nothing of the library it checks.
_CONV = ("Conv1D", "Conv2D")
_POOL = ("MaxPool1D", "MaxPool2D", "AvgPool1D", "AvgPool2D")


def _kind(layer: Any) -> str:
    """``"conv"``, ``"pool"`` or the layer's class name."""
    name = type(layer).__name__
    return "conv" if name in _CONV else "pool" if name in _POOL else name


# --- activations on any rank ------------------------------------------------------------------
def _activation_backward(name: str, z: Matrix, upstream: Matrix) -> Matrix:
    """``dL/dz`` from ``dL/da`` for ``a = f(z)``, f over the last axis (softmax) or element-wise."""
    if name == "softmax":
        flat_z = z.reshape(-1, z.shape[-1])
        jacobian = manual.softmax_jacobian(flat_z)  # (rows, n, n)
        delta = np.einsum("rij,ri->rj", jacobian, upstream.reshape(flat_z.shape))  # J^T dL/da
        return delta.reshape(z.shape)
    return upstream * manual.DERIVATIVES[name](z)  # dL/da * f'(z)


# --- each layer: forward (output, cache) and backward (dL/dx, grads) --------------------------
def layer_forward(
    layer: Any,
    params: dict[str, Any],
    x: Matrix,
    *,
    mask: Any = None,
    state: Any = None,
    training: bool = True,
) -> tuple[Matrix, Any]:
    """One layer's output on ``x`` (batch, *input_shape) and what its backward step needs.

    ``mask``: the entries a Dropout keeps (``None``: no dropout), a list for a residual block;
    ``state``: BatchNorm's running statistics, needed with ``training=False``.
    """
    if mask is not None and _kind(layer) not in ("Dropout", "Residual"):
        raise ValueError(
            f"manual_layers: a mask for a {type(layer).__name__}, which drops nothing: masks go "
            f"at the Dropout layers (None elsewhere); take them from spec.dropout_masks(key, batch)."
        )
    if _kind(layer) in modern.KINDS:
        return modern.layer_forward(layer, params, x, mask, state, training)
    if _kind(layer) == "Dense":
        z = x @ params["w"]  # (batch, fan_in) @ (fan_in, features)
        z = z + params["b"] if "b" in params else z  # + (features,)
        return manual.ACTIVATIONS[layer.activation](z), (x, z)
    if _kind(layer) == "conv":
        pads = conv_pads(layer, x.shape[1:-1])
        x_pad = np.pad(x, ((0, 0), *pads, (0, 0)))
        windows = im2col(x_pad, layer.kernel_size, layer.stride)  # (batch, *out, kvol, C_in)
        patches = windows.reshape(-1, windows.shape[-2] * windows.shape[-1])  # (rows, kvol*C_in)
        kernel = params["w"].reshape(patches.shape[1], -1)  # K: (kvol * C_in, C_out)
        z = (patches @ kernel).reshape(*windows.shape[:-2], -1)  # (batch, *out, C_out)
        z = z + params["b"] if "b" in params else z
        return manual.ACTIVATIONS[layer.activation](z), (
            patches,
            windows.shape,
            x_pad.shape,
            pads,
            z,
        )
    if _kind(layer) == "pool":
        windows = im2col(x, layer.window, layer.stride)  # (batch, *out, wvol, C)
        if layer.kind == "max":
            argmax = windows.argmax(axis=-2)[..., None, :]  # (batch, *out, 1, C)
            return np.take_along_axis(windows, argmax, axis=-2)[..., 0, :], (
                windows.shape,
                argmax,
                x.shape,
            )
        return windows.mean(axis=-2), (windows.shape, None, x.shape)
    if _kind(layer) in ("Flatten", "Reshape"):
        shape = (-1,) if _kind(layer) == "Flatten" else layer.shape
        return x.reshape(x.shape[0], *shape), x.shape
    if _kind(layer) == "Activation":
        return manual.ACTIVATIONS[layer.name](x), x
    if _kind(layer) == "Residual":
        inner = None if state is None else state["layers"]
        block, caches = forward_layers(
            layer.layers, params["layers"], x, masks=mask, state=inner, training=training
        )
        return x + block[-1], caches  # out = x + block(x)
    raise TypeError(f"manual_layers: {type(layer).__name__} is not a jaxbp layer.")


def layer_backward(
    layer: Any, params: dict[str, Any], cache: Any, upstream: Matrix
) -> tuple[Matrix, dict[str, Any]]:
    """``(dL/dx, grads)`` of one layer from ``upstream = dL/d(output)``."""
    if _kind(layer) in modern.KINDS:
        return modern.layer_backward(layer, params, cache, upstream)  # type: ignore[return-value]
    if _kind(layer) == "Dense":
        x, z = cache
        delta = _activation_backward(layer.activation, z, upstream)  # dL/dz, (batch, features)
        grads = {"w": x.T @ delta}  # (fan_in, batch) @ (batch, features)
        if "b" in params:
            grads["b"] = delta.sum(axis=0)  # (features,)
        return delta @ params["w"].T, grads  # (batch, features) @ (features, fan_in)
    if _kind(layer) == "conv":
        patches, windows_shape, x_pad_shape, pads, z = cache
        delta = _activation_backward(layer.activation, z, upstream)  # (batch, *out, C_out)
        delta = delta.reshape(-1, delta.shape[-1])  # (rows, C_out)
        kernel = params["w"].reshape(patches.shape[1], -1)  # K: (kvol * C_in, C_out)
        grads = {"w": (patches.T @ delta).reshape(params["w"].shape)}  # dK = patches^T @ delta
        if "b" in params:
            grads["b"] = delta.sum(axis=0)  # (C_out,)
        dpatches = (delta @ kernel.T).reshape(windows_shape)  # delta @ K^T: (rows, kvol * C_in)
        dx_pad = col2im(dpatches, x_pad_shape, layer.kernel_size, layer.stride)
        crop = [
            slice(low, n - high) for (low, high), n in zip(pads, x_pad_shape[1:-1], strict=True)
        ]
        return dx_pad[
            tuple([slice(None), *crop, slice(None)])
        ], grads  # drop the padding's gradient
    if _kind(layer) == "pool":
        windows_shape, argmax, x_shape = cache
        if layer.kind == "max":  # only each window's maximum received the output: route there
            dwindows = np.zeros(windows_shape)
            np.put_along_axis(dwindows, argmax, upstream[..., None, :], axis=-2)
        else:  # every entry of a window weighs 1 / wvol in its mean
            wvol = math.prod(layer.window)
            dwindows = np.broadcast_to(upstream[..., None, :] / wvol, windows_shape)
        return col2im(dwindows, x_shape, layer.window, layer.stride), {}
    if _kind(layer) in ("Flatten", "Reshape"):
        return upstream.reshape(cache), {}
    if _kind(layer) == "Activation":
        return _activation_backward(layer.name, cache, upstream), {}
    if _kind(layer) == "Residual":
        dblock, inner = backward_layers(layer.layers, params["layers"], cache, upstream)
        return upstream + dblock, {"layers": inner}  # identity path + block path
    raise TypeError(f"manual_layers: {type(layer).__name__} is not a jaxbp layer.")


def forward_layers(
    layers: Any,
    params: Any,
    x: Matrix,
    *,
    masks: Any = None,
    state: Any = None,
    training: bool = True,
) -> tuple[list[Matrix], list[Any]]:
    """Every layer's output (``outputs[-1]`` is the network's) and every layer's cache.

    ``masks`` and ``state`` (or ``None``) hold one entry per layer, as
    ``Sequential.dropout_masks`` and ``Sequential.init_state`` give them.
    """
    masks = _per_layer("masks", masks, len(layers))
    states = _per_layer("state", state, len(layers))
    outputs, caches = [], []
    for layer, layer_params, mask, layer_state in zip(layers, params, masks, states, strict=True):
        x, cache = layer_forward(
            layer, layer_params, x, mask=mask, state=layer_state, training=training
        )
        outputs.append(x)
        caches.append(cache)
    return outputs, caches


def _per_layer(name: str, entries: Any, count: int) -> list[Any]:
    if entries is None:
        return [None] * count
    if not isinstance(entries, list | tuple) or len(entries) != count:
        raise ValueError(
            f"manual_layers: {name} must be a list with one entry per layer ({count}), got "
            f"{type(entries).__name__}{'' if not isinstance(entries, list | tuple) else f' of {len(entries)}'}."
        )
    return list(entries)


def updated_state(layers: Any, state: Any, caches: list[Any]) -> Any:
    """The running state after a forward pass in training (BatchNorm's statistics moved towards
    the batch's); ``None`` when ``state`` is ``None``."""
    if state is None:
        return None
    new = []
    for layer, layer_state, cache in zip(layers, state, caches, strict=True):
        if _kind(layer) == "Residual":
            new.append({"layers": updated_state(layer.layers, layer_state["layers"], cache)})
        else:
            new.append(modern.updated_state(layer, layer_state, cache))
    return new


def backward_layers(
    layers: Any, params: Any, caches: list[Any], upstream: Matrix
) -> tuple[Matrix | None, list[dict[str, Any]]]:
    """``(dL/dx, grads)`` through the layers in reverse, from ``upstream = dL/d(output)``."""
    grads: list[dict[str, Any]] = [{} for _ in layers]
    for index in reversed(range(len(layers))):
        # dx is None only for an Embedding's tokens, and an Embedding is the first layer
        dx, grads[index] = layer_backward(layers[index], params[index], caches[index], upstream)
        upstream = dx  # type: ignore[assignment]
    return upstream, grads


# --- the network ----------------------------------------------------------------------------
@dataclasses.dataclass
class Backward:
    """A recorded forward and backward pass through a network.

    Attributes:
        loss: the batch-mean loss.
        outputs: each layer's output; ``outputs[-1]`` is the prediction.
        dloss_dinput: ``dL/dx``, the shape of x (``None`` for the tokens of an Embedding).
        grads: the layout of params.
        state: the running state after the pass (``None`` when none was given).
    """

    loss: float
    outputs: list[Matrix]
    dloss_dinput: Matrix | None
    grads: list[dict[str, Any]]
    state: Any = None


def _check_shapes(name: str, tree: Any, expected: Any, path: str = "") -> None:
    """``tree`` has exactly the keys and shapes of ``expected`` (``spec.param_shapes`` or
    ``spec.state_shapes``: one dict per layer, ``{"layers": [...]}`` for a residual block)."""
    label = f"{name}{path}"
    if isinstance(expected, list):
        if not isinstance(tree, list | tuple) or len(tree) != len(expected):
            got = f"{len(tree)} entries" if isinstance(tree, list | tuple) else type(tree).__name__
            raise ValueError(
                f"manual_layers.backward: {label} must be a list of {len(expected)} entries, one "
                f"per layer, got {got}."
            )
        for index, (entry, shapes) in enumerate(zip(tree, expected, strict=True)):
            _check_shapes(name, entry, shapes, f"{path}[{index}]")
        return
    if not isinstance(tree, dict) or set(tree) != set(expected):
        keys = sorted(tree) if isinstance(tree, dict) else type(tree).__name__
        raise ValueError(
            f"manual_layers.backward: {label} must have keys {sorted(expected)}, got {keys}."
        )
    for key, shape in expected.items():
        if key == "layers" and isinstance(shape, list):
            _check_shapes(name, tree[key], shape, f'{path}["layers"]')
        elif np.shape(tree[key]) != tuple(shape):
            raise ValueError(
                f'manual_layers.backward: {label}["{key}"] has shape {np.shape(tree[key])} but '
                f"the network expects {tuple(shape)}."
            )


def _float64(params: Any) -> Any:
    if isinstance(params, dict):
        return {key: _float64(value) for key, value in params.items()}
    if isinstance(params, list | tuple):
        return [_float64(value) for value in params]
    return np.asarray(params, np.float64)


def targets(loss: str, y: Any, outputs: int) -> Matrix:
    """``y`` as float64 targets; integer class labels ``(batch,)`` become one-hot rows."""
    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.integer) and y.ndim == 1:
        return np.eye(outputs)[y]  # (batch, outputs)
    return np.asarray(y, np.float64)


def backward(
    spec: Any,
    loss: str,
    params: Any,
    x: Any,
    y: Any,
    *,
    state: Any = None,
    masks: Any = None,
    training: bool = True,
) -> Backward:
    """The forward pass, the loss and the backward pass through every layer, float64.

    Args:
        spec: a :class:`jaxbp.Sequential`.
        loss: a name in ``jaxbp.manual.PER_EXAMPLE_LOSSES``.
        params: in the layout of ``spec.init``.
        x: ``(batch, *spec.input_shape)``; integer tokens when the first layer is an Embedding.
        y: ``(batch, *spec.output_shape)``, or integer labels ``(batch,)`` (one-hot targets).
        state: running state in the layout of ``spec.init_state()``: needed for BatchNorm with
            ``training=False``; in training the batch statistics are used and ``state`` only
            gives the running state the record returns.
        masks: the entries each Dropout keeps, as ``spec.dropout_masks(key, batch)`` gives
            them; ``None``: no dropout (evaluation).
        training: batch statistics and dropout, or evaluation.
    """
    if loss not in manual.PER_EXAMPLE_LOSSES:
        raise ValueError(
            f"manual_layers.backward: unknown loss {loss!r}; valid names are "
            f"{', '.join(sorted(manual.PER_EXAMPLE_LOSSES))}."
        )
    if not isinstance(training, bool):
        raise TypeError(f"manual_layers.backward: training must be True or False, got {training!r:.40}.")  # fmt: skip
    params = _float64(params)
    x = np.asarray(x) if _kind(spec.layers[0]) == "Embedding" else np.asarray(x, np.float64)
    if x.shape[1:] != tuple(spec.input_shape):
        raise ValueError(
            f"manual_layers.backward: x has shape {x.shape} but the network takes a batch of "
            f"examples of shape {tuple(spec.input_shape)}: pass x of shape (batch, "
            f"{', '.join(map(str, spec.input_shape))})."
        )
    # numpy would broadcast a (1,) scale or a one-row table without a word: shapes first
    _check_shapes("params", params, spec.param_shapes)
    if state is not None:
        _check_shapes("state", state, spec.state_shapes)
    outputs, caches = forward_layers(
        spec.layers, params, x, masks=masks, state=state, training=training
    )
    prediction = outputs[-1]
    if prediction.ndim != 2:
        raise ValueError(
            f"manual_layers.backward: the network's predictions have shape {prediction.shape}; "
            f"the losses take (batch, outputs), so end the network with Flatten() or Dense."
        )
    labels, classes = np.asarray(y), prediction.shape[-1]
    is_labels = np.issubdtype(labels.dtype, np.integer) and labels.ndim == 1 and labels.size > 0
    if is_labels and (labels.min() < 0 or labels.max() >= classes):  # np.eye would wrap -1
        bad = labels.min() if labels.min() < 0 else labels.max()
        raise ValueError(
            f"manual_layers.backward: y holds the label {bad} but the network has {classes} "
            f"outputs; labels must lie in [0, {classes})."
        )
    target = targets(loss, y, prediction.shape[-1])
    if target.shape != prediction.shape:
        raise ValueError(
            f"manual_layers.backward: y has shape {np.shape(y)} but the predictions have shape "
            f"{prediction.shape}; pass targets of that shape or integer labels ({len(x)},)."
        )
    upstream = manual.loss_derivative(loss, prediction, target)  # dL/d(prediction), 1/batch in
    dx, grads = backward_layers(spec.layers, params, caches, upstream)
    new_state = updated_state(spec.layers, state, caches)
    return Backward(manual.loss_value(loss, prediction, target), outputs, dx, grads, new_state)


def backprop(
    spec: Any,
    loss: str,
    params: Any,
    x: Any,
    y: Any,
    *,
    state: Any = None,
    masks: Any = None,
    training: bool = True,
) -> tuple[float, list[dict[str, Any]]]:
    """``(loss, grads)`` of a :class:`jaxbp.Sequential` by the explicit chain rule, float64;
    ``state``, ``masks`` and ``training`` as for :func:`backward`."""
    record = backward(spec, loss, params, x, y, state=state, masks=masks, training=training)
    return record.loss, record.grads
