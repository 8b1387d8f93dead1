"""Sweeps that scale out (docs/sweeps.md).

A grid × seeds runner, an embedded SQLite results store, a local process pool by default and
Dask distributed for clusters.

The whole API in one example::

    from xsam_theory.sweeps import SweepSpec, run_sweep

    spec = SweepSpec(
        name="lmax",
        problem={"name": "factorization", "n": 4},
        optimizers=[{"preset": "sam", "lr": 0.05, "grid": {"rho": [0.05, 0.1]}},
                    {"preset": "xsam_paper", "lr": 0.05, "eigvec_source": "exact",
                     "grid": {"rho": [0.05, 0.1], "alpha": [0.5, 1.0]}}],
        seeds=range(5), steps=300,
        monitors=[{"type": "spectral", "every": 100, "method": "exact"}],
    )
    result = run_sweep(spec, "lmax.sqlite", workers=2, resume=True)
    rows = result.table()          # list of flat dicts; result.dataframe() with pandas

Importing this package does not import Dask; only :class:`DaskExecutor` does, when used.
What survives a kill, a lost worker or a full disk: docs/reliability.md.
"""

from xsam_theory.sweeps.executors import (
    DaskExecutor,
    Executor,
    LocalExecutor,
    SchedulerUnreachableError,
    WorkerImportError,
    available_cores,
    make_executor,
)
from xsam_theory.sweeps.registry import (
    BUILTIN_RESULTS,
    PROBLEMS,
    build_problem,
    initial_point,
    register_problem,
)
from xsam_theory.sweeps.runner import SweepResult, load_records, run_sweep
from xsam_theory.sweeps.spec import MAX_RUNS, RunConfig, SweepSpec, load_spec, run_hash
from xsam_theory.sweeps.store import (
    DEFAULT_LEASE_S,
    RunRecord,
    StoreError,
    StoreFullError,
    SweepExistsError,
    SweepStore,
)
from xsam_theory.sweeps.table import filter_rows, parse_where, tidy, to_dataframe, write_csv
from xsam_theory.sweeps.worker import decode_trajectory, encode_trajectory, execute_run

__all__ = [
    "BUILTIN_RESULTS",
    "DEFAULT_LEASE_S",
    "MAX_RUNS",
    "PROBLEMS",
    "DaskExecutor",
    "Executor",
    "LocalExecutor",
    "RunConfig",
    "RunRecord",
    "SchedulerUnreachableError",
    "StoreError",
    "StoreFullError",
    "SweepExistsError",
    "SweepResult",
    "SweepSpec",
    "SweepStore",
    "WorkerImportError",
    "available_cores",
    "build_problem",
    "decode_trajectory",
    "encode_trajectory",
    "execute_run",
    "filter_rows",
    "initial_point",
    "load_records",
    "load_spec",
    "make_executor",
    "parse_where",
    "register_problem",
    "run_hash",
    "run_sweep",
    "tidy",
    "to_dataframe",
    "write_csv",
]
