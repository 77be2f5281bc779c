"""The seed documents' worked examples: every published number against the manual chain rule and jaxbp.

A published number is confirmed when it is within one unit of its last printed digit of the exact
value; otherwise it must carry an erratum, differ by more than that, and state the correct value.
The manual chain rule and JAX's autodiff must agree on every quantity first.
"""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from jaxbp.worked import grading as worked
from jaxbp.worked.autodiff import layer_quantities
from tests.helpers import assert_close

EXAMPLES = list(worked.EXAMPLES.values())
RECORDS = [(example, record) for example in EXAMPLES for record in example.published]
ROOT = Path(__file__).resolve().parents[2]


def _params(example: worked.WorkedExample) -> list:
    spec = worked.spec_of(example)
    return spec.params_from(example.weights, example.biases, dtype=jnp.float64)


@pytest.fixture(scope="module")
def manual_names() -> dict[str, dict]:
    return {example.name: worked.quantities(example) for example in EXAMPLES}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_jaxbp_computes_every_quantity_the_manual_chain_rule_does(example, manual_names) -> None:
    names = manual_names[example.name]
    spec, params = worked.spec_of(example), _params(example)
    loss, layers = layer_quantities(spec, example.loss, params, example.x, example.y)
    assert_close(loss, names["loss"])
    for index, layer in enumerate(layers, start=1):
        assert_close(layer.products, names[f"xw{index}"])
        assert_close(layer.pre_activations, names[f"z{index}"])
        assert_close(layer.activations, names[f"a{index}"])
        assert_close(layer.dloss_dactivations, names[f"dL_da{index}"])
        assert_close(layer.activation_derivatives, names[f"da_dz{index}"])
        assert_close(layer.deltas, names[f"delta{index}"])
    # one jitted SGD step and the second forward pass
    new_params, step_loss = jaxbp.train_step(
        spec,
        example.loss,
        params,
        jnp.asarray(example.x),
        jnp.asarray(example.y),
        example.learning_rate,
    )
    assert_close(step_loss, names["loss"])
    for index, layer in enumerate(new_params, start=1):
        assert_close(layer["w"], names[f"W{index}_new"])
        if "b" in layer:
            assert_close(layer["b"], names[f"b{index}_new"])
    assert_close(spec.apply(new_params, jnp.asarray(example.x)), names[f"a{spec.num_layers}_new"])


@pytest.mark.parametrize(
    ("example", "record"),
    RECORDS,
    ids=[f"{r.document}-{i:03d}-{r.symbol}" for i, (_, r) in enumerate(RECORDS)],
)
def test_published_number(example, record, manual_names) -> None:
    exact = worked.exact_value(record, manual_names[example.name])
    error = abs(exact - record.value)
    if record.erratum is None:
        assert error <= record.tolerance, (
            f"document {record.document}, {record.step}, {record.symbol} = {record.text}: "
            f"exact value {exact:.10g} differs by {error:.3g}"
        )
    else:
        assert error > record.tolerance, f"{record} is listed as an erratum but is right"
        assert record.correct is not None
        assert abs(exact - float(record.correct)) <= 0.5 * record.tolerance + 1e-12


def test_every_document_is_covered() -> None:
    documents = {record.document for _, record in RECORDS}
    assert documents == {"000", "001", "002", "003", "004"}


def test_errata_file_lists_every_erratum() -> None:
    text = (ROOT / "docs" / "errata.md").read_text()
    assert worked.errata_markdown() in text


def test_worked_network_loss_falls_below_1e_minus_10_in_20_steps() -> None:
    example = worked.EXAMPLES["relu-sigmoid-linear"]
    spec = worked.spec_of(example)
    x, y = jnp.asarray(example.x), jnp.asarray(example.y)
    plain = jitted = _params(example)
    losses = []
    for _ in range(20):
        value, grads = jaxbp.loss_and_grad(spec, "half_se", plain, x, y)
        plain = jaxbp.sgd(plain, grads, example.learning_rate)
        jitted, _ = jaxbp.train_step(spec, "half_se", jitted, x, y, example.learning_rate)
        losses.append(float(value))
    final = float(jaxbp.LOSSES["half_se"](spec.apply(plain, x), y))
    assert final < 1e-10
    assert losses[0] == pytest.approx(0.12793, abs=1e-5)  # the documents' 0.128
    assert_close(jitted, plain)
    # manual chain rule, same 20 steps
    manual_params = _params(example)
    for _ in range(20):
        _, grads = jaxbp.manual.backprop(spec, "half_se", manual_params, x, y)
        manual_params = jaxbp.manual.sgd(manual_params, grads, example.learning_rate)
    assert_close(plain, manual_params)
    assert np.all(np.diff(losses) < 0)


def test_errata_counts_are_those_of_the_records() -> None:
    # 117 of the 265 numbers of documents 000, 002 and 004 are wrong; 2 of 19 in 001; 27 of 34 in 003
    counts = {
        name: (sum(r.erratum is not None for r in e.published), len(e.published))
        for name, e in worked.EXAMPLES.items()
    }
    assert counts == {
        "relu-sigmoid-linear": (117, 265),
        "relu-2-2-1": (2, 19),
        "sigmoid-softmax": (27, 34),
    }


def test_every_document_is_identified_where_its_errata_are() -> None:
    text = (ROOT / "docs" / "errata.md").read_text()
    on_disk = sorted(
        path.name[:3] for path in (ROOT.parent.parent / "shared" / "seeds").glob("*.txt")
    )
    assert list(worked.DOCUMENTS) == ["000", "001", "002", "003", "004"]
    assert not on_disk or on_disk == list(worked.DOCUMENTS)
    for document in worked.DOCUMENTS.values():
        assert f"| {document.number} | {document.title} | {document.source} |" in text
        assert f"*{document.title}*: {document.source}." in worked.errata_markdown()
