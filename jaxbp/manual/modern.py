"""The chain rule by hand for the layers of modern networks, in NumPy float64: embeddings, layer
and batch normalisation, multi-head self-attention and dropout.

Each layer has a forward step that returns its output and what its backward step needs, and a
backward step that takes ``upstream = dL/d(output)`` and returns ``dL/d(input)`` and the layer's
parameter gradients. The two normalisations share one backward pass: with
``xhat = (x - mean) / sqrt(var + eps)`` over ``m`` entries, ``out = scale * xhat + bias``::

    dxhat  = upstream * scale
    dx     = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / sqrt(var + eps)
    dscale = sum(upstream * xhat),   dbias = sum(upstream)

(the mean and the variance depend on every entry they are taken over, hence the two correction
terms). Attention goes back through ``out = o W_o``, ``o = p v``, ``p = softmax(s)`` and
``s = q k^T / sqrt(d)``; the softmax's Jacobian gives ``ds = p * (dp - sum_j dp_j p_j)`` per row.
Layers are told apart by their class name, so nothing of the library under test is imported
(and nothing else of :mod:`jaxbp.manual`: this module is a leaf of the import graph).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

Matrix = np.ndarray

KINDS = ("Embedding", "PositionalEmbedding", "LayerNorm", "SelfAttention", "Dropout", "BatchNorm")


# --- normalisation ------------------------------------------------------------------------------
def _normalize(x: Matrix, mean: Matrix, var: Matrix, epsilon: float) -> tuple[Matrix, Matrix]:
    """``xhat = (x - mean) * inv`` with ``inv = 1 / sqrt(var + epsilon)``."""
    inv = 1.0 / np.sqrt(var + epsilon)  # 1 / sqrt(var + eps)
    return (x - mean) * inv, inv


def _normalize_backward(
    upstream: Matrix, scale: Matrix, xhat: Matrix, inv: Matrix, axes: tuple[int, ...] | None
) -> tuple[Matrix, dict[str, Matrix]]:
    """``(dx, {"scale", "bias"})`` of ``scale * xhat + bias``; ``axes`` the axes the statistics
    were taken over (``None``: fixed statistics, as BatchNorm in evaluation)."""
    leading = tuple(range(upstream.ndim - 1))
    grads = {
        "scale": (upstream * xhat).sum(axis=leading),  # dscale = sum upstream * xhat
        "bias": upstream.sum(axis=leading),  # dbias = sum upstream
    }
    dxhat = upstream * scale  # dL/dxhat
    if axes is None:
        return dxhat * inv, grads  # dx = dxhat / sqrt(var + eps)
    mean_dxhat = dxhat.mean(axis=axes, keepdims=True)  # through the mean
    mean_dxhat_xhat = (dxhat * xhat).mean(axis=axes, keepdims=True)  # through the variance
    return inv * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat), grads


# --- self-attention -----------------------------------------------------------------------------
def _split(z: Matrix, heads: int) -> Matrix:
    """``(batch, length, features) -> (batch, heads, length, features / heads)``."""
    batch, length, features = z.shape
    return z.reshape(batch, length, heads, features // heads).transpose(0, 2, 1, 3)


def _merge(z: Matrix) -> Matrix:
    """``(batch, heads, length, d) -> (batch, length, heads * d)``, the heads side by side."""
    batch, heads, length, depth = z.shape
    return z.transpose(0, 2, 1, 3).reshape(batch, length, heads * depth)


def _attention_forward(layer: Any, params: dict[str, Matrix], x: Matrix) -> tuple[Matrix, Any]:
    bias = {name: params.get(f"b_{name}", 0.0) for name in "qkvo"}
    q = _split(x @ params["w_q"] + bias["q"], layer.heads)  # q = x W_q + b_q, (B, H, T, d)
    k = _split(x @ params["w_k"] + bias["k"], layer.heads)  # k = x W_k + b_k
    v = _split(x @ params["w_v"] + bias["v"], layer.heads)  # v = x W_v + b_v
    depth = q.shape[-1]
    s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(depth)  # s = q k^T / sqrt(d), (B, H, T, T)
    if layer.causal:  # query t sees keys <= t: the others get weight exp(-inf) = 0
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    exp_s = np.exp(s - s.max(axis=-1, keepdims=True))  # shifted, so exp never overflows
    p = exp_s / exp_s.sum(axis=-1, keepdims=True)  # p = softmax(s) over the keys
    o = _merge(p @ v)  # o = p v, heads side by side: (B, T, F)
    out = o @ params["w_o"] + bias["o"]  # out = o W_o + b_o
    return out, (x, q, k, v, p, o)


def _attention_backward(
    layer: Any, params: dict[str, Matrix], cache: Any, upstream: Matrix
) -> tuple[Matrix, dict[str, Matrix]]:
    x, q, k, v, p, o = cache
    depth = q.shape[-1]
    grads = {"w_o": np.einsum("btf,btg->fg", o, upstream)}  # dW_o = o^T dout over (B, T)
    do = _split(upstream @ params["w_o"].T, layer.heads)  # do = dout W_o^T, per head
    dp = do @ v.transpose(0, 1, 3, 2)  # dp = do v^T, (B, H, T, T)
    dv = p.transpose(0, 1, 3, 2) @ do  # dv = p^T do, (B, H, T, d)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))  # softmax: J^T dp, row by row
    dq = ds @ k / math.sqrt(depth)  # ds/dq: s = q k^T / sqrt(d)
    dk = ds.transpose(0, 1, 3, 2) @ q / math.sqrt(depth)  # ds/dk
    dx = np.zeros_like(x)
    for name, dz in (("q", _merge(dq)), ("k", _merge(dk)), ("v", _merge(dv))):
        grads[f"w_{name}"] = np.einsum("btf,btg->fg", x, dz)  # dW = x^T dz over (B, T)
        dx += dz @ params[f"w_{name}"].T  # x feeds q, k and v: the three paths add up
    if "b_o" in params:
        grads["b_o"] = upstream.sum(axis=(0, 1))  # db_o = sum of dout
        for name, dz in (("q", dq), ("k", dk), ("v", dv)):
            grads[f"b_{name}"] = _merge(dz).sum(axis=(0, 1))  # db = sum of dz
    return dx, grads


# --- each layer: forward (output, cache) and backward (dL/dx, grads) ----------------------------
def layer_forward(
    layer: Any, params: dict[str, Any], x: Matrix, mask: Any, state: Any, training: bool
) -> tuple[Matrix, Any]:
    """One layer's output on ``x`` and what its backward step needs; ``mask`` (Dropout, the
    entries kept) and ``state`` (BatchNorm, running statistics) as the layer needs them."""
    kind = type(layer).__name__
    if kind == "Embedding":
        tokens = _tokens(layer, x)
        return params["table"][tokens], (
            tokens,
            params["table"].shape,
        )  # out[n, t] = table[x[n, t]]
    if kind == "PositionalEmbedding":
        return x + params["positions"][: x.shape[1]], x.shape  # out[n, t] = x[n, t] + P[t]
    if kind == "LayerNorm":
        mean = x.mean(axis=-1, keepdims=True)  # over the features of each position
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)  # biased variance
        xhat, inv = _normalize(x, mean, var, layer.epsilon)
        return params["scale"] * xhat + params["bias"], (xhat, inv)
    if kind == "SelfAttention":
        return _attention_forward(layer, params, x)
    if kind == "Dropout":
        if mask is None or not training:  # evaluation: the identity
            return x, None
        keep = _mask(layer, mask, x.shape) / (1.0 - layer.rate)  # mask / (1 - rate)
        return x * keep, keep
    if kind == "BatchNorm":
        axes = tuple(range(x.ndim - 1))  # every axis but the channels
        if training:
            mean, var = x.mean(axis=axes), ((x - x.mean(axis=axes)) ** 2).mean(axis=axes)
        elif state is None:
            raise ValueError(
                "manual_layers: BatchNorm in evaluation (training=False) needs state, the "
                "running statistics; pass state=spec.init_state() or a trained state."
            )
        else:
            mean, var = np.asarray(state["mean"], np.float64), np.asarray(state["var"], np.float64)
        xhat, inv = _normalize(x, mean, var, layer.epsilon)
        return params["scale"] * xhat + params["bias"], (
            xhat,
            inv,
            axes if training else None,
            mean,
            var,
        )
    raise TypeError(f"manual_layers: {kind} is not a jaxbp layer.")


def layer_backward(
    layer: Any, params: dict[str, Any], cache: Any, upstream: Matrix
) -> tuple[Matrix | None, dict[str, Any]]:
    """``(dL/dx, grads)`` of one layer from ``upstream``; ``dL/dx`` is ``None`` for tokens."""
    kind = type(layer).__name__
    if kind == "Embedding":
        tokens, table_shape = cache
        dtable = np.zeros(table_shape)
        np.add.at(dtable, tokens, upstream)  # every use of a row adds its gradient (scatter-add)
        return None, {"table": dtable}  # integer tokens have no gradient
    if kind == "PositionalEmbedding":
        dpositions = np.zeros(params["positions"].shape)
        dpositions[: cache[1]] = upstream.sum(axis=0)  # dP[t] = sum over the batch; unused rows 0
        return upstream, {"positions": dpositions}  # dx = upstream
    if kind == "LayerNorm":
        xhat, inv = cache
        return _normalize_backward(upstream, params["scale"], xhat, inv, (-1,))
    if kind == "SelfAttention":
        return _attention_backward(layer, params, cache, upstream)
    if kind == "Dropout":
        return (
            upstream if cache is None else upstream * cache
        ), {}  # dx = upstream * mask / (1 - rate)
    if kind == "BatchNorm":
        xhat, inv, axes, _, _ = cache
        return _normalize_backward(upstream, params["scale"], xhat, inv, axes)
    raise TypeError(f"manual_layers: {kind} is not a jaxbp layer.")


def updated_state(layer: Any, state: Any, cache: Any) -> Any:
    """BatchNorm's running statistics after a batch in training:
    ``running = momentum * running + (1 - momentum) * batch``; other layers keep theirs."""
    if type(layer).__name__ != "BatchNorm" or cache[2] is None:
        return state
    m, (_, _, _, mean, var) = layer.momentum, cache
    return {
        "mean": m * np.asarray(state["mean"], np.float64) + (1 - m) * mean,
        "var": m * np.asarray(state["var"], np.float64) + (1 - m) * var,
    }


def _tokens(layer: Any, x: Matrix) -> Matrix:
    tokens = np.asarray(x)
    if not np.issubdtype(tokens.dtype, np.integer):
        raise TypeError(
            f"manual_layers: the Embedding takes integer tokens, got x of dtype {tokens.dtype}."
        )
    if tokens.size and (tokens.min() < 0 or tokens.max() >= layer.vocab_size):
        raise ValueError(
            f"manual_layers: x holds tokens outside [0, {layer.vocab_size}) (the Embedding's "
            f"vocab_size), from {tokens.min()} to {tokens.max()}."
        )
    return tokens


def _mask(layer: Any, mask: Any, shape: tuple[int, ...]) -> Matrix:
    keep = np.asarray(mask)
    if keep.shape != shape:
        raise ValueError(
            f"manual_layers: a mask of shape {keep.shape} for a Dropout whose input has shape "
            f"{shape}; take the masks from spec.dropout_masks(key, batch)."
        )
    if keep.dtype != np.bool_ and not np.isin(keep, (0, 1)).all():
        raise ValueError(
            f"manual_layers: a Dropout mask holds values other than 0 and 1 (from {keep.min()} "
            f"to {keep.max()}); a mask says which entries are kept, True or False, and the "
            f"layer scales by 1 / (1 - rate) itself."
        )
    return keep.astype(np.float64)
