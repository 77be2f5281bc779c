"""Test configuration: float64 on before any array exists, a reproducible hypothesis profile."""

import jax

jax.config.update("jax_enable_x64", True)
# float32 matrix products at full precision on every backend (GPUs default to TF32), so that the
# float32 tolerances of the tests mean the same on a GPU as on the CPU.
jax.config.update("jax_default_matmul_precision", "highest")

import hypothesis  # noqa: E402
import pytest  # noqa: E402

hypothesis.settings.register_profile(
    "jaxbp", derandomize=True, deadline=None, database=None, max_examples=30
)
hypothesis.settings.load_profile("jaxbp")


@pytest.fixture
def key() -> jax.Array:
    return jax.random.key(0)
