"""Worked examples: one SGD step traced number by number, verified and shown.

- :mod:`~jaxbp.worked.trace` (an MLP) and :mod:`~jaxbp.worked.conv_trace` (a layer network, with
  :mod:`~jaxbp.worked.conv_steps`): every quantity of one step by the manual chain rule
  (:mod:`jaxbp.manual`), each checked against ``jax.grad`` (:mod:`~jaxbp.worked.verify`,
  :mod:`~jaxbp.worked.conv_verify`, :mod:`~jaxbp.worked.checks`).
- :mod:`~jaxbp.worked.network_file`, :mod:`~jaxbp.worked.conv_file`: a network of one's own as
  JSON, read with every field checked.
- :mod:`~jaxbp.worked.grading`: the seed documents' networks and published numbers as data, the
  safe expression language numbers are named in, and the diagnosis of a wrong number.
- :mod:`~jaxbp.worked.course`: course mode, a network of their own for every student of a class,
  worksheets, answer keys, and the grading of the whole class.
- :mod:`~jaxbp.worked.diagnostics`: dead units, saturation and vanishing gradients of a trace.
- :mod:`~jaxbp.worked.render`: the trace as terminal text, Markdown, LaTeX and an interactive HTML
  page.
- :mod:`~jaxbp.worked.plain`: a trace as JSON-ready data (a number that is not finite as a string).
- :mod:`~jaxbp.worked.shown`: a user's text (a network's name, a symbol, a student's name) made
  safe to print to a terminal or write into a document.
"""
