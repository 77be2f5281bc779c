"""Input validation shared by every public function, so that messages read alike.

Each check raises before anything is computed: ``ValueError`` for a bad value or shape,
``TypeError`` for a wrong kind (an integer array where floats are needed, a dict where a list is).
Messages name the function, the argument, what was expected, what came, and how to fix it.
Checks look only at static facts (structure, shape, dtype) or at concrete values; traced values
pass through untouched, so the checks also run, once, while a function is being traced.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:
    from jaxbp.model.mlp import MLP


def check_name(where: str, what: str, name: object, valid: Iterable[str]) -> str:
    """Return ``name`` if it is one of ``valid``, else raise a ValueError listing them."""
    valid = sorted(valid)
    if not isinstance(name, str) or name not in valid:
        raise ValueError(f"{where}: unknown {what} {name!r}; valid names are {', '.join(valid)}.")
    return name


def native(dtype: Any) -> np.dtype:
    """``dtype`` in the machine's byte order (JAX refuses ``'>f4'`` on a little-endian machine)."""
    dtype = np.dtype(dtype)
    return dtype if dtype.isnative else dtype.newbyteorder("=")


def as_array(where: str, name: str, value: Any) -> Any:
    """``value`` as an array: a ``jax.Array`` or tracer as it is, anything else through NumPy in
    native byte order; a ragged list or an iterator is refused, naming ``name``."""
    if isinstance(value, jax.Array):
        return value
    if value is None or isinstance(value, str | bytes):
        raise TypeError(f"{where}: {name} is {value!r:.40}; pass an array.")
    if isinstance(value, Iterator):
        raise TypeError(
            f"{where}: {name} is an iterator ({type(value).__name__}); pass an array. To train "
            f"on batches from a loader, pass fit an iterable of (x, y) batches as x and y=None."
        )
    try:
        array = np.asarray(value)
    except ValueError as error:
        raise ValueError(
            f"{where}: {name} is a ragged nested sequence (rows of different lengths) and is not "
            f"an array; pass a rectangular array, e.g. np.asarray with equal-length rows."
        ) from error
    return array if array.dtype.isnative else array.astype(native(array.dtype))


def as_float_array(where: str, name: str, value: Any) -> jax.Array | np.ndarray:
    """Return ``value`` as an array (a tracer passes through) and check its dtype is real floating."""
    array = as_array(where, name, value)
    if jnp.issubdtype(array.dtype, jnp.complexfloating):
        raise TypeError(
            f"{where}: {name} has complex dtype {array.dtype}; pass a real floating-point array."
        )
    if not jnp.issubdtype(array.dtype, jnp.floating):
        raise TypeError(
            f"{where}: {name} has dtype {array.dtype} but a floating-point array is needed; "
            f"convert it, e.g. {name}.astype(jnp.float32)."
        )
    return array


def check_params(where: str, spec: MLP, params: Any) -> None:
    """Check that ``params`` is a list of one ``{"w", "b"}`` dict per layer with the spec's shapes."""
    if not isinstance(params, list | tuple):
        raise TypeError(
            f"{where}: params must be a list with one dict per layer, got {type(params).__name__}."
        )
    if len(params) != spec.num_layers:
        raise ValueError(
            f"{where}: params has {len(params)} layers but the spec {spec.sizes} has "
            f"{spec.num_layers}; build params with spec.init(key) or spec.params_from(ws, bs)."
        )
    for i, (layer, (fan_in, fan_out), has_bias) in enumerate(
        zip(params, spec.layer_shapes, spec.layer_bias, strict=True)
    ):
        if not isinstance(layer, Mapping):
            raise TypeError(
                f"{where}: params[{i}] must be a dict with keys 'w' and 'b', "
                f"got {type(layer).__name__}."
            )
        expected_keys = {"w", "b"} if has_bias else {"w"}
        if set(layer) != expected_keys:
            raise ValueError(
                f"{where}: params[{i}] has keys {sorted(layer)} but layer {i} expects "
                f"{sorted(expected_keys)} (bias={has_bias})."
            )
        _check_leaf_shape(where, f'params[{i}]["w"]', layer["w"], (fan_in, fan_out))
        if has_bias:
            _check_leaf_shape(where, f'params[{i}]["b"]', layer["b"], (fan_out,))


def _check_leaf_shape(where: str, name: str, leaf: Any, expected: tuple[int, ...]) -> None:
    shape = tuple(np.shape(leaf))
    if shape != expected:
        raise ValueError(f"{where}: {name} has shape {shape} but the spec expects {expected}.")
    as_float_array(where, name, leaf)


def check_input(where: str, spec: MLP, x: Any) -> jax.Array | np.ndarray:
    """Check ``x`` is a float array of shape ``(features,)`` or ``(batch, features)``."""
    x = as_float_array(where, "x", x)
    features = spec.sizes[0]
    if x.ndim not in (1, 2) or x.shape[-1] != features:
        raise ValueError(
            f"{where}: x has shape {tuple(x.shape)} but the network expects {features} input "
            f"features; pass x of shape ({features},) or (batch, {features})."
        )
    if x.ndim == 2 and x.shape[0] == 0:
        raise ValueError(f"{where}: x has an empty batch (shape {tuple(x.shape)}).")
    return x


def check_target(where: str, spec: MLP, x: Any, y: Any) -> jax.Array | np.ndarray:
    """Check ``y`` is a float array whose shape is ``x``'s batch by the network's outputs."""
    y = as_float_array(where, "y", y)
    outputs = spec.sizes[-1]
    expected = (*np.shape(x)[:-1], outputs)
    if tuple(y.shape) != expected:
        raise ValueError(
            f"{where}: y has shape {tuple(y.shape)} but x of shape {tuple(np.shape(x))} and "
            f"{outputs} network outputs need targets of shape {expected}."
        )
    return y


def check_learning_rate(
    where: str, lr: Any, *, allow_vector: bool = False, allow_schedule: bool = False
) -> None:
    """Check a concrete learning rate is finite and positive (a traced one is not checked); a
    function (a schedule) only with ``allow_schedule``, where there is a step count to call it."""
    if isinstance(lr, jax.core.Tracer):
        return
    if callable(lr):
        if allow_schedule:  # an optax schedule: checked where the run's steps are known
            return
        raise TypeError(
            f"{where}: learning rate must be a number, got a function ({type(lr).__name__}); "
            f"one step has no step count to call a schedule with: pass its value, "
            f"lr=schedule(step), or train with jaxbp.fit(..., lr=schedule)."
        )
    array = np.asarray(lr)
    # jnp.issubdtype: NumPy's own does not count bfloat16 (an ml_dtypes type) as floating
    if not (jnp.issubdtype(array.dtype, jnp.floating) or jnp.issubdtype(array.dtype, jnp.integer)):
        raise TypeError(f"{where}: learning rate must be a real number, got {lr!r}.")
    if array.ndim > (1 if allow_vector else 0):
        shape_text = "a scalar or a vector (one per model)" if allow_vector else "a scalar"
        raise ValueError(f"{where}: learning rate must be {shape_text}, got shape {array.shape}.")
    if not np.all(np.isfinite(array)) or not np.all(array > 0):
        raise ValueError(
            f"{where}: learning rate must be finite and > 0, got {lr!r}; try e.g. 0.1."
        )


def check_same_structure(where: str, name_a: str, a: Any, name_b: str, b: Any) -> None:
    """Check two pytrees have the same structure and leaf shapes; print both when not."""
    tree_a, tree_b = jax.tree.structure(a), jax.tree.structure(b)
    if tree_a != tree_b:  # type: ignore[operator]
        raise ValueError(
            f"{where}: {name_a} and {name_b} differ in structure:\n"
            f"  {name_a}: {tree_a}\n  {name_b}: {tree_b}"
        )
    for path, leaf_a, leaf_b in zip(
        jax.tree_util.tree_leaves_with_path(a),
        jax.tree.leaves(a),
        jax.tree.leaves(b),
        strict=True,
    ):
        if np.shape(leaf_a) != np.shape(leaf_b):
            location = jax.tree_util.keystr(path[0])
            raise ValueError(
                f"{where}: {name_a}{location} has shape {np.shape(leaf_a)} but "
                f"{name_b}{location} has shape {np.shape(leaf_b)}."
            )


def device_memory_bytes() -> tuple[str, int | None]:
    """The default device's name and its memory in bytes (an accelerator's limit, the host's
    physical memory for the CPU); ``None`` when it cannot be told."""
    device = jax.devices()[0]
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "bytes_limit" in stats:
        return str(device), int(stats["bytes_limit"])
    try:
        return str(device), os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no sysconf (Windows)
        return str(device), None


def check_param_memory(where: str, shapes: Iterable[tuple[int, ...]], dtype: Any) -> None:
    """Refuse parameters of these shapes that would not fit in the default device's memory,
    before anything is allocated (an absurd shape would otherwise abort XLA, or be allocated
    lazily and fail later)."""
    count = sum(math.prod(shape) for shape in shapes)
    need = count * np.dtype(dtype).itemsize
    device, limit = device_memory_bytes()
    if limit is not None and need > limit:
        raise ValueError(
            f"{where}: the parameters would take {need / 2**30:,.1f} GiB ({count:,} "
            f"{np.dtype(dtype).name} values), more than the {limit / 2**30:,.1f} GiB of memory of "
            f"{device}; use smaller layers."
        )


def check_init_key(where: str, key: Any) -> None:
    """Check an ``init`` key is one ``jax.random.key`` (shape ``()``) or a legacy uint32 ``(2,)``."""
    if isinstance(key, jax.Array | np.ndarray):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ():
            return
        if key.dtype == np.uint32 and key.shape == (2,):
            return
    shape = f" of shape {tuple(key.shape)}" if hasattr(key, "shape") else ""
    raise TypeError(
        f"{where}: key must be one PRNG key, jax.random.key(seed), got "
        f"{type(key).__name__} {key!r:.40}{shape}; pass e.g. jax.random.key(0)."
    )


def check_on_step(where: str, on_step: Any) -> None:
    """``on_step``: ``None`` or a function ``on_step(step, loss)``."""
    if on_step is not None and not callable(on_step):
        raise TypeError(
            f"{where}: on_step must be a function on_step(step, loss) or None, got "
            f"{type(on_step).__name__} {on_step!r:.40}."
        )


def check_positive_int(where: str, name: str, value: Any, most: int | None = None) -> int:
    """Check ``value`` is an int >= 1 (bools are refused), and at most ``most`` when given; return it."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{where}: {name} must be an int, got {value!r:.60}.")
    if value < 1:
        raise ValueError(f"{where}: {name} must be >= 1, got {value}.")
    if most is not None and value > most:
        raise ValueError(f"{where}: {name} must be at most {most:,}, got {value:,}.")
    return int(value)


# --- the model and loss contract: any pure model, any loss, any params pytree ---------------
#: Named losses that take probabilities, and the output activations that give them.
_PROBABILITY_LOSSES = {
    "cross_entropy": ("softmax", "sigmoid"),
    "binary_cross_entropy": ("sigmoid", "softmax"),
}


def check_output_pairing(where: str, model: Any, loss: Any) -> None:
    """Refuse a named loss whose input the model's output activation does not give: a softmax
    before ``softmax_cross_entropy`` (applied twice: a flatter, wrong loss that trains silently),
    or an unbounded output (``linear``, ``relu``, ...) before a loss of probabilities (the log of
    a value outside (0, 1]: NaN from the first step). Models that name no output activation (an
    ``output_activation`` attribute, as ``MLP`` and ``Sequential`` have) are not checked."""
    output = getattr(model, "output_activation", None)
    if not isinstance(loss, str) or not isinstance(output, str):
        return
    if loss == "softmax_cross_entropy" and output == "softmax":
        raise ValueError(
            f"{where}: the model ends in a softmax, and the loss 'softmax_cross_entropy' applies "
            f"the softmax itself (it would be applied twice, training silently on a flatter, wrong "
            f"loss); end the model with 'linear' so it gives logits, or use loss 'cross_entropy' "
            f"on its probabilities."
        )
    wanted = _PROBABILITY_LOSSES.get(loss)
    if wanted is not None and output not in wanted:
        advice = (
            "end the model with 'softmax' (one class per example), or keep the logits and use "
            "loss 'softmax_cross_entropy'"
            if loss == "cross_entropy"
            else "end the model with 'sigmoid' (one probability per output)"
        )
        raise ValueError(
            f"{where}: the loss {loss!r} takes probabilities in (0, 1), but the model's output "
            f"activation is {output!r}, whose values can fall outside them (log gives NaN from "
            f"the first step); {advice}."
        )


def check_trainable(where: str, model: Any) -> None:
    """Refuse a network that the training functions, which call ``model(params, x)``, would train
    wrongly: one with running state (``stateful``: a BatchNorm, which ``model(params, x)`` cannot
    update) or with dropout (``uses_dropout``: on only with a random key, which they never pass,
    so the network would train silently with dropout off). Models without these attributes (an
    ``MLP``, a user's function) are not checked."""
    if getattr(model, "stateful", False) is True:
        raise ValueError(
            f"{where}: the network has a BatchNorm, whose running statistics are state that "
            f"{where} does not carry (it calls the model as (params, x)); train it with a step "
            f"of your own around net.apply_with_state(params, state, x, training=True), which "
            f"returns the new state (see docs/layers.md), or use LayerNorm, which has no state."
        )
    if getattr(model, "uses_dropout", False) is True:
        raise ValueError(
            f"{where}: the network has a Dropout, which is on only with a random key, and "
            f"{where} calls the model as (params, x) without one: it would train with dropout "
            f"silently off. Train it with a step of your own that passes a fresh key each step, "
            f"net.apply(params, x, key=step_key) (see docs/layers.md); or, to train without "
            f"dropout, remove the Dropout layers (or set their rate to 0)."
        )


def check_model(where: str, model: Any) -> None:
    """Check ``model`` is a callable ``(params, x) -> prediction`` (a ``jaxbp.MLP`` is one)."""
    if isinstance(model, str) or not callable(model):
        raise TypeError(
            f"{where}: model must be a callable (params, x) -> prediction, such as a pure "
            f"function or a jaxbp.MLP, got {type(model).__name__} {model!r:.60}; "
            f"pass e.g. jaxbp.MLP(sizes=(2, 8, 1), activations=('relu', 'linear'))."
        )


def check_loss(where: str, loss: Any, valid_names: Iterable[str]) -> None:
    """Check ``loss`` is a name in ``valid_names`` or a callable ``(prediction, y) -> (batch,)``."""
    if isinstance(loss, str):
        check_name(where, "loss", loss, valid_names)
    elif not callable(loss):
        raise TypeError(
            f"{where}: loss must be a name in jaxbp.LOSSES or a callable (prediction, y) -> "
            f"per-example losses of shape (batch,), got {type(loss).__name__}; pass e.g. "
            f"optax.softmax_cross_entropy_with_integer_labels."
        )


def leaf_paths(tree: Any) -> tuple[str, ...]:
    """``jax.tree_util.keystr`` of every leaf, in ``jax.tree.leaves`` order."""
    return tuple(
        jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]
    )


def check_param_leaves(where: str, params: Any, name: str = "params") -> np.dtype:
    """Check every leaf of ``params`` is a real float array, all of one dtype; return it."""
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    if not flat:
        raise ValueError(
            f"{where}: {name} has no array leaves (got {type(params).__name__}); pass a pytree "
            f"of float arrays, e.g. {{'w': jnp.zeros((3, 1)), 'b': jnp.zeros(1)}}."
        )
    first_path, first_dtype = "", None
    for path, leaf in flat:
        location = f"{name}{jax.tree_util.keystr(path)}"
        dtype = native(leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(
                f"{where}: {location} has dtype {dtype} ({type(leaf).__name__}); every leaf of "
                f"{name} is trained, so it must be a float array: convert it with "
                f"jnp.asarray(leaf, jnp.float32), or keep fixed values out of {name} (e.g. as "
                f"a default argument of the model function)."
            )
        if first_dtype is None:
            first_path, first_dtype = location, dtype
        elif dtype != first_dtype:
            raise TypeError(
                f"{where}: {name} mixes float dtypes: {first_path} is {first_dtype} but "
                f"{location} is {dtype}; cast every leaf to one dtype, e.g. "
                f"jax.tree.map(lambda p: p.astype(jnp.float32), {name})."
            )
    assert first_dtype is not None
    return first_dtype


def as_real_array(where: str, name: str, value: Any) -> jax.Array | np.ndarray:
    """``value`` as an array with a leading batch axis and a real (int, float or bool) dtype."""
    array = as_array(where, name, value)
    dtype = array.dtype
    if not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)) and (
        dtype != np.bool_
    ):
        raise TypeError(
            f"{where}: {name} has dtype {dtype}; pass a real array (float, or integer labels)."
        )
    if array.ndim < 1 or array.shape[0] == 0:
        raise ValueError(
            f"{where}: {name} has shape {tuple(array.shape)}; it needs a leading batch axis with "
            f"at least one example, e.g. x[None] for a single example."
        )
    return array


def check_rows(where: str, x: Any, y: Any) -> None:
    """Check ``x`` and ``y`` hold the same number of examples (their leading axis)."""
    if np.shape(x)[0] != np.shape(y)[0]:
        raise ValueError(
            f"{where}: x has {np.shape(x)[0]} examples (shape {tuple(np.shape(x))}) but y has "
            f"{np.shape(y)[0]} (shape {tuple(np.shape(y))}); pass one target per example."
        )


def check_loss_shape(where: str, shape: tuple[int, ...], dtype: Any, batch: int) -> None:
    """Check a loss returned one float per example, shape ``(batch,)``."""
    if tuple(shape) != (batch,):
        raise ValueError(
            f"{where}: loss returned shape {tuple(shape)} for a batch of {batch} examples, but it "
            f"must return one loss per example, shape ({batch},); jaxbp takes their mean. For a "
            f"loss per output unit, sum over the last axis: "
            f"lambda p, t: optax.l2_loss(p, t).sum(-1)."
        )
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{where}: loss returned dtype {dtype}; a float loss is needed.")


def shape_structs(tree: Any) -> Any:
    """Every leaf as a ``jax.ShapeDtypeStruct``: what ``jax.eval_shape`` needs, no device work."""

    def struct(leaf: Any) -> jax.ShapeDtypeStruct:
        dtype = leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype
        return jax.ShapeDtypeStruct(np.shape(leaf), native(dtype))

    return jax.tree.map(struct, tree)


def check_optimizer(where: str, optimizer: Any) -> None:
    """Check ``optimizer`` is an optax ``GradientTransformation``."""
    import optax

    if isinstance(optimizer, optax.MultiSteps):
        # a wrapper object, not a GradientTransformation; it only hinted at optax.adam(1e-3)
        raise TypeError(
            f"{where}: optimizer must be an optax.GradientTransformation, got an "
            f"optax.MultiSteps object; pass its transformation: "
            f"optax.MultiSteps(...).gradient_transformation()."
        )
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            f"{where}: optimizer must be an optax.GradientTransformation, got "
            f"{type(optimizer).__name__}; pass e.g. optax.adam(1e-3)."
        )


def check_opt_state(where: str, optimizer: Any, params: Any, opt_state: Any) -> None:
    """Check ``opt_state`` has the structure, shapes and dtypes ``optimizer.init(params)`` gives."""
    expected = jax.eval_shape(optimizer.init, shape_structs(params))
    got = shape_structs(opt_state)
    same = jax.tree.structure(expected) == jax.tree.structure(got) and all(  # type: ignore[operator]
        (e.shape, e.dtype) == (g.shape, g.dtype)
        for e, g in zip(jax.tree.leaves(expected), jax.tree.leaves(got), strict=True)
    )
    if not same:
        raise ValueError(
            f"{where}: opt_state does not fit this optimizer and params: optimizer.init(params) "
            f"gives\n  {_describe(expected)}\nbut opt_state is\n  {_describe(got)}\n"
            f"pass the state this optimizer returned for these params, or None to start afresh."
        )


def _describe(tree: Any) -> str:
    leaves = ", ".join(f"{leaf.dtype}{list(leaf.shape)}" for leaf in jax.tree.leaves(tree))
    return f"{jax.tree.structure(tree)} with leaves [{leaves}]"
