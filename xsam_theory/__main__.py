"""Run the ``xsam-theory`` command line: ``python -m xsam_theory ARGS``.

Importing this module (as the API reference's autodoc does) runs nothing; only executing it
does.
"""

import sys

from xsam_theory.cli import main

if __name__ == "__main__":
    sys.exit(main())
