"""Course mode: a worked backprop step for every student of a class, and one command to grade them.

- :mod:`~jaxbp.worked.course.roster`: the class list (``id,name``).
- :mod:`~jaxbp.worked.course.variant`: each student's own network, drawn from a seed and the
  student id on grids a hand calculation carries, with no degenerate quantity.
- :mod:`~jaxbp.worked.course.sheet`: the numbers a worksheet asks, in four parts (forward, loss,
  backward, update), the answer key, the blank CSV and the course manifest.
- :mod:`~jaxbp.worked.course.worksheet`: the worksheet in Markdown and LaTeX, and the interactive
  page with its answers covered.
- :mod:`~jaxbp.worked.course.grade`: a submission graded against its student's network, or the
  status that kept it from being graded; :mod:`~jaxbp.worked.course.report`: the gradebook and
  the feedback.
- :mod:`~jaxbp.worked.course.files`: atomic writes that never replace a file without ``force``
  nor follow a symbolic link.

``jaxbp exercise`` and ``jaxbp grade`` (:mod:`jaxbp.cli.exercise`, :mod:`jaxbp.cli.grade`) are
the commands; docs/course.md the guide.
"""
