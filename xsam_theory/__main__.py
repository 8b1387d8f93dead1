import sys

from xsam_theory.cli import main

sys.exit(main())
