"""The model and loss contract, and one step of training.

A model is any pure ``model(params, x) -> prediction`` over a pytree of parameters; a loss is
``loss(prediction, y) -> (batch,)`` per-example values, or a name in :data:`losses.LOSSES`.

- :mod:`~jaxbp.model.activations`, :mod:`~jaxbp.model.losses`: the named functions, in JAX.
- :mod:`~jaxbp.model.mlp`: :class:`~jaxbp.model.mlp.MLP`, a static, hashable dense network.
- :mod:`~jaxbp.model.steps`: ``loss_and_grad``, ``train_step``, ``optax_step`` (one jitted step).
- :mod:`~jaxbp.model.updates`: the hand-written SGD update ``p - lr * g``, and as an optax transform.
- :mod:`~jaxbp.model.checks`: the argument checks every entry point shares; each raises one line
  naming the argument, what was wrong and what was expected.
- :mod:`~jaxbp.model.batch_checks`: a batch against the contract: one prediction per example, not
  broadcast against ``y``; each example's loss its own; finite params.

Nothing here knows about epochs, files or the command line.
"""
