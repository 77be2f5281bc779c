"""Records of the seed documents' worked examples: the networks and every number they publish.

A :class:`WorkedExample` holds one network exactly as a document writes it (initial weights and
biases, the single training example, the loss and the learning rate). A :class:`Published` record
holds one number printed in a document, the step it belongs to, the document's own symbol for it,
and an ``expression`` that says, in jaxbp's names, which computed quantity it claims to be.

Names an ``expression`` may use (layers are numbered ``l = 1..L`` as the documents do):

============================  ==============================================================
``x``, ``y``                  the example, shapes ``(batch, sizes[0])`` and ``(batch, sizes[-1])``
``a0``                        the same as ``x``
``W1``.. ``WL``, ``b1``..     initial parameters, ``Wl`` of shape ``(fan_in, fan_out)``
``xw1``.. ``xwL``             ``a_{l-1} @ W_l`` before the bias is added
``z1``.. ``zL``               pre-activations ``z_l = a_{l-1} @ W_l + b_l``
``a1``.. ``aL``               activations ``a_l = f_l(z_l)``
``loss``                      the loss (mean over the batch)
``dL_da1``.. ``dL_daL``       ``dLoss/da_l``, shape ``(batch, n_l)``
``da_dz1``.. ``da_dzL``       activation derivative: ``(batch, n_l)`` for element-wise
                              activations, the full Jacobian ``(batch, n_l, n_l)`` for softmax
``delta1``.. ``deltaL``       ``dLoss/dz_l``
``dW1``.., ``db1``..          gradients of the loss
``W1_new``.., ``b1_new``..    parameters after one SGD step with the example's learning rate
``z1_new``.., ``a1_new``..,   the forward pass repeated with the updated parameters
``loss_new``
============================  ==============================================================
"""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Published:
    """One number printed in a seed document.

    Attributes:
        document: the document's number, e.g. ``"000"``.
        step: where the number stands in the document, e.g. ``"forward, hidden layer 1"``.
        symbol: the document's own notation for it, e.g. ``"j1_in"``.
        expression: the quantity it claims to be, in the names listed in this module's docstring,
            e.g. ``"z1[0, 0]"``.
        text: the number as printed (decimal point normalised to ``.``); its number of decimals
            is the published precision.
        erratum: ``None`` when the number is right to its last printed digit; otherwise which step
            of the document went wrong and how.
        correct: for an erratum, the right value printed to the same precision.
        row: the line of the numbers file the record was read from (0 when not from a file).
    """

    document: str
    step: str
    symbol: str
    expression: str
    text: str
    erratum: str | None = None
    correct: str | None = None
    row: int = 0

    @property
    def value(self) -> float:
        """The printed number as a float."""
        return float(self.text)

    @property
    def decimals(self) -> int:
        """Number of printed decimals of the mantissa (``1.25e-3`` has 2)."""
        mantissa = self.text.lower().split("e")[0]
        return len(mantissa.split(".")[1]) if "." in mantissa else 0

    @property
    def exponent(self) -> int:
        """The power of ten written after ``e`` (0 when the number has none)."""
        parts = self.text.lower().split("e")
        return int(parts[1]) if len(parts) == 2 else 0

    @property
    def tolerance(self) -> float:
        """One unit in the last printed digit (``0.128``: 0.001; ``1.25e-3``: 1e-5).

        A document that rounds an intermediate value and carries the rounded value on can be off by
        one unit in its last digit while every step is right; anything beyond that is an erratum.
        """
        return 10.0 ** min(self.exponent - self.decimals, 308)  # "0e999" is 0, not an overflow

    def written_like(self, value: float, extra_digits: int = 0) -> str:
        """``value`` written as this record's number is, with ``extra_digits`` more decimals."""
        digits = self.decimals + extra_digits
        if "e" in self.text.lower():
            text = f"{value:.{digits}e}" if math.isfinite(value) else str(value)
        else:
            text = f"{value:.{digits}f}"
        return text[1:] if text.startswith("-") and float(text) == 0 else text


@dataclasses.dataclass(frozen=True)
class WorkedExample:
    """A network and one training example exactly as a seed document writes them.

    Attributes:
        name: the built-in name, e.g. ``"relu-sigmoid-linear"``.
        title: one line describing the network.
        documents: the seed documents that work this network by hand.
        sizes, activations, bias: the ``jaxbp.MLP`` architecture.
        weights: one nested tuple per layer, shape ``(fan_in, fan_out)``.
        biases: one tuple per layer (``None`` for a layer without bias), or ``None``.
        x, y: the training example, shapes ``(1, sizes[0])`` and ``(1, sizes[-1])``.
        loss: a name in ``jaxbp.LOSSES``.
        learning_rate: the SGD step size the documents use.
        published: every number the documents print, in document order.
    """

    name: str
    title: str
    documents: tuple[str, ...]
    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    bias: bool
    weights: tuple[tuple[tuple[float, ...], ...], ...]
    biases: tuple[tuple[float, ...] | None, ...] | None
    x: tuple[tuple[float, ...], ...]
    y: tuple[tuple[float, ...], ...]
    loss: str
    learning_rate: float
    published: tuple[Published, ...] = ()


@dataclasses.dataclass(frozen=True)
class Document:
    """One seed document: a hand-worked backpropagation example that jaxbp reproduces.

    Attributes:
        number: ``"000"`` .. ``"004"``.
        title: the document's own title.
        source: where it comes from, as far as the document itself says (author, venue, date).
    """

    number: str
    title: str
    source: str


#: The seed documents, by number: their own titles, and where they come from as far as the text of
#: each says (000 and 001 name no author).
DOCUMENTS: dict[str, Document] = {
    document.number: document
    for document in (
        Document(
            "000",
            "Back Propagation Neural Network",
            "an English tutorial in Markdown, no author named; the network and the derivation of "
            "document 002",
        ),
        Document(
            "001",
            "Back-Propagation",
            "a blog post with its figures on imgur.com, no author named",
        ),
        Document(
            "002",
            "Pengenalan Deep Learning Part 3 : BackPropagation Algorithm",
            "Samuel Sena, Medium, 3 November 2017, in Indonesian",
        ),
        Document(
            "003",
            "Backward propagation of Neural Network explained",
            "a blog post dated 8 November 2018, its figures in the GitHub repository niuguy/blog",
        ),
        Document(
            "004",
            "Deep Learning: Backpropagation Example",
            "lecture slides by Dr. Nicholas Cummins, dated Tuesday 28th January",
        ),
    )
}
