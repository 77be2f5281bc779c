"""The MNIST-1D paper's table with jaxbp: logistic regression, MLP and CNN, then two CNNs past it.

    python examples/mnist1d_presets.py                     # logistic, mlp, cnn (the paper's rows), seed 0
    python examples/mnist1d_presets.py cnn_pool cnn_residual --seeds 0 1 2

Each preset is a ``jaxbp.Sequential`` trained with the paper's recipe (Adam 1e-2, batches of 100
in data order, 150 epochs = 6,000 steps) on MNIST-1D generated locally. The paper reports test
accuracies of 32%, 68% and 94%.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
import optax

import jaxbp


def train(name: str, data: jaxbp.datasets.Dataset, seed: int, epochs: int | None = None) -> float:
    """Train one preset from ``jax.random.key(seed)``; print and return its test accuracy."""
    preset = jaxbp.layers.presets.PRESETS[name]
    net = preset.network
    params = net.init(jax.random.key(seed))
    start = time.perf_counter()
    params, _ = jaxbp.fit(
        net,
        optax.softmax_cross_entropy_with_integer_labels,
        params,
        data.x_train,
        data.y_train,
        epochs=epochs or preset.epochs,
        batch_size=preset.batch_size,
        optimizer=optax.adam(preset.learning_rate),
    )
    seconds = time.perf_counter() - start
    accuracy = float(np.mean(np.asarray(net(params, data.x_test)).argmax(-1) == data.y_test))
    paper = f"{preset.paper_accuracy:.0%}" if preset.paper_accuracy else "-"
    print(
        f"{name:<13} seed {seed}  test accuracy {accuracy:6.1%}  (paper {paper:>4})  {seconds:5.1f} s"
    )
    return accuracy


def main(names=("logistic", "mlp", "cnn"), seeds=(0,), epochs=None) -> dict:
    data = jaxbp.datasets.mnist1d()
    return {(n, s): train(n, data, s, epochs) for n in names for s in seeds}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", nargs="*", help=", ".join(jaxbp.layers.presets.PRESETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    args = parser.parse_args()
    for name in args.presets:
        if name not in jaxbp.layers.presets.PRESETS:
            parser.error(
                f"unknown preset {name!r}; choose from {', '.join(jaxbp.layers.presets.PRESETS)}"
            )
    main(args.presets or ("logistic", "mlp", "cnn"), args.seeds)
