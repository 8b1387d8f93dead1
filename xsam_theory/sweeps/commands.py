"""The ``xsam-theory sweep`` and ``xsam-theory results`` commands.

``cli.py`` wires the arguments; the work is here. Each returns the process exit status.

Bad input is refused before any work, with ``error: ...`` on stderr and exit status 2: an
output path that cannot be written (a folder, a path under a file, a location where no file can
be created), a bad spec, a sweep larger than :data:`~xsam_theory.sweeps.spec.MAX_RUNS` without
``force``, a ``--where`` condition on an unknown column or comparing a number column with
text. ``sweep`` treats SIGTERM like Ctrl-C: finished runs stay stored, its claims are released,
and it exits with status 130.

The commands with examples: docs/sweeps.md; the failure model: docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from xsam_theory.sweeps.executors import make_executor
from xsam_theory.sweeps.runner import run_sweep
from xsam_theory.sweeps.spec import check_run_count, load_spec
from xsam_theory.sweeps.store import StoreError, SweepStore
from xsam_theory.sweeps.table import filter_rows, format_table, parse_where, tidy, write_csv

__all__ = ["results_command", "sweep_command"]


def _error(message: str, err: IO[str]) -> int:
    err.write(f"error: {message}\n")
    return 2


def unwritable_file(path: str | os.PathLike[str]) -> str | None:
    """Why a file cannot be written at ``path`` (``None`` when it can).

    ``path`` is a folder, a component of its folder is a file, or no file can be created in the
    nearest existing folder (checked by creating and removing a probe file there; missing folders
    below it are created by the writer). An existing file must be writable too.
    """
    path = Path(path)
    if path.is_dir():
        return f"{path} is a folder; give a file name inside it"
    folder = path.parent
    while not folder.exists():
        if folder == folder.parent:
            break
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is a file, not a folder, so {path} cannot be created"
    if path.exists() and not os.access(path, os.W_OK):
        return f"{path} is not writable"
    try:
        fd, probe = tempfile.mkstemp(prefix=".xsam-probe-", dir=folder)
    except OSError as e:
        return f"no file can be created in {folder} ({e.strerror or e})"
    os.close(fd)
    os.unlink(probe)
    return None


def check_lease(lease_s: float) -> float:
    """``lease_s`` if it is a positive finite number of seconds, else ``ValueError``."""
    if (
        isinstance(lease_s, bool)
        or not isinstance(lease_s, (int, float))
        or not (math.isfinite(lease_s) and lease_s > 0)
    ):
        raise ValueError(f"--lease must be a positive number of seconds, got {lease_s!r}")
    return float(lease_s)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """For the duration, SIGTERM raises ``KeyboardInterrupt`` in the main thread, as Ctrl-C does.

    The previous handler is restored after. Outside the main thread, nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def sweep_command(
    spec_file: str,
    *,
    store: str | None = None,
    workers: int | None = None,
    dask_local: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    quiet: bool = False,
    force: bool = False,
    lease_s: float | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> int:
    """Run a sweep spec file; return the exit status.

    Exit status 0 when every run is done, 1 when some failed, 2 on a usage, spec or store error
    (found before any run starts), 130 when interrupted by Ctrl-C or SIGTERM. The store defaults
    to ``<sweep name>.sqlite`` here; ``force`` runs a sweep larger than
    :data:`~xsam_theory.sweeps.spec.MAX_RUNS`; ``lease_s`` (a positive number of seconds;
    ``None``: the default of :func:`~xsam_theory.sweeps.runner.run_sweep`) is how long another
    driver waits before taking over the runs of a driver without heartbeats.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    with sigterm_as_interrupt():
        try:
            lease = {} if lease_s is None else {"lease_s": check_lease(lease_s)}
            spec = load_spec(spec_file)
            store_path = Path(store) if store else Path(f"{spec.name}.sqlite")
            problem = unwritable_file(store_path)
            if problem is not None:
                raise ValueError(f"cannot write the results store: {problem}")
            check_run_count(spec.run_count(), force=force)
            executor = make_executor(workers, dask_local=dask_local, scheduler=scheduler)
            with executor:
                result = run_sweep(
                    spec,
                    store_path,
                    executor=executor,
                    resume=resume,
                    progress=False if quiet else err,
                    force=force,
                    **lease,
                )
        except (ValueError, StoreError, ImportError) as e:
            return _error(str(e), err)
        except KeyboardInterrupt:
            err.write("\ninterrupted: finished runs are stored; rerun with --resume to continue\n")
            return 130
    failed = result.failed
    diverged = sum(r.outcome == "diverged" for r in result.records)
    out.write(
        f"{result.name}: {len(result)} runs, {len(result) - len(failed)} done "
        f"({result.ran} computed now, {result.skipped} already stored), {len(failed)} "
        f"failed, {diverged} diverged; {result.seconds:.1f} s\n"
        f"store: {result.store}   (xsam-theory results {result.store})\n"
    )
    for r in failed[:5]:
        lines = [ln for ln in r.message.strip().splitlines() if ln.strip()]
        out.write(
            f"  failed {r.hash[:12]} {r.method} seed={r.seed}: "
            f"{lines[-1].strip() if lines else '?'}\n"
        )
    if len(failed) > 5:
        out.write(
            f"  ... and {len(failed) - 5} more (xsam-theory results {result.store} "
            "--where status=failed)\n"
        )
    return 1 if failed else 0


def results_command(
    store: str,
    *,
    sweep: str | None = None,
    where: Sequence[str] = (),
    csv: str | None = None,
    columns: str = "varying",
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> int:
    """Print (or write as CSV) the runs of a store, one row per run.

    Exit status 2 on a store or filter error.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    if csv:
        problem = unwritable_file(csv)
        if problem is not None:
            return _error(f"cannot write --csv {csv}: {problem}", err)
    try:
        with SweepStore(
            store, read_only=True, on_warning=lambda m: err.write(f"warning: {m}\n")
        ) as st:
            sweeps = st.sweeps()
            records = st.records(sweep)
        filters = parse_where(where)
        records = filter_rows(records, filters)
    except (ValueError, KeyError, StoreError) as e:
        return _error(str(e).strip("'\""), err)
    summary = ", ".join(
        f"{s['name']} ({s['done']}/{s['n_runs']} done, {s['failed']} failed)"
        for s in sweeps
        if sweep is None or s["name"] == sweep
    )
    rows = tidy(records, columns=columns)
    if csv:
        write_csv(rows, csv)
        out.write(f"{store}: {summary or 'no sweeps'}; wrote {len(rows)} rows to {csv}\n")
        return 0
    out.write(f"{store}: {summary or 'no sweeps'}; {len(rows)} runs shown\n")
    out.write(format_table(rows) + "\n")
    return 0
