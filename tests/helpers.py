"""Shared test helpers: one tolerance per dtype, never tuned per test; the train command in-process."""

from __future__ import annotations

from typing import Any

import chex
import jax.numpy as jnp
import numpy as np

TOLERANCES = {
    jnp.dtype("float64"): {"rtol": 1e-10, "atol": 1e-12},
    jnp.dtype("float32"): {"rtol": 1e-5, "atol": 1e-6},
}


def assert_close(actual: Any, expected: Any, dtype: Any = jnp.float64) -> None:
    """Trees equal in structure, every leaf within the tolerance of ``dtype``."""
    actual = jax_to_numpy(actual)
    expected = jax_to_numpy(expected)
    chex.assert_trees_all_close(actual, expected, **TOLERANCES[jnp.dtype(dtype)])


def jax_to_numpy(tree: Any) -> Any:
    import jax

    return jax.tree.map(lambda leaf: np.asarray(leaf, np.float64), tree)


#: The smallest ``jaxbp train`` run the command-line tests use.
TINY = ["--hidden", "8", "--batch-size", "64", "--quiet"]


def train(capsys: Any, *args: Any) -> tuple[int, str, str]:
    """Run ``jaxbp train ARGS`` in this process: ``(exit code, stdout, stderr)``."""
    from jaxbp import cli

    code = cli.main(["train", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err
