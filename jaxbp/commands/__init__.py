"""Subcommands of the ``jaxbp`` command line; each module has ``add_parser`` and ``run``."""
