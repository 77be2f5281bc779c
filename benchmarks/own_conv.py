"""A model of one's own with convolutions: ``lax.conv_general_dilated`` against ``jaxbp.ops.conv``.

    python benchmarks/own_conv.py            # timing, writes benchmarks/RESULTS_own_conv.md
    python benchmarks/own_conv.py --quick    # a smoke run (seconds), prints the report only

The model is the MNIST-1D paper's CNN written as a pure function of a dict of params
(``benchmarks/mnist1d_cnn.py``'s ``own_cnn``: conv1d 1->25 (kernel 5), 25->25 (3), 25->25 (3),
stride 2, padding 1, relu, linear 125->10), trained by ``jaxbp.fit`` with Adam 1e-2, batches of
100 in data order, softmax cross-entropy, float32, on MNIST-1D. Only the convolution differs:

- ``lax.conv_general_dilated`` called directly, as a user would write it;
- ``jaxbp.ops.conv`` with ``impl="auto"`` (the backend's choice, ``jaxbp.ops.CONV_IMPL_BY_BACKEND``),
  and with ``impl="im2col"`` and ``impl="lax"`` named.

Every contender starts from the same weights; before timing, their parameters after three steps
must agree (float32 tolerance). The contenders then run interleaved round by round, medians and
the slowest and fastest round are reported. The full run refuses to start on a busy machine
(1-minute load above half the cores); ``--force`` runs anyway and marks the file
"BUSY: not comparable".
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere in the repo

import jax
import jax.numpy as jnp
import numpy as np

import jaxbp
from benchmarks._harness import (
    Contender,
    LoadWatch,
    add_output_arguments,
    check_same_params,
    interleave,
    machine,
    publish,
)
from benchmarks.mnist1d_cnn import (
    ADAM,
    BATCH,
    CHECK_STEPS,
    as_dict,
    as_layers,
    conv_lax,
    loss_fn,
    own_cnn,
)

RESULTS = Path(__file__).resolve().parent / "RESULTS_own_conv.md"
LAX = "own model, lax.conv_general_dilated"


def _ops_conv(x: jax.Array, w: jax.Array, stride: int, pad: int, *, impl: str) -> jax.Array:
    return jaxbp.ops.conv(x, w, stride=stride, padding=pad, impl=impl)


# One model object per contender, made once: fit compiles per model object.
MODELS = {
    LAX: functools.partial(own_cnn, conv=conv_lax),
    f'own model, jaxbp.ops.conv, impl="auto" (= "{jaxbp.ops.resolve_conv_impl("auto")}" here)': (
        functools.partial(own_cnn, conv=functools.partial(_ops_conv, impl="auto"))
    ),
    'own model, jaxbp.ops.conv, impl="im2col"': functools.partial(
        own_cnn, conv=functools.partial(_ops_conv, impl="im2col")
    ),
    'own model, jaxbp.ops.conv, impl="lax"': functools.partial(
        own_cnn, conv=functools.partial(_ops_conv, impl="lax")
    ),
}


def trainers(data: Any) -> dict[str, Any]:
    """``train(steps) -> params in jaxbp's layout`` per contender, from the same weights."""
    init = jax.tree.map(np.asarray, jaxbp.presets.PRESETS["cnn"].network.init(jax.random.key(0)))
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    per_epoch = len(y) // BATCH

    def trainer(model: Any):
        def train(steps: int) -> list:
            epochs, rows = (
                (steps // per_epoch, len(y)) if steps >= per_epoch else (1, steps * BATCH)
            )
            trained, _ = jaxbp.fit(
                model, loss_fn, as_dict(init), x[:rows], y[:rows],
                epochs=epochs, batch_size=BATCH, optimizer=ADAM,
            )[:2]  # fmt: skip
            return as_layers(jax.block_until_ready(trained))

        return train

    return {name: trainer(model) for name, model in MODELS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 round: a smoke run")
    add_output_arguments(parser, "benchmarks/RESULTS_own_conv.md; --quick only prints")
    args = parser.parse_args(argv)
    rounds, epochs = (1, 1) if args.quick else (7, 10)
    out = args.out or (None if args.quick else RESULTS)
    watch = LoadWatch.start(out, args.force)
    info = machine()
    data = jaxbp.datasets.mnist1d(num_samples=1000 if args.quick else 5000)
    train = trainers(data)
    trained = {name: fn(CHECK_STEPS) for name, fn in train.items()}
    reference = trained.pop(LAX)
    check_same_params(reference, trained, rtol=1e-3, atol=2e-3)  # as benchmarks/mnist1d_cnn.py
    print(f"[bench] every contender computes the same parameters after {CHECK_STEPS} steps")
    steps = epochs * (len(data.y_train) // BATCH)
    timings = interleave(
        [Contender(name, functools.partial(fn, steps), steps) for name, fn in train.items()], rounds
    )
    record = watch.stop()
    info |= record.lines()
    command = "python benchmarks/own_conv.py" + (" --quick" if args.quick else "")
    lines = [
        "# A model of one's own: lax.conv_general_dilated against jaxbp.ops.conv",
        "",
        f"Regenerate with `{command}`. The MNIST-1D paper's CNN as a pure function of a dict of "
        "params, trained by `jaxbp.fit` (Adam 1e-2, batch 100 in data order, float32); only the "
        f"convolution differs. {rounds} interleaved rounds of {steps} steps each, the order "
        "rotated each round and reversed every other; medians, and the slowest and fastest round. "
        f"Parameters after {CHECK_STEPS} steps agree across contenders (atol 2e-3).",
        "",
        "| contender | steps/s (median) | slowest-fastest round | vs lax.conv_general_dilated "
        "| cores busy | setup (compile) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    base = timings[LAX].seconds_per_unit
    for name, t in timings.items():
        lines.append(
            f"| {name} | {1 / t.seconds_per_unit:,.0f} | {t.rate_range()} | "
            f"{base / t.seconds_per_unit:.2f}x | {t.cores:.2f} | {t.setup_seconds:.1f} s |"
        )
    lines += ["", "## Machine", ""] + [f"- {key}: {value}" for key, value in info.items()]
    publish("\n".join(lines) + "\n", out, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
