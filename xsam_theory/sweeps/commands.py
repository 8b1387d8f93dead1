"""The ``xsam-theory sweep`` and ``xsam-theory results`` commands (``cli.py`` wires the
arguments; the work is here). Each returns the process exit status."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from xsam_theory.sweeps.executors import make_executor
from xsam_theory.sweeps.runner import run_sweep
from xsam_theory.sweeps.spec import load_spec
from xsam_theory.sweeps.store import StoreError, SweepStore
from xsam_theory.sweeps.table import filter_rows, format_table, parse_where, tidy, write_csv

__all__ = ["results_command", "sweep_command"]


def _error(message: str, err: IO[str]) -> int:
    err.write(f"error: {message}\n")
    return 2


def sweep_command(spec_file: str, *, store: str | None = None, workers: int | None = None,
                  dask_local: int | None = None, scheduler: str | None = None,
                  resume: bool = False, quiet: bool = False,
                  out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    """Run a sweep spec file. Exit status 0 when every run is done, 1 when some failed, 2 on
    a usage, spec or store error. The store defaults to ``<sweep name>.sqlite`` here."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        spec = load_spec(spec_file)
        store_path = Path(store) if store else Path(f"{spec.name}.sqlite")
        executor = make_executor(workers, dask_local=dask_local, scheduler=scheduler)
        with executor:
            result = run_sweep(spec, store_path, executor=executor, resume=resume,
                               progress=False if quiet else err)
    except (ValueError, StoreError, ImportError) as e:
        return _error(str(e), err)
    except KeyboardInterrupt:
        err.write("\ninterrupted: finished runs are stored; rerun with --resume to continue\n")
        return 130
    failed = result.failed
    diverged = sum(r.outcome == "diverged" for r in result.records)
    out.write(f"{result.name}: {len(result)} runs, {len(result) - len(failed)} done "
              f"({result.ran} computed now, {result.skipped} already stored), {len(failed)} "
              f"failed, {diverged} diverged; {result.seconds:.1f} s\n"
              f"store: {result.store}   (xsam-theory results {result.store})\n")
    for r in failed[:5]:
        lines = [ln for ln in r.message.strip().splitlines() if ln.strip()]
        out.write(f"  failed {r.hash[:12]} {r.method} seed={r.seed}: "
                  f"{lines[-1].strip() if lines else '?'}\n")
    if len(failed) > 5:
        out.write(f"  ... and {len(failed) - 5} more (xsam-theory results {result.store} "
                  "--where status=failed)\n")
    return 1 if failed else 0


def results_command(store: str, *, sweep: str | None = None, where: Sequence[str] = (),
                    csv: str | None = None, columns: str = "varying",
                    out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    """Print (or write as CSV) the runs of a store, one row per run. Exit status 2 on a store
    or filter error."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        with SweepStore(store, create=False) as st:
            sweeps = st.sweeps()
            records = st.records(sweep)
        filters = parse_where(where)
        records = filter_rows(records, filters)
    except (ValueError, KeyError, StoreError) as e:
        return _error(str(e).strip("'\""), err)
    summary = ", ".join(f"{s['name']} ({s['done']}/{s['n_runs']} done, {s['failed']} failed)"
                        for s in sweeps if sweep is None or s["name"] == sweep)
    rows = tidy(records, columns=columns)
    if csv:
        write_csv(rows, csv)
        out.write(f"{store}: {summary or 'no sweeps'}; wrote {len(rows)} rows to {csv}\n")
        return 0
    out.write(f"{store}: {summary or 'no sweeps'}; {len(rows)} runs shown\n")
    out.write(format_table(rows) + "\n")
    return 0
