"""Whole training runs: ``fit``, ``fit_ensemble``, and what a long run needs around them.

``fit`` runs one of two paths, and both give the same parameters bit for bit (see README.md in
this folder):

- the **whole-run program** (:mod:`~jaxbp.training.fit`): every epoch in one compiled
  ``lax.scan`` over :mod:`~jaxbp.training.program`'s step, the data on the device;
- the **streamed chunks** (:mod:`~jaxbp.training.chunked`): the same step compiled over a chunk
  of batches, the data read on the host (:mod:`~jaxbp.training.prefetch`,
  :mod:`~jaxbp.training.chunk_loop`), with callbacks (:mod:`~jaxbp.training.callbacks`) between
  chunks.

In front of both, one validation path: :func:`~jaxbp.training.run.describe_run` turns ``fit``'s
arguments into a frozen :class:`~jaxbp.training.run.Run` (the data: :mod:`~jaxbp.training.inputs`,
the validation data: :mod:`~jaxbp.training.validation_data`; the rules, each in one function:
:mod:`~jaxbp.training.run_checks`), which both paths take.

Around them: the divergence guard, a wrapper around the update (:mod:`~jaxbp.training.guard`),
the epoch loop (:mod:`~jaxbp.training.epochs`), data
parallelism (:mod:`~jaxbp.training.sharding`), checkpoints (:mod:`~jaxbp.training.checkpoint`,
its file format, and the callback that writes them), atomic files (:mod:`~jaxbp.training.files`),
what a diverged run reports (:mod:`~jaxbp.training.divergence`) and the checks of every run's
result when it ends (:mod:`~jaxbp.training.end_checks`).
"""
