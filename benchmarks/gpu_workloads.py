"""The workloads of ``benchmarks/gpu.py``, each a function returning a :class:`Section` of the report.

Every workload builds its contenders, checks that they compute the same parameters (a failed check
is reported in the section, not raised, so that one device run still measures the rest), times
them interleaved with :func:`benchmarks._harness.interleave`, and returns Markdown lines and the
targets it decides. PyTorch contenders run on the same device when PyTorch sees it; otherwise
they are left out with a note.
"""

from __future__ import annotations

import dataclasses
import functools
import tempfile
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxbp
from benchmarks import ensemble, gpu_torch, mlp
from benchmarks import mnist1d_cnn as cnn
from benchmarks import mnist1d_contenders as rivals
from benchmarks._harness import Contender, Timing, check_same_params, interleave
from benchmarks.make_synthetic import write_dataset


@dataclasses.dataclass
class Section:
    title: str
    lines: list[str]
    targets: list[tuple[str, str, bool | None]] = dataclasses.field(default_factory=list)


def _checked(reference: Any, others: dict[str, Any], rtol: float, atol: float) -> str:
    """``check_same_params`` as a line of the report: agreement, or what differed."""
    try:
        check_same_params(reference, others, rtol=rtol, atol=atol)
    except AssertionError as error:
        return f"**Parameters differ (check before timing): {error}.**"
    return f"Parameters agree before timing ({', '.join(others)}; rtol {rtol}, atol {atol})."


def _row(name: str, t: Timing, *extra: str) -> str:
    """A table row: the name, units/s (median), the slowest and fastest round, extra cells, setup."""
    rate = 1 / t.seconds_per_unit
    cells = [name, f"{rate:,.0f}", t.rate_range(), *extra, f"{t.setup_seconds:.1f} s"]
    return "| " + " | ".join(cells) + " |"


# --- the large MLP: MFU in TF32 and bfloat16 ---------------------------------------------------
def mlp_section(setup: dict[str, Any], peaks: dict[str, float | None], rounds: int, torch_device):
    sizes, batch, batches, epochs = (
        setup["sizes"],
        setup["batch"],
        setup["batches"],
        setup["epochs"],
    )
    spec = mlp.make_spec(sizes)
    flops = 6 * mlp.weights(sizes)
    _, x_np, y_np = mlp.make_data(sizes, batch, batches)
    examples = batch * batches * epochs
    contenders, precisions = [], {"float32": "tensorfloat32", "bfloat16": "default"}
    checks = {}
    for dtype_name, precision in precisions.items():
        dtype = jnp.dtype(dtype_name)
        params = spec.init(jax.random.key(0), dtype)
        x, y = jnp.asarray(x_np, dtype), jnp.asarray(y_np, dtype)

        def fit(n_epochs=epochs, params=params, x=x, y=y, precision=precision):
            with jax.default_matmul_precision(precision):
                trained, _ = jaxbp.fit(
                    spec, "softmax_cross_entropy", params, x, y,
                    lr=mlp.LR, epochs=n_epochs, batch_size=batch,
                )  # fmt: skip
            return jax.block_until_ready(trained)

        def scan(n_epochs=epochs, params=params, x=x, y=y, precision=precision, dtype=dtype):
            with jax.default_matmul_precision(precision):
                trained, _ = mlp.raw_epochs(
                    params, x, y, jnp.asarray(mlp.LR, dtype), jnp.zeros((n_epochs, 0)), batch=batch
                )
            return jax.block_until_ready(trained)

        label = "TF32" if dtype_name == "float32" else "bf16"
        contenders += [
            Contender(f"jaxbp.fit, {dtype_name} ({label})", fit, examples),
            Contender(f"raw lax.scan, {dtype_name} ({label})", scan, examples),
        ]
        checks[dtype_name] = (fit(1), scan(1))
    if torch_device is not None:
        for dtype_name in precisions:
            loop = gpu_torch.mlp_loop(x_np, y_np, spec, batch, batches, dtype_name, torch_device)
            steps = batches * epochs
            name = f"PyTorch eager, {dtype_name} ({'TF32' if dtype_name == 'float32' else 'bf16'})"
            contenders.append(Contender(name, functools.partial(loop, steps), batch * steps))
    timings = interleave(contenders, rounds)
    lines = [
        f"MLP {'-'.join(map(str, sizes))} (ReLU, softmax cross-entropy, plain SGD), batch {batch}, "
        f"{batches * epochs} steps per timed call; {6 * mlp.weights(sizes) / 1e9:.3g} GFLOP per "
        "example (6 x weights). float32 runs under `jax.default_matmul_precision('tensorfloat32')`"
        " (PyTorch: `allow_tf32`). MFU: achieved FLOP/s over the device's dense peak for that "
        "precision.",
        "",
        *(
            f"- {name}, jaxbp.fit against raw lax.scan after one epoch: "
            + _checked(scanned, {"jaxbp.fit": fitted}, 5e-2, 5e-2)
            for name, (fitted, scanned) in checks.items()
        ),
        "",
        "| contender | examples/s (median) | slowest-fastest round | TFLOP/s | MFU | setup |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    targets = []
    for name, t in timings.items():
        tflops = flops / t.seconds_per_unit / 1e12
        peak = peaks["tf32" if "float32" in name else "bf16"]
        mfu = f"{100 * tflops / peak:.0f}%" if peak else "n/a"
        lines.append(_row(name, t, f"{tflops:,.1f}", mfu))
        if name.startswith("jaxbp.fit"):
            met = None if not peak else tflops / peak >= 0.6
            targets.append((f"large MLP, {name}: MFU >= 60%", mfu, met))
    return Section("The large MLP: MFU", lines, targets)


# --- the MNIST-1D CNN: lax.conv against im2col --------------------------------------------------
def cnn_section(setup: dict[str, Any], rounds: int, torch_device) -> Section:
    data = jaxbp.datasets.mnist1d(num_samples=setup["samples"])
    net = jaxbp.presets.PRESETS["cnn"].network
    init = jax.tree.map(np.asarray, net.init(jax.random.key(0)))
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    per_epoch = len(data.y_train) // cnn.BATCH

    def trainer(model):
        def train(steps: int):
            epochs, rows = (
                (steps // per_epoch, len(y)) if steps >= per_epoch else (1, steps * cnn.BATCH)
            )
            trained, _ = jaxbp.fit(
                model, cnn.loss_fn, init, x[:rows], y[:rows],
                epochs=epochs, batch_size=cnn.BATCH, optimizer=cnn.ADAM,
            )[:2]  # fmt: skip
            return jax.block_until_ready(trained)

        return train

    fused = [f'jaxbp.fit, cnn preset, conv_impl="{impl}"' for impl in ("lax", "im2col")]
    train = {
        name: trainer(dataclasses.replace(net, conv_impl=impl))
        for name, impl in zip(fused, ("lax", "im2col"), strict=True)
    }
    torch_name = f"PyTorch eager on {torch_device} (the paper's loop)"
    if torch_device is not None:
        train[torch_name] = rivals.torch_trainer(
            init, data.x_train, data.y_train, cnn.LR, cnn.BATCH, device=torch_device
        )
    trained = {name: fn(cnn.CHECK_STEPS) for name, fn in train.items()}
    reference = trained.pop(fused[0])
    check = _checked(reference, trained, rtol=1e-3, atol=2e-3)
    contenders = [
        Contender(name, functools.partial(fn, steps), steps)
        for name, fn in train.items()
        for steps in [setup["epochs"] * per_epoch if name in fused else setup["loop_steps"]]
    ]
    timings = interleave(contenders, rounds)
    rates = {name: 1 / t.seconds_per_unit for name, t in timings.items()}
    faster = max(fused, key=rates.__getitem__).split('"')[1]
    backend = jax.default_backend()
    chosen = jaxbp.ops.CONV_IMPL_BY_BACKEND.get(backend, "lax")
    lines = [
        f"The MNIST-1D paper's CNN (`cnn` preset), Adam 1e-2, batch {cnn.BATCH} in data order, "
        f"float32, {len(data.y_train)} training examples; jaxbp trains {setup['epochs']} epochs "
        f"per timed call, PyTorch {setup['loop_steps']} steps. {check}",
        "",
        "| contender | steps/s (median) | slowest-fastest round | setup |",
        "|---|---:|---:|---:|",
        *(_row(name, t) for name, t in timings.items()),
        "",
        f'Faster here: `conv_impl="{faster}"`. `conv_impl="auto"` picks '
        f'`jaxbp.ops.CONV_IMPL_BY_BACKEND["{backend}"] = "{chosen}"`: '
        + (
            "it agrees."
            if faster == chosen
            else "**it disagrees: change it in jaxbp/layers/ops.py.**"
        ),
    ]
    targets: list[tuple[str, str, bool | None]] = []
    if torch_name not in rates:
        targets.append(("MNIST-1D CNN: jaxbp.fit ahead of PyTorch", "PyTorch left out", None))
    else:
        best = max(rates[name] for name in fused)
        ratio = best / rates[torch_name]
        targets.append(("MNIST-1D CNN: jaxbp.fit ahead of PyTorch", f"{ratio:.2f}x", ratio > 1))
    return Section("The MNIST-1D CNN: lax.conv against im2col", lines, targets)


# --- ensembles of 1-4-2-1 networks ---------------------------------------------------------------
def ensemble_section(setup: dict[str, Any], rounds: int, torch_device) -> Section:
    lines = [
        "Ensembles of M 1-4-2-1 networks (the worked example's), each with its own learning rate; "
        "units are model-steps. PyTorch: the same M networks as batched matrices (`torch.baddbmm`), "
        "autograd and SGD in an eager loop.",
        "",
        "| M | contender | model-steps/s (median) | slowest-fastest round | setup |",
        "|---:|---|---:|---:|---:|",
    ]
    targets, checks = [], []
    for num_models, steps, torch_steps in setup["sizes"]:
        contenders = ensemble.contenders(num_models, steps)
        try:
            ensemble.check(num_models, contenders)
            checks.append(
                f"M = {num_models}: fit_ensemble and the raw loop agree with the chain rule."
            )
        except AssertionError as error:
            checks.append(f"**M = {num_models}: {error}.**")
        if torch_device is not None:
            loop = gpu_torch.ensemble_loop(num_models, torch_device)
            got = loop(ensemble.CHECK_STEPS)
            checks.append(_checked(contenders[0].params(), {"PyTorch": got}, 1e-4, 1e-5))
            name = "PyTorch eager (batched matrices)"
            contenders.append(
                Contender(name, functools.partial(loop, torch_steps), num_models * torch_steps)
            )
        timings = interleave(contenders, rounds)
        lines += [_row(f"{num_models} | {name}", t) for name, t in timings.items()]
        torch = timings.get("PyTorch eager (batched matrices)")
        if torch is None:
            targets.append(
                (
                    f"ensemble of {num_models}: fit_ensemble ahead of PyTorch",
                    "PyTorch left out",
                    None,
                )
            )
        else:
            ratio = torch.seconds_per_unit / timings["jaxbp.fit_ensemble"].seconds_per_unit
            targets.append(
                (
                    f"ensemble of {num_models}: fit_ensemble ahead of PyTorch",
                    f"{ratio:.1f}x",
                    ratio > 1,
                )
            )
    lines += ["", *checks]
    return Section("Ensembles", lines, targets)


# --- streaming from a memmap ---------------------------------------------------------------------
def streaming_section(setup: dict[str, Any], rounds: int) -> Section:
    rows, features, hidden, batch = (
        setup["rows"],
        setup["features"],
        setup["hidden"],
        setup["batch"],
    )
    with tempfile.TemporaryDirectory(prefix="jaxbp-gpu-stream-") as folder:
        write_dataset(folder, rows, features)
        x_map = np.load(Path(folder) / "x.npy", mmap_mode="r")
        y_map = np.load(Path(folder) / "y.npy", mmap_mode="r")
        spec = jaxbp.MLP(sizes=(features, hidden, 1), activations=("tanh", "linear"))
        params = spec.init(jax.random.key(0), jnp.float32)
        on_device = (jax.device_put(np.asarray(x_map)), jax.device_put(np.asarray(y_map)))
        final: dict[str, Any] = {}

        def run(name: str, data: tuple[Any, Any], epoch: int = 1):
            trained, _ = jaxbp.fit(
                spec, "mse", params, *data, lr=0.01, epochs=1, batch_size=batch,
                key=jax.random.key(1), start_epoch=epoch,
            )  # fmt: skip
            final[name] = jax.block_until_ready(trained)

        sources = {
            "device arrays (whole-run program)": on_device,
            "memmap (streamed)": (x_map, y_map),
        }
        for name, data in sources.items():
            run(name, data, epoch=0)  # compiles
        examples = rows // batch * batch
        contenders = [
            Contender(name, functools.partial(run, name, data), examples)
            for name, data in sources.items()
        ]
        timings = interleave(contenders, rounds)
    reference, streamed = (final[name] for name in sources)
    diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
               for a, b in zip(jax.tree.leaves(reference), jax.tree.leaves(streamed), strict=True))  # fmt: skip
    lines = [
        f"`jaxbp.fit` on {rows:,} x {features} float32 rows ({rows * features * 4 / 2**20:,.0f} MiB), "
        f"MLP {features}-{hidden}-1 tanh, batch {batch}, shuffled; one epoch per timed call "
        "(epoch 1, after a compiling epoch 0). The streamed run reads chunks from a memmap in a "
        "background thread.",
        "",
        "| contender | examples/s (median) | slowest-fastest round | setup |",
        "|---|---:|---:|---:|",
        *(_row(name, t) for name, t in timings.items()),
        "",
        f"Final parameters, streamed against device arrays: largest difference {diff:.3g}"
        + (" (bit for bit equal)." if diff == 0 else "."),
    ]
    return Section("Streaming from a memmap", lines)


# --- the transformer preset, once it exists -----------------------------------------------------
def gpt_section(rounds: int) -> Section:
    presets = jaxbp.presets.PRESETS
    if "gpt" not in presets:
        return Section("The transformer preset", ["Skipped: `jaxbp.presets.PRESETS` has no `gpt`."])
    try:
        net = presets["gpt"].network
        params = net.init(jax.random.key(0))
        x = jax.random.normal(jax.random.key(1), (64 * 8, *net.input_shape))
        y = jnp.zeros(x.shape[0])

        def loss(prediction, _):
            return jnp.mean(prediction.reshape(prediction.shape[0], -1) ** 2, axis=-1)

        def run():
            trained, _ = jaxbp.fit(net, loss, params, x, y, lr=1e-3, epochs=1, batch_size=64)
            return jax.block_until_ready(trained)

        timings = interleave([Contender("jaxbp.fit, gpt preset", run, 8)], rounds)
    except Exception as error:  # the preset is newer than this script: report, do not stop
        return Section("The transformer preset", [f"`gpt` exists but was not measured: {error!r}."])
    t = timings["jaxbp.fit, gpt preset"]
    return Section(
        "The transformer preset",
        [
            "Random inputs of the preset's input shape, mean squared output as the loss, batch 64.",
            "",
            "| contender | steps/s (median) | slowest-fastest round | setup |",
            "|---|---:|---:|---:|",
            _row(t.name, t),
        ],
    )
