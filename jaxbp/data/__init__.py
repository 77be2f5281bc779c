"""Data off the device: arrays, memory maps and files, read in the order training asks for.

- :mod:`~jaxbp.data.sources`: :class:`~jaxbp.data.sources.Rows` (a lazy view of some rows of an
  array, memmap or ``.npy`` file, transformed as read), the sources ``fit`` streams chunks of
  batches from (arrays and iterables), and :class:`~jaxbp.data.sources.BatchError`.
- :mod:`~jaxbp.data.order`: every epoch's row order, one function for the device and the host.
- :mod:`~jaxbp.data.files`: ``jaxbp train``'s data: the bundled digits, MNIST-1D, CSV and
  ``.npz`` files, validated, split, scaled and encoded.
- :mod:`~jaxbp.data.npy`: a ``.npy`` file streamed from a memory map for ``jaxbp train``.
- :mod:`~jaxbp.data.datasets`: data sets that need no download (``jaxbp.datasets``).
"""
