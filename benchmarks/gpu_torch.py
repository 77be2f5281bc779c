"""PyTorch contenders of ``benchmarks/gpu.py`` on the accelerator JAX uses: the large MLP and the
ensemble of 1-4-2-1 networks, written the way PyTorch users write them (eager, autograd, SGD
in place), and which device PyTorch can use. PyTorch is imported only inside the functions: it
is an optional extra (``bench``).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

import jaxbp
from benchmarks import ensemble, mlp
from benchmarks.tiny_network_steps import SPEC as TINY_SPEC
from benchmarks.tiny_network_steps import example_numpy


def mlp_loop(
    x_np: Any, y_np: Any, spec: Any, batch: int, batches: int, dtype_name: str, device: str
):
    """``loop(steps)``: SGD on ``spec``'s ReLU MLP in PyTorch eager, ``dtype_name`` float32 (with
    TF32 matrix products) or bfloat16, batches in data order, from ``spec.init``'s weights."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = True
    dtype = getattr(torch, dtype_name)
    x = torch.tensor(x_np, device=device, dtype=dtype)
    y = torch.tensor(y_np, device=device, dtype=dtype)
    init = jax.tree.map(lambda a: np.asarray(a, np.float32), spec.init(jax.random.key(0)))
    start = [
        {k: torch.tensor(v, device=device, dtype=dtype) for k, v in layer.items()} for layer in init
    ]

    def loop(steps: int):
        p = [{k: v.clone().requires_grad_(True) for k, v in layer.items()} for layer in start]
        for step in range(steps):
            i = (step % batches) * batch
            a = x[i : i + batch]
            for layer in p[:-1]:
                a = torch.relu(a @ layer["w"] + layer["b"])
            logits = a @ p[-1]["w"] + p[-1]["b"]
            loss = -(y[i : i + batch] * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean()
            loss.backward()
            with torch.no_grad():
                for layer in p:
                    for v in layer.values():
                        v -= mlp.LR * v.grad
                        v.grad = None
        synchronize(device)
        return p

    return loop


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def ensemble_loop(num_models: int, device: str):
    """``train(steps)``: SGD on M stacked 1-4-2-1 networks (relu, sigmoid, linear; half squared
    error), each with its learning rate, from ``jaxbp.init_ensemble``'s weights."""
    import torch

    _, x_np, y_np = example_numpy()
    stacked = jaxbp.init_ensemble(TINY_SPEC, jax.random.key(0), num_models)
    start = [
        {k: torch.tensor(np.asarray(v), device=device) for k, v in layer.items()}
        for layer in stacked
    ]
    x = torch.tensor(x_np, device=device).expand(num_models, *x_np.shape)  # (M, batch, in)
    y = torch.tensor(y_np, device=device)
    lrs = torch.tensor(ensemble.learning_rates(num_models), device=device)
    activations = (torch.relu, torch.sigmoid, lambda v: v)

    def train(steps: int):
        p = [{k: v.clone().requires_grad_(True) for k, v in layer.items()} for layer in start]
        for _ in range(steps):
            a = x
            for layer, f in zip(p, activations, strict=True):
                a = f(torch.baddbmm(layer["b"][:, None, :], a, layer["w"]))
            loss = (0.5 * ((a - y) ** 2).sum(-1)).mean(-1)  # (M,): one loss per model
            loss.sum().backward()  # the models share nothing: each gets its own gradient
            with torch.no_grad():
                for layer in p:
                    layer["w"] -= lrs[:, None, None] * layer["w"].grad
                    layer["b"] -= lrs[:, None] * layer["b"].grad
                    layer["w"].grad = layer["b"].grad = None
        synchronize(device)
        return [{k: v.detach().cpu().numpy() for k, v in layer.items()} for layer in p]

    return train


def device_for(backend: str) -> tuple[str | None, str]:
    """The PyTorch device on JAX's accelerator, or ``None`` and why PyTorch is left out."""
    try:
        import torch
    except ImportError:
        return (
            None,
            "PyTorch is not installed (`pip install -e .[bench]`): its contenders are left out.",
        )
    if backend == "cpu":
        return "cpu", f"PyTorch {torch.__version__} on the CPU."
    if backend == "gpu" and torch.cuda.is_available():
        return "cuda", f"PyTorch {torch.__version__} on {torch.cuda.get_device_name(0)}."
    return (
        None,
        f"PyTorch {torch.__version__} does not see this {backend}: its contenders are left out.",
    )
