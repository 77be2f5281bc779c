"""``python -m jaxbp`` runs the command line; without a command it prints the usage and the
commands on stderr and exits 2, as for any other usage error."""

import sys

from jaxbp.cli import build_parser, main

if len(sys.argv) < 2:
    build_parser().print_help(sys.stderr)
    sys.exit(2)
sys.exit(main())
