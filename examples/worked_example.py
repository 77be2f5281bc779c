"""The 1-4-2-1 worked example of the seed documents 000/002/004: published numbers vs jaxbp.

Runs one forward pass, the loss, the backward pass and one SGD update with jaxbp (jax.grad) and
with the manual chain rule, and prints every published number beside the computed one, marking
the ones the documents got wrong (see docs/errata.md).
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

import jaxbp  # noqa: E402
from jaxbp.worked import grading as worked  # noqa: E402

EXAMPLE = "relu-sigmoid-linear"
DOCUMENTS = ("000",)  # add "002", "004" for the other two versions


def main() -> None:
    example = worked.EXAMPLES[EXAMPLE]
    spec = worked.spec_of(example)
    params = spec.params_from(example.weights, example.biases, dtype=jnp.float64)
    x, y = jnp.asarray(example.x), jnp.asarray(example.y)

    loss, grads = jaxbp.loss_and_grad(spec, example.loss, params, x, y)
    manual_loss, manual_grads = jaxbp.manual.backprop(spec, example.loss, params, x, y)
    gap = max(
        float(jnp.max(jnp.abs(g - m)))
        for g, m in zip(jax.tree.leaves(grads), jax.tree.leaves(manual_grads), strict=True)
    )
    print(f"{example.title}")
    print(
        f"loss: jax {float(loss):.10f}  manual {manual_loss:.10f}  largest gradient gap {gap:.1e}"
    )

    names = worked.quantities(example)
    wrong = 0
    for record in example.published:
        if record.document not in DOCUMENTS:
            continue
        exact = worked.exact_value(record, names)
        mark = "WRONG" if record.erratum else "ok"
        wrong += bool(record.erratum)
        line = (
            f"{record.document} {record.step:<34} {record.symbol:<18} published {record.text:>10}"
        )
        print(f"{line}  computed {exact:>12.{record.decimals + 2}f}  {mark}")
    print(f"{wrong} published numbers are wrong; each is explained in docs/errata.md")


if __name__ == "__main__":
    main()
