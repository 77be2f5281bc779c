"""The seed documents' worked examples: three networks, their published numbers, and the errata.

``EXAMPLES[name]`` is a :class:`WorkedExample` and ``DOCUMENTS[number]`` a :class:`Document`;
:func:`quantities` computes, with the manual chain rule, every named quantity a published number can
refer to (see :mod:`jaxbp.worked.grading._records`), :func:`exact_value` the exact value one published
number claims, and :func:`errata_markdown` writes the errata table of ``docs/errata.md`` from the
records.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxbp import manual
from jaxbp.model.mlp import MLP
from jaxbp.worked.grading._records import DOCUMENTS, Document, Published, WorkedExample
from jaxbp.worked.grading.expression import parse
from jaxbp.worked.grading.numbers import published_numbers

__all__ = (
    "DOCUMENTS",
    "EXAMPLES",
    "Document",
    "Published",
    "WorkedExample",
    "errata_markdown",
    "exact_value",
    "quantities",
    "spec_of",
)


RELU_SIGMOID_LINEAR = WorkedExample(
    name="relu-sigmoid-linear",
    title="1-4-2-1 network, ReLU / sigmoid / linear with biases, half squared error, lr 0.25",
    documents=("000", "002", "004"),
    sizes=(1, 4, 2, 1),
    activations=("relu", "sigmoid", "linear"),
    bias=True,
    weights=(
        ((0.25, 0.5, 0.75, 1.0),),
        ((1.0, 0.0), (0.75, 0.25), (0.5, 0.5), (0.25, 0.75)),
        ((1.0,), (0.5,)),
    ),
    biases=((1.0, 1.0, 1.0, 1.0), (1.0, 1.0), (1.0,)),
    x=((2.0,),),
    y=((3.0,),),
    loss="half_se",
    learning_rate=0.25,
    published=published_numbers("000") + published_numbers("002") + published_numbers("004"),
)

RELU_2_2_1 = WorkedExample(
    name="relu-2-2-1",
    title="2-2-1 network, ReLU hidden layer, linear output, no biases, half squared error, lr 0.05",
    documents=("001",),
    sizes=(2, 2, 1),
    activations=("relu", "linear"),
    bias=False,
    weights=(((0.12, 0.15), (0.33, 0.09)), ((0.11,), (0.12,))),
    biases=None,
    x=((2.0, 3.0),),
    y=((1.0,),),
    loss="half_se",
    learning_rate=0.05,
    published=published_numbers("001"),
)

SIGMOID_SOFTMAX = WorkedExample(
    name="sigmoid-softmax",
    title="2-2-2 network, sigmoid hidden layer, softmax output, cross-entropy, lr 0.02",
    documents=("003",),
    sizes=(2, 2, 2),
    activations=("sigmoid", "softmax"),
    bias=True,
    weights=(((0.7, 0.6), (0.5, 0.4)), ((0.4, 0.6), (0.9, 0.8))),
    biases=((0.5, 0.6), (0.7, 0.9)),
    x=((0.1, 0.2),),
    y=((1.0, 0.0),),
    loss="cross_entropy",
    learning_rate=0.02,
    published=published_numbers("003"),
)

EXAMPLES: dict[str, WorkedExample] = {
    example.name: example for example in (RELU_SIGMOID_LINEAR, RELU_2_2_1, SIGMOID_SOFTMAX)
}


def spec_of(example: WorkedExample) -> MLP:
    """The ``jaxbp.MLP`` of a worked example."""
    return MLP(sizes=example.sizes, activations=example.activations, bias=example.bias)


def quantities(example: WorkedExample) -> dict[str, Any]:
    """Every named quantity of the example, computed by the manual chain rule in float64.

    Returns:
        A dict from the names of :mod:`jaxbp.worked.grading._records` (``z1``, ``dL_da2``, ``W1_new``, ...)
        to NumPy arrays and floats, ready for evaluating ``Published.expression``.
    """
    spec = spec_of(example)
    params = [
        {"w": np.asarray(w, np.float64)} | ({} if b is None else {"b": np.asarray(b, np.float64)})
        for w, b in zip(
            example.weights, example.biases or [None] * len(example.weights), strict=True
        )
    ]
    record = manual.backward(spec, example.loss, params, example.x, example.y)
    new_params = manual.sgd(params, record.grads, example.learning_rate)
    after = manual.forward(spec, new_params, example.x)
    names: dict[str, Any] = {"x": np.asarray(example.x, np.float64)}
    names["y"] = np.asarray(example.y, np.float64)
    names["a0"] = names["x"]
    names["loss"] = record.loss
    names["loss_new"] = manual.loss_value(example.loss, after.activations[-1], names["y"])
    for index in range(spec.num_layers):
        layer = index + 1
        names[f"W{layer}"] = params[index]["w"]
        names[f"W{layer}_new"] = new_params[index]["w"]
        names[f"dW{layer}"] = record.grads[index]["w"]
        if "b" in params[index]:
            names[f"b{layer}"] = params[index]["b"]
            names[f"b{layer}_new"] = new_params[index]["b"]
            names[f"db{layer}"] = record.grads[index]["b"]
        names[f"xw{layer}"] = record.forward.products[index]
        names[f"z{layer}"] = record.forward.pre_activations[index]
        names[f"a{layer}"] = record.forward.activations[index]
        names[f"dL_da{layer}"] = record.dloss_dactivations[index]
        names[f"da_dz{layer}"] = record.activation_derivatives[index]
        names[f"delta{layer}"] = record.deltas[index]
        names[f"xw{layer}_new"] = after.products[index]
        names[f"z{layer}_new"] = after.pre_activations[index]
        names[f"a{layer}_new"] = after.activations[index]
    return names


def exact_value(published: Published, names: dict[str, Any]) -> float:
    """The exact value of the quantity a published number claims to be (parsed safely, never
    evaluated by Python: see :mod:`jaxbp.worked.grading.expression`)."""
    return parse(published.expression).evaluate(names)


def errata_markdown() -> str:
    """The errata tables (one per document) as Markdown, from the records."""
    lines: list[str] = []
    for example in EXAMPLES.values():
        for document in example.documents:
            wrong = [p for p in example.published if p.document == document and p.erratum]
            total = sum(p.document == document for p in example.published)
            lines += [
                f"## Document {document}: {example.name}",
                "",
                f"*{DOCUMENTS[document].title}*: {DOCUMENTS[document].source}.",
                "",
                f"{example.title}. {total} published numbers checked, {len(wrong)} wrong.",
                "",
                "| step | symbol | published | correct | what went wrong |",
                "| --- | --- | --- | --- | --- |",
            ]
            lines += [
                f"| {p.step} | `{p.symbol}` | {p.text} | {p.correct} | {_cell(p.erratum or '')} |"
                for p in wrong
            ]
            lines.append("")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
