"""jaxbp: train and verify neural networks by backpropagation, the functional JAX way.

Parameters are plain pytrees, the forward pass and the losses are pure functions, ``jax.grad``
gives the gradients, and a hand-written SGD step applies them. Any pure model ``(params, x) ->
prediction`` and any loss ``(prediction, y) -> (batch,)`` train the same way as jaxbp's own MLP. ``jaxbp.manual`` is the same chain
rule written out by hand in NumPy float64, the oracle every gradient is tested against.

The names below are imported on first use (PEP 562), so ``import jaxbp`` does not import JAX:
the command line installs its Ctrl-C and SIGTERM handlers before JAX's import starts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jaxbp import (
        callbacks,
        datasets,
        layers,
        manual,
        manual_layers,
        model_file,
        ops,
        presets,
        sharding,
    )
    from jaxbp.data.sources import BatchError, Position, Rows
    from jaxbp.layers import Sequential
    from jaxbp.model.activations import ACTIVATIONS
    from jaxbp.model.losses import LOSSES
    from jaxbp.model.mlp import INITIALIZERS, MLP
    from jaxbp.model.steps import loss_and_grad, optax_step, train_step
    from jaxbp.model.updates import sgd, sgd_transformation
    from jaxbp.training.end_checks import NonFiniteWarning, TrainingWarning
    from jaxbp.training.ensemble import fit_ensemble, init_ensemble
    from jaxbp.training.fit import fit, per_example_grads
    from jaxbp.training.sharding import shard_batch
    from jaxbp.worked.conv_trace import SequentialTrace, explain_sequential
    from jaxbp.worked.trace import Trace, explain

__version__ = "0.1.0"

__all__ = (
    "ACTIVATIONS",
    "INITIALIZERS",
    "LOSSES",
    "MLP",
    "BatchError",
    "NonFiniteWarning",
    "Position",
    "Rows",
    "Sequential",
    "SequentialTrace",
    "Trace",
    "TrainingWarning",
    "__version__",
    "callbacks",
    "datasets",
    "explain",
    "explain_sequential",
    "fit",
    "fit_ensemble",
    "init_ensemble",
    "layers",
    "loss_and_grad",
    "manual",
    "manual_layers",
    "model_file",
    "ops",
    "optax_step",
    "per_example_grads",
    "presets",
    "sgd",
    "sgd_transformation",
    "shard_batch",
    "sharding",
    "train_step",
)

# name -> the module that defines it; a submodule maps to itself
_SOURCES: dict[str, str] = {
    "ACTIVATIONS": "jaxbp.model.activations",
    "INITIALIZERS": "jaxbp.model.mlp",
    "LOSSES": "jaxbp.model.losses",
    "MLP": "jaxbp.model.mlp",
    "BatchError": "jaxbp.data.sources",
    "NonFiniteWarning": "jaxbp.training.end_checks",
    "Position": "jaxbp.data.sources",
    "Rows": "jaxbp.data.sources",
    "Sequential": "jaxbp.layers",
    "SequentialTrace": "jaxbp.worked.conv_trace",
    "Trace": "jaxbp.worked.trace",
    "TrainingWarning": "jaxbp.training.end_checks",
    "callbacks": "jaxbp.callbacks",
    "datasets": "jaxbp.datasets",
    "explain": "jaxbp.worked.trace",
    "explain_sequential": "jaxbp.worked.conv_trace",
    "fit": "jaxbp.training.fit",
    "fit_ensemble": "jaxbp.training.ensemble",
    "init_ensemble": "jaxbp.training.ensemble",
    "layers": "jaxbp.layers",
    "loss_and_grad": "jaxbp.model.steps",
    "manual": "jaxbp.manual",
    "manual_layers": "jaxbp.manual_layers",
    "model_file": "jaxbp.model_file",
    "ops": "jaxbp.ops",
    "optax_step": "jaxbp.model.steps",
    "per_example_grads": "jaxbp.training.fit",
    "presets": "jaxbp.presets",
    "sgd": "jaxbp.model.updates",
    "sgd_transformation": "jaxbp.model.updates",
    "shard_batch": "jaxbp.training.sharding",
    "sharding": "jaxbp.sharding",
    "train_step": "jaxbp.model.steps",
}


if not TYPE_CHECKING:  # type checkers see the imports above; an unknown name stays an error there

    def __getattr__(name: str) -> Any:
        """Import a public name on first use and keep it in the module, as an eager import would."""
        source = _SOURCES.get(name)
        if source is None:
            raise AttributeError(f"module 'jaxbp' has no attribute {name!r}")
        module = importlib.import_module(source)
        value = module if source == f"jaxbp.{name}" else getattr(module, name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(__all__))
