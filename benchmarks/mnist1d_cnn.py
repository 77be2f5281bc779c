"""The MNIST-1D paper's CNN, trained the paper's way, side by side: steps/s and test accuracy.

    python benchmarks/mnist1d_cnn.py            # timing + accuracy, writes benchmarks/RESULTS_mnist1d.md
    python benchmarks/mnist1d_cnn.py --quick    # a smoke run (seconds), prints the report only

The full run refuses to start on a busy machine (1-minute load above half the cores); ``--force``
runs anyway and marks the file "BUSY: not comparable".

The model is ``ConvBase`` of the mnist1d repository: conv1d 1->25 (kernel 5), 25->25 (3), 25->25
(3), stride 2, padding 1, relu, then linear 125->10; Adam with learning rate 1e-2, batches of 100
in data order, softmax cross-entropy on integer labels, float32. Contenders:

- ``jaxbp.fit`` with the ``cnn`` preset (a :class:`jaxbp.Sequential`), and with a user's own pure
  function of a dict of params (the same CNN written in plain JAX);
- a hand-written raw ``lax.scan`` of that own function, its convolutions as im2col + matmul and,
  separately, as ``lax.conv_general_dilated`` (the choice behind ``conv_impl="auto"``);
- PyTorch eager (the paper's own loop), Flax linen and Equinox (optax, jitted step, Python loop).

Every contender starts from the same weights; before any timing, their parameters after three
steps are checked to agree (float32 tolerance).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere in the repo

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxbp
from benchmarks import mnist1d_contenders as rivals
from benchmarks._harness import (
    Contender,
    LoadWatch,
    add_output_arguments,
    check_same_params,
    installed,
    interleave,
    machine,
    publish,
)

LR, BATCH, CHECK_STEPS = 1e-2, 100, 3
TORCH = "PyTorch eager (the paper's loop)"
TORCH_1 = "PyTorch eager, 1 thread"
# Same computation as another contender, only slower: no separate accuracy run.
# One optimizer object for every fit call: fit compiles per (model, loss, optimizer) object, and
# optax.adam(LR) called anew returns a new object, so each call would compile again.
ADAM = optax.adam(LR)
NO_ACCURACY_RUN = {"raw lax.scan, lax.conv": "raw lax.scan, im2col", TORCH: TORCH_1}


@dataclasses.dataclass(frozen=True)
class Config:
    rounds: int
    epochs: int  # per timed run of the fused contenders (40 steps an epoch)
    loop_steps: int  # per timed run of the per-step loops
    accuracy_epochs: int  # training for the accuracy column (150 = the paper's 6,000 steps)


FULL = Config(rounds=5, epochs=10, loop_steps=200, accuracy_epochs=150)
QUICK = Config(rounds=1, epochs=1, loop_steps=5, accuracy_epochs=1)


# --- a user's own CNN: a pure function of a dict of params --------------------------------------
def conv_im2col(x: jax.Array, w: jax.Array, stride: int, pad: int) -> jax.Array:
    """1-D convolution as im2col + matmul; x ``(batch, length, in)``, w ``(kernel, in, out)``."""
    x = jnp.pad(x, ((0, 0), (pad, pad), (0, 0)))
    kernel, out_len = w.shape[0], (x.shape[1] - w.shape[0]) // stride + 1
    span = stride * (out_len - 1) + 1
    patches = jnp.stack([x[:, k : k + span : stride] for k in range(kernel)], axis=2)
    return patches.reshape(x.shape[0], out_len, -1) @ w.reshape(-1, w.shape[-1])


def conv_lax(x: jax.Array, w: jax.Array, stride: int, pad: int) -> jax.Array:
    return jax.lax.conv_general_dilated(
        x, w, (stride,), [(pad, pad)], dimension_numbers=("NWC", "WIO", "NWC")
    )


def own_cnn(params: dict[str, Any], x: jax.Array, conv=conv_im2col) -> jax.Array:
    """The paper's CNN on x ``(batch, 40)``: logits ``(batch, 10)``."""
    h = x[:, :, None]
    for name in ("conv1", "conv2", "conv3"):
        h = jax.nn.relu(conv(h, params[name]["w"], 2, 1) + params[name]["b"])
    return h.reshape(h.shape[0], -1) @ params["out"]["w"] + params["out"]["b"]


NAMES = (None, "conv1", "conv2", "conv3", None, "out")  # the preset's layers that hold params


def as_dict(layers: list) -> dict[str, Any]:
    return {name: layer for name, layer in zip(NAMES, layers, strict=True) if name}


def as_layers(params: dict[str, Any]) -> list:
    return [params[name] if name else {} for name in NAMES]


def loss_fn(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


# --- raw lax.scan: the hand-written reference loop ---------------------------------------------
@functools.partial(jax.jit, static_argnames=("model", "epochs"))
def raw_scan(params, x, y, *, model, epochs: int):
    """``epochs`` passes of Adam steps over ``x`` in batches of 100, two nested ``lax.scan``s."""
    optimizer = optax.adam(LR)
    xs, ys = x.reshape(-1, BATCH, x.shape[-1]), y.reshape(-1, BATCH)

    def step(carry, batch):
        p, state = carry
        loss, grads = jax.value_and_grad(lambda q: loss_fn(model(q, batch[0]), batch[1]).mean())(p)
        updates, state = optimizer.update(grads, state, p)
        return (optax.apply_updates(p, updates), state), loss

    def epoch(carry, _):
        return jax.lax.scan(step, carry, (xs, ys))

    (params, _), losses = jax.lax.scan(epoch, (params, optimizer.init(params)), None, length=epochs)
    return params, losses


def fused(train_epochs, x, y):
    """``train(steps)`` for a whole-run contender: full epochs, or one short epoch of ``steps`` batches."""

    def train(steps: int) -> list:
        per_epoch = len(y) // BATCH
        if steps % per_epoch == 0:
            return train_epochs(x, y, steps // per_epoch)
        if steps > per_epoch:
            raise ValueError(f"steps must be a multiple of {per_epoch} or below it, got {steps}")
        return train_epochs(x[: steps * BATCH], y[: steps * BATCH], 1)

    return train


def trainers(data: jaxbp.data.datasets.Dataset) -> dict[str, Any]:
    """Every contender as ``train(steps) -> params in jaxbp's layout``, from the same weights."""
    net = jaxbp.presets.PRESETS["cnn"].network
    init = jax.tree.map(np.asarray, net.init(jax.random.key(0)))  # float32
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)

    def fit_epochs(model, params, to_layers):
        def run(xs, ys, epochs):
            trained, _ = jaxbp.fit(
                model,
                loss_fn,
                params,
                xs,
                ys,
                epochs=epochs,
                batch_size=BATCH,
                optimizer=ADAM,
            )[:2]
            return to_layers(jax.block_until_ready(trained))

        return run

    def scan_epochs(conv):
        model = functools.partial(own_cnn, conv=conv)  # one object: a new one would recompile

        def run(xs, ys, epochs):
            trained, _ = raw_scan(as_dict(init), xs, ys, model=model, epochs=epochs)
            return as_layers(jax.block_until_ready(trained))

        return run

    result = {
        "jaxbp.fit, cnn preset": fused(fit_epochs(net, init, list), x, y),
        "jaxbp.fit, own function": fused(fit_epochs(own_cnn, as_dict(init), as_layers), x, y),
        "raw lax.scan, im2col": fused(scan_epochs(conv_im2col), x, y),
        "raw lax.scan, lax.conv": fused(scan_epochs(conv_lax), x, y),
    }
    for name, (module, trainer) in {
        TORCH: ("torch", "torch"),
        TORCH_1: ("torch", "torch1"),
        "Flax linen (jit step, loop)": ("flax", "flax"),
        "Equinox (filter_jit step, loop)": ("equinox", "equinox"),
    }.items():
        if installed(module):
            result[name] = rivals.TRAINERS[trainer](init, data.x_train, data.y_train, LR, BATCH)
    return result


def check(trained: dict[str, Any]) -> None:
    """Every contender's params after CHECK_STEPS steps agree with the raw loop's.

    Adam's first steps move each weight by about ``lr * sign(g)``, so float32 rounding in a
    near-zero gradient moves a weight by up to a few 1e-4 (measured: 4.5e-4 between im2col and
    ``lax.conv``); a different model or loss moves most weights by about ``lr = 1e-2``.
    """
    others = {name: params for name, params in trained.items() if name != "raw lax.scan, im2col"}
    check_same_params(trained["raw lax.scan, im2col"], others, rtol=1e-3, atol=2e-3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 round: a smoke run")
    add_output_arguments(parser, "benchmarks/RESULTS_mnist1d.md; --quick only prints")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    out = args.out or (
        None if args.quick else Path(__file__).resolve().parent / "RESULTS_mnist1d.md"
    )
    watch = LoadWatch.start(out, args.force)
    info = machine()
    data = jaxbp.datasets.mnist1d()
    all_trainers = trainers(data)
    check({name: train(CHECK_STEPS) for name, train in all_trainers.items()})
    print("[bench] every contender computes the same parameters after 3 steps", flush=True)
    per_epoch = len(data.y_train) // BATCH
    contenders = [
        Contender(
            name,
            functools.partial(train, steps),
            steps,
        )
        for name, train in all_trainers.items()
        for steps in [
            config.epochs * per_epoch if name.startswith(("jaxbp", "raw")) else config.loop_steps
        ]
    ]
    timings = interleave(contenders, config.rounds)
    net = jaxbp.presets.PRESETS["cnn"].network
    accuracies, train_seconds = {}, {}
    for name, train in all_trainers.items():
        if name in NO_ACCURACY_RUN:
            continue
        start = time.perf_counter()
        params = train(config.accuracy_epochs * per_epoch)
        train_seconds[name] = time.perf_counter() - start
        accuracies[name] = float(
            np.mean(np.asarray(net(params, data.x_test)).argmax(-1) == data.y_test)
        )
        print(
            f"[bench] {name}: test accuracy {accuracies[name]:.3f} ({train_seconds[name]:.1f} s)",
            flush=True,
        )
    record = watch.stop()
    info |= record.lines()
    publish(render(args, config, info, timings, accuracies, train_seconds), out, record)
    return 0


def render(args, config: Config, info, timings, accuracies, train_seconds) -> str:
    command = "python benchmarks/mnist1d_cnn.py" + (" --quick" if args.quick else "")
    steps_per_s = {name: 1 / t.seconds_per_unit for name, t in timings.items()}
    torch_rates = [steps_per_s[name] for name in (TORCH, TORCH_1) if name in steps_per_s]
    torch_rate = max(torch_rates) if torch_rates else None
    lines = [
        "# MNIST-1D CNN: jaxbp against raw JAX, PyTorch, Flax and Equinox",
        "",
        f"Regenerate with `{command}`. The paper's CNN (conv1d 25 channels x3, kernels 5/3/3, "
        "stride 2, padding 1, relu, linear 125->10), Adam 1e-2, batch 100 in data order, float32, "
        "softmax cross-entropy on integer labels, the same initial weights (`cnn` preset, "
        "`jax.random.key(0)`) for every contender; MNIST-1D generated locally (`jaxbp.data.datasets."
        "mnist1d()`, seed 42). Every contender's parameters after 3 steps agree with the raw loop's "
        f"(atol 2e-3, a fifth of one Adam step). Timing: {config.rounds} interleaved rounds (the order rotated each round and reversed every other), medians, and the slowest and fastest round; whole-run contenders "
        f"train {config.epochs} epochs ({config.epochs * 40} steps) per timed call, per-step loops "
        f"{config.loop_steps} steps. Accuracy: a separate run of {config.accuracy_epochs * 40} steps each.",
        "",
        "| contender | steps/s (median) | slowest-fastest round | vs raw lax.scan (im2col) | vs the faster PyTorch | test accuracy | training time | cores busy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    raw = steps_per_s["raw lax.scan, im2col"]
    for name, t in timings.items():
        rate = steps_per_s[name]
        vs_torch = f"{rate / torch_rate:.2f}x" if torch_rate else "n/a"
        if name in accuracies:
            accuracy, seconds = f"{accuracies[name]:.3f}", f"{train_seconds[name]:.1f} s"
        else:
            accuracy, seconds = f"as {NO_ACCURACY_RUN[name]}", "-"
        lines.append(
            f"| {name} | {rate:,.0f} | {t.rate_range()} | {rate / raw:.2f}x | {vs_torch} | "
            f"{accuracy} | {seconds} | {t.cores:.2f} |"
        )
    lines += ["", "## Machine", ""] + [f"- {key}: {value}" for key, value in info.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
