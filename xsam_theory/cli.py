"""The ``xsam-theory`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from xsam_theory._version import __version__

DESCRIPTION = """\
Evidence-backed checks of the theory of SAM and X-SAM.

The numerical core (problems with exact derivatives, spectral tools, the SAM family, the
trajectory runner) is available from Python today. The commands `verify` (the claims ledger),
`figures` and `bench` arrive with later releases; see README.md for what is there now.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xsam-theory", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"xsam-theory {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("info", help="print the package version and the backends available")
    return parser


def _info() -> int:
    import numpy
    import scipy

    print(f"xsam-theory {__version__}")
    print(f"numpy {numpy.__version__}, scipy {scipy.__version__}")
    try:
        import torch
    except ImportError:
        print("torch: not installed (the torch backend needs `pip install torch==2.13.0`)")
    else:
        print(f"torch {torch.__version__} (cuda available: {torch.cuda.is_available()})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "info":
        return _info()
    parser.print_help()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
