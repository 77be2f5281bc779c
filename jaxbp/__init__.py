"""jaxbp: train and verify neural networks by backpropagation, the functional JAX way.

Parameters are plain pytrees, the forward pass and the losses are pure functions, ``jax.grad``
gives the gradients, and a hand-written SGD step applies them. Any pure model ``(params, x) ->
prediction`` and any loss ``(prediction, y) -> (batch,)`` train the same way as jaxbp's own MLP. ``jaxbp.manual`` is the same chain
rule written out by hand in NumPy float64, the oracle every gradient is tested against.
"""

from jaxbp import datasets, layers, manual, manual_layers, model_file, presets, sharding
from jaxbp.activations import ACTIVATIONS
from jaxbp.ensemble import fit_ensemble, init_ensemble
from jaxbp.layers import Sequential
from jaxbp.losses import LOSSES
from jaxbp.mlp import INITIALIZERS, MLP
from jaxbp.sharding import shard_batch
from jaxbp.steps import loss_and_grad, optax_step, train_step
from jaxbp.trace import Trace, explain
from jaxbp.train import fit, per_example_grads
from jaxbp.updates import sgd, sgd_transformation

__version__ = "0.1.0"

__all__ = (
    "ACTIVATIONS",
    "INITIALIZERS",
    "LOSSES",
    "MLP",
    "Sequential",
    "Trace",
    "__version__",
    "datasets",
    "explain",
    "fit",
    "fit_ensemble",
    "init_ensemble",
    "layers",
    "loss_and_grad",
    "manual",
    "manual_layers",
    "model_file",
    "optax_step",
    "per_example_grads",
    "presets",
    "sgd",
    "sgd_transformation",
    "shard_batch",
    "sharding",
    "train_step",
)
