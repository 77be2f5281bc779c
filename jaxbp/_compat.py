"""Small differences between the JAX versions jaxbp supports (0.6.2 for Python 3.10, and newer)."""

from __future__ import annotations

import contextlib
from typing import Any

import jax


def enable_x64() -> contextlib.AbstractContextManager[Any]:
    """A context manager with 64-bit JAX on inside its block, whatever the global setting."""
    if hasattr(jax, "enable_x64"):  # JAX >= 0.8
        return jax.enable_x64(True)
    from jax.experimental import enable_x64 as experimental_enable_x64  # type: ignore[attr-defined]

    return experimental_enable_x64()
