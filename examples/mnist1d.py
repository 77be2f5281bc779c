"""The MNIST-1D paper's table with jaxbp: logistic regression, MLP and CNN, then two CNNs past it.

    python examples/mnist1d.py                     # logistic, mlp, cnn (the paper's rows)
    python examples/mnist1d.py cnn_pool cnn_residual

Each preset is a ``jaxbp.Sequential`` trained with the paper's recipe (Adam 1e-2, batches of 100
in data order, 150 epochs = 6,000 steps) on MNIST-1D generated locally. The paper reports test
accuracies of 32%, 68% and 94%.
"""

from __future__ import annotations

import sys
import time

import jax
import numpy as np
import optax

import jaxbp

SEED = 0


def train(name: str, data: jaxbp.datasets.Dataset, epochs: int | None = None) -> float:
    preset = jaxbp.presets.PRESETS[name]
    net = preset.network
    params = net.init(jax.random.key(SEED))
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
    print(f"{name:<13} test accuracy {accuracy:6.1%}  (paper {paper:>4})  {seconds:5.1f} s")
    return accuracy


def main(names: list[str] | None = None, epochs: int | None = None) -> dict[str, float]:
    data = jaxbp.datasets.mnist1d()
    return {name: train(name, data, epochs) for name in names or ["logistic", "mlp", "cnn"]}


if __name__ == "__main__":
    main(sys.argv[1:])
