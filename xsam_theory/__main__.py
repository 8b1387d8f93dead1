"""Run the ``xsam-theory`` command line: ``python -m xsam_theory ARGS``."""

import sys

from xsam_theory.cli import main

sys.exit(main())
