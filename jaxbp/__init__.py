"""jaxbp: train and verify neural networks by backpropagation, the functional JAX way.

Parameters are plain pytrees, the forward pass and the losses are pure functions, ``jax.grad``
gives the gradients, and a hand-written SGD step applies them. ``jaxbp.manual`` is the same chain
rule written out by hand in NumPy float64, the oracle every gradient is tested against.
"""

from jaxbp import datasets, layers, manual, manual_layers, model_file, presets, sharding
from jaxbp.activations import ACTIVATIONS
from jaxbp.ensemble import fit_ensemble, init_ensemble
from jaxbp.layers import Sequential
from jaxbp.losses import LOSSES
from jaxbp.mlp import INITIALIZERS, MLP
from jaxbp.sgd import loss_and_grad, optax_step, sgd, train_step
from jaxbp.sharding import shard_batch
from jaxbp.trace import Trace, explain
from jaxbp.train import fit, per_example_grads

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
    "shard_batch",
    "sharding",
    "train_step",
)
