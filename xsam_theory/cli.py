"""The ``xsam-theory`` command line.

One parser with the subcommands ``info``, ``verify`` (the claims ledger: docs/claims.md),
``figures`` (docs/figures.md), ``bench`` (docs/performance.md), ``sweep`` and ``results``
(docs/sweeps.md); each subcommand's work lives in its own module and this one only wires the
arguments. The guide with examples and exit statuses: docs/usage.md.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence

from xsam_theory._version import __version__

DESCRIPTION = """\
Evidence-backed checks of the theory of SAM and X-SAM.

The main job is `verify`: every claim of the ledger (derived lemmas, literature closed forms,
findings about the reference algorithm, and the paper's empirical claims) run as a check that
can fail, with claims.json and report.md as evidence. `figures` reproduces the analytic figures
from code, `sweep`/`results` run and tabulate hyperparameter grids, `bench` measures costs.
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``xsam-theory`` argument parser, with every subcommand.

    Returns:
        The parser; ``parse_args`` on it gives the subcommand in ``args.command``.
    """
    parser = argparse.ArgumentParser(
        prog="xsam-theory",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"xsam-theory {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("info", help="print the package version and the backends available")
    _add_verify(sub)
    _add_sweep(sub)
    _add_results(sub)
    _add_bench(sub)
    _add_figures(sub)
    return parser


def _add_verify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="run the claims ledger; write claims.json and report.md",
        description="Run every claim of the ledger (docs/claims.md) as a check. Exit "
        "status 1 if any D/L/F claim fails or errors; P verdicts never change it.",
    )
    scale = p.add_mutually_exclusive_group()
    scale.add_argument(
        "--quick",
        dest="scale",
        action="store_const",
        const="quick",
        help="the fast scale (< 60 s on 2 cores; what CI runs)",
    )
    scale.add_argument(
        "--full",
        dest="scale",
        action="store_const",
        const="full",
        help="paper-scale seeds and grids (< 30 min on 2 cores)",
    )
    p.set_defaults(scale="default")
    p.add_argument(
        "--only", type=_id_list("claim"), metavar="ID,...", help="run only these claim ids"
    )
    p.add_argument(
        "--out",
        default="verify-out",
        metavar="DIR",
        help="where claims.json and report.md go (default: verify-out)",
    )
    p.add_argument("--seed", type=_seed, default=0, help="base seed, an integer >= 0 (default 0)")
    p.add_argument(
        "--datasets",
        type=_name_list,
        metavar="NAME,...",
        help="datasets of the generalization study P-GEN: registered names "
        "(xsam_theory.data.register_dataset) or module:function loaders "
        "returning (X, y); default: the scale's datasets",
    )
    from xsam_theory.backend import add_backend_arguments

    add_backend_arguments(p)  # the claims that can run their implementation on torch do so
    p.add_argument(
        "--no-figures",
        dest="figures",
        action="store_false",
        help="do not draw the claims' figures into DIR/figures/",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _id_list(kind: str) -> Callable[[str], list[str]]:
    """The argparse type of ``--only``: comma-separated ``kind`` ids, at least one.

    An empty ``--only ''`` is an error, not "everything".
    """

    def ids(text: str) -> list[str]:
        names = [x.strip() for x in text.split(",") if x.strip()]
        if not names:
            raise argparse.ArgumentTypeError(f"needs at least one {kind} id, got {text!r}")
        return names

    return ids


def _seed(text: str) -> int:
    """The argparse type of ``--seed``: an integer >= 0 (NumPy accepts no negative seed)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def _name_list(text: str) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    import inspect

    from xsam_theory.sweeps.runner import run_sweep
    from xsam_theory.sweeps.spec import MAX_RUNS

    lease_default = inspect.signature(run_sweep).parameters["lease_s"].default
    p = sub.add_parser(
        "sweep",
        help="run a grid x seeds sweep into a results store",
        description="Expand SWEEP_FILE (TOML or JSON; see "
        "examples/sweeps/phase_quick.toml) into runs and execute those the store "
        "does not hold finished. Exit status 1 if any run failed, 2 on bad "
        "input (checked before any run starts). Ctrl-C or SIGTERM stops it "
        "with status 130: finished runs stay stored; rerun with --resume.",
    )
    p.add_argument("spec_file", metavar="SWEEP_FILE", help="sweep spec (.toml or .json)")
    p.add_argument(
        "--store", metavar="PATH", help="SQLite results store (default: <sweep name>.sqlite)"
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="local worker processes (default: the available cores)",
    )
    where.add_argument(
        "--dask-local",
        type=_positive_int,
        metavar="N",
        help="a Dask LocalCluster of N single-threaded worker processes",
    )
    where.add_argument(
        "--scheduler", metavar="ADDR", help="a running Dask scheduler, e.g. tcp://host:8786"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue this sweep in an existing store (finished runs are skipped, "
        "failed and interrupted ones rerun)",
    )
    p.add_argument(
        "--lease",
        type=_positive_seconds,
        metavar="SECONDS",
        help="how long another driver sharing the store waits before it takes over "
        "the runs claimed by a driver that stopped sending heartbeats (it stopped, "
        f"or its host was lost); default {lease_default:g}",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help=f"run a sweep of more than {MAX_RUNS:,} runs (refused without it)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_results(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "results",
        help="show or export the runs of a results store",
        description="One row per run: method, seed, the configuration values "
        "that vary, the scalar results, status.",
    )
    p.add_argument("store", metavar="STORE", help="SQLite results store")
    p.add_argument("--sweep", metavar="NAME", help="only this sweep's runs")
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keep rows where KEY (a column or its last dotted part) =, !=, <, <=, "
        ">, >= VALUE; repeat to combine (all must hold)",
    )
    p.add_argument("--csv", metavar="FILE", help="write the table as CSV instead of printing")
    p.add_argument(
        "--all-columns",
        action="store_true",
        help="every configuration column, not only those that vary",
    )


def _model_list(text: str) -> list[str]:
    from xsam_theory.bench import MODELS

    names = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown model(s) {unknown}; known: {', '.join(MODELS)}")
    return names


def _add_bench(sub: argparse._SubParsersAction) -> None:
    from xsam_theory.backend import add_backend_arguments

    p = sub.add_parser(
        "bench",
        help="measure the reference problem; print targets T1-T11",
        description="Gradient, HVP, lambda_max, exact-Hessian and per-step costs "
        "on the reference problem of docs/performance.md#perf-reference-problem, "
        "measured side by side "
        "(interleaved repeats, median [min-max]); each target T1-T11 printed as "
        "measured / target. Torch rows appear when torch is installed.",
    )
    add_backend_arguments(p)
    p.add_argument("--quick", action="store_true", help="fewer repeats and rows (< 2 minutes)")
    p.add_argument("--json", metavar="FILE", help="also write every number and the environment")
    p.add_argument(
        "--models",
        type=_model_list,
        metavar="NAME,...",
        help="students to measure (tiny, small, medium, large; default the first three)",
    )
    p.add_argument(
        "--repeats",
        type=_positive_int,
        metavar="N",
        help="interleaved repeats per measurement (default 7, --quick 3)",
    )
    p.add_argument(
        "--threads",
        type=_positive_int,
        metavar="N",
        help="limit the BLAS/OpenMP pools and torch to N threads for the run "
        "(default: as configured)",
    )


def _add_figures(sub: argparse._SubParsersAction) -> None:
    from xsam_theory.figures import FIGURES

    p = sub.add_parser(
        "figures",
        help="make the paper figures (PNG + PDF + CSV per figure)",
        description="Compute and draw the figures of docs/figures.md; each figure ID is "
        "written as OUT/ID.png, OUT/ID.pdf and OUT/ID.csv (the numbers it plots), "
        f"atomically. Ids: {', '.join(FIGURES)}.",
    )
    p.add_argument(
        "--out",
        default="paper_figures",
        metavar="DIR",
        help="output folder (default: paper_figures)",
    )
    p.add_argument(
        "--only", type=_id_list("figure"), metavar="ID,...", help="make only these figures"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="coarse grids, few steps and seeds (what CI and the tests run)",
    )
    p.add_argument("--seed", type=_seed, default=0, help="base seed, an integer >= 0 (default 0)")


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
    """Run ``xsam-theory`` with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    The statuses are the subcommand's: for ``verify`` 0 when every D, L and F claim holds, 1 if
    one fails or errors, 2 on bad input, 3 when an output cannot be written
    (docs/claims.md#C-exit-status); 2 on bad input for every command; 130 for an interrupted
    ``sweep``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "info":
        return _info()
    if args.command == "verify":
        from xsam_theory.backend import backend_from_arguments
        from xsam_theory.verify import main as verify_main

        try:
            backend, device = backend_from_arguments(args)
            return verify_main(
                args.scale,
                args.only,
                args.out,
                args.seed,
                backend,
                device,
                quiet=args.quiet,
                figures=args.figures,
                datasets=args.datasets,
            )
        except ValueError as e:  # an unavailable backend or an unknown --only id
            parser.error(str(e))
    if args.command == "sweep":
        from xsam_theory.sweeps.commands import sweep_command

        return sweep_command(
            args.spec_file,
            store=args.store,
            workers=args.workers,
            dask_local=args.dask_local,
            scheduler=args.scheduler,
            resume=args.resume,
            quiet=args.quiet,
            force=args.force,
            lease_s=args.lease,
        )
    if args.command == "results":
        from xsam_theory.sweeps.commands import results_command

        return results_command(
            args.store,
            sweep=args.sweep,
            where=args.where,
            csv=args.csv,
            columns="all" if args.all_columns else "varying",
        )
    if args.command == "bench":
        from xsam_theory.backend import apply_backend_arguments
        from xsam_theory.bench import main as bench_main

        try:
            active = apply_backend_arguments(args)
        except ValueError as e:
            parser.error(str(e))
        with active as (backend, device):
            return bench_main(
                backend,
                device,
                quick=args.quick,
                json_path=args.json,
                models=args.models,
                repeats=args.repeats,
                threads=args.threads,
            )
    if args.command == "figures":
        from xsam_theory.figures import figure_ids
        from xsam_theory.figures import main as figures_main

        try:
            figure_ids(args.only)
        except ValueError as e:
            parser.error(str(e))
        return figures_main(args.out, args.only, args.quick, args.seed)
    parser.print_help()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
