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
    _add_verify(sub)
    return parser


def _add_verify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="run the claims ledger; write claims.json and report.md",
                       description="Run every claim of the ledger (SPEC §5) as a check. Exit "
                       "status 1 if any D/L/F claim fails or errors; P verdicts never change it.")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--quick", dest="scale", action="store_const", const="quick",
                       help="the fast scale (< 60 s on 2 cores; what CI runs)")
    scale.add_argument("--full", dest="scale", action="store_const", const="full",
                       help="paper-scale seeds and grids (< 30 min on 2 cores)")
    p.set_defaults(scale="default")
    p.add_argument("--only", type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                   metavar="ID,...", help="run only these claim ids")
    p.add_argument("--out", default="verify-out", metavar="DIR",
                   help="where claims.json and report.md go (default: verify-out)")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument("--backend", choices=("numpy",), default="numpy",
                   help="array backend (default numpy)")
    p.add_argument("--device", default=None, help="device for the backend (cpu, cuda)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


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
    if args.command == "verify":
        from xsam_theory.claims.verify import main as verify_main

        try:
            return verify_main(args.scale, args.only, args.out, args.seed, args.backend,
                               args.device, quiet=args.quiet)
        except ValueError as e:
            parser.error(str(e))
    parser.print_help()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
