"""Drive a sweep: expand it, register it in the store, claim runs, execute them, store results.

:func:`run_sweep` is the one entry point; the ``xsam-theory sweep`` command is a thin wrapper.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from xsam_theory.sweeps.executors import Executor, LocalExecutor
from xsam_theory.sweeps.spec import SweepSpec, load_spec
from xsam_theory.sweeps.store import RunRecord, SweepStore, new_owner
from xsam_theory.sweeps.table import tidy, to_dataframe
from xsam_theory.trajectory import Trajectory

__all__ = ["Progress", "SweepResult", "load_records", "run_sweep"]


@dataclass(frozen=True)
class SweepResult:
    """What :func:`run_sweep` returns: the sweep's records (in the sweep's order) and counts.

    Attributes:
        name: the sweep. store: the store file. records: one :class:`RunRecord` per run.
        ran: runs computed by this call. skipped: runs already done in the store.
        seconds: wall time of the call.
    """

    name: str
    store: Path
    records: tuple[RunRecord, ...]
    ran: int
    skipped: int
    seconds: float

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[RunRecord]:
        return iter(self.records)

    @property
    def failed(self) -> list[RunRecord]:
        """The runs that failed (an exception or a lost worker; not a divergence)."""
        return [r for r in self.records if r.status == "failed"]

    @property
    def ok(self) -> bool:
        """Whether every run is done."""
        return all(r.status == "done" for r in self.records)

    def table(self, *, columns: str = "varying") -> list[dict[str, Any]]:
        """The tidy table (see :func:`~xsam_theory.sweeps.table.tidy`)."""
        return tidy(self.records, columns=columns)

    def dataframe(self, *, columns: str = "varying") -> Any:
        """The tidy table as a pandas DataFrame (needs pandas)."""
        return to_dataframe(self.table(columns=columns))

    def trajectory(self, run: RunRecord | str) -> Trajectory:
        """A run's stored trajectory (by record or hash)."""
        with SweepStore(self.store, create=False) as store:
            return store.trajectory(run)


class Progress:
    """A one-line progress bar: finished, failed, remaining, skipped, elapsed time and ETA.

    On a terminal the line is redrawn in place; elsewhere (a log file) a line is written at
    most every ``every`` seconds and at the end.
    """

    def __init__(self, name: str, total: int, skipped: int, where: str,
                 stream: IO[str] | None, *, every: float = 5.0, width: int = 24):
        self.name, self.total, self.skipped, self.where = name, total, skipped, where
        self.stream, self.every, self.width = stream, every, width
        self.done = self.failed = 0
        self.t0 = time.monotonic()
        self._last = -math.inf
        self._tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        if stream is not None:
            stream.write(f"sweep {name}: {total} runs, {skipped} already in the store; "
                         f"running on {where}\n")
            stream.flush()

    @property
    def remaining(self) -> int:
        return self.total - self.skipped - self.done - self.failed

    def line(self) -> str:
        elapsed = time.monotonic() - self.t0
        finished = self.done + self.failed
        eta = (elapsed / finished * self.remaining if finished
               else (0.0 if self.remaining == 0 else math.nan))
        filled = round(self.width * (self.skipped + finished) / max(self.total, 1))
        bar = "#" * filled + "-" * (self.width - filled)
        eta_text = "?" if math.isnan(eta) else _seconds(eta)
        return (f"[{bar}] {self.skipped + self.done}/{self.total} done · {self.failed} failed"
                f" · {self.remaining} left · {_seconds(elapsed)} · ETA {eta_text}")

    def update(self, output: Mapping[str, Any] | None = None) -> None:
        if output is not None:
            if output["status"] == "done":
                self.done += 1
            else:
                self.failed += 1
        self.draw()

    def draw(self, *, force: bool = False) -> None:
        if self.stream is None:
            return
        now = time.monotonic()
        if self._tty:
            self.stream.write("\r" + self.line() + "\x1b[K")
        elif force or now - self._last >= self.every:
            self.stream.write(self.line() + "\n")
        else:
            return
        self._last = now
        self.stream.flush()

    def close(self) -> None:
        if self.stream is None:
            return
        self.draw(force=True)
        if self._tty:
            self.stream.write("\n")
        self.stream.flush()


def _seconds(s: float) -> str:
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def _as_spec(spec: SweepSpec | Mapping[str, Any] | str | os.PathLike[str]) -> SweepSpec:
    if isinstance(spec, SweepSpec):
        return spec
    if isinstance(spec, Mapping):
        return SweepSpec.from_dict(spec)
    return load_spec(spec)


def run_sweep(spec: SweepSpec | Mapping[str, Any] | str | os.PathLike[str],
              store: str | os.PathLike[str], *,
              executor: Executor | None = None, workers: int | None = None,
              resume: bool = False, progress: bool | IO[str] = False,
              on_result: Callable[[Mapping[str, Any]], None] | None = None,
              lease_s: float = 600.0, poll: float = 0.5) -> SweepResult:
    """Run every run of ``spec`` that the store does not hold finished, and return the table.

    Args:
        spec: a :class:`SweepSpec`, its dict form, or a ``.toml``/``.json`` file.
        store: the SQLite store file (created if missing).
        executor: where runs execute (default: ``LocalExecutor(workers)``); the caller keeps
            ownership of an executor it passes (it is not closed here).
        workers: processes of the default local executor (default: the available cores).
        resume: continue a sweep of this name already in the store (finished runs are skipped,
            failed and interrupted ones rerun). Without it such a sweep is an error
            (:class:`~xsam_theory.sweeps.store.SweepExistsError`); a *different* sweep under the
            same name always is.
        progress: draw a progress bar on stderr (``True``) or on the given stream.
        on_result: called with each run's output (a dict) after it is stored.
        lease_s: how long a claim by a process on another host stays valid without a
            heartbeat; claims by dead processes on this host are taken over at once.
        poll: seconds between checks while another process computes some of this sweep's runs.

    Runs that another live process is computing (a concurrent sweep sharing runs) are waited
    for, not duplicated. On return every run of the sweep is ``done`` or ``failed``.
    """
    t0 = time.monotonic()
    spec = _as_spec(spec)
    runs = spec.runs()
    configs = {r.hash: r.config for r in runs}
    stream = sys.stderr if progress is True else (progress or None)
    own_executor = executor is None
    executor = executor if executor is not None else LocalExecutor(workers)
    owner = new_owner()
    ran = 0
    try:
        with SweepStore(store) as st:
            st.register_sweep(spec.name, spec.to_dict(), [(r.hash, r.config) for r in runs],
                              resume=resume)
            statuses = st.statuses(configs)
            skipped = sum(s == "done" for s in statuses.values())
            bar = Progress(spec.name, len(runs), skipped, executor.describe(), stream)
            attempted: set[str] = set()
            try:
                while True:
                    statuses = st.statuses(configs)
                    todo = [h for h in configs if statuses[h] != "done" and h not in attempted]
                    if not todo:
                        break
                    claimed, busy = st.claim(todo, owner, lease_s=lease_s)
                    attempted.update(claimed)
                    if claimed:
                        for out in executor.map_unordered([configs[h] for h in claimed]):
                            if out is None:
                                st.heartbeat(owner)
                                bar.draw()
                                continue
                            st.complete(out)
                            ran += 1
                            bar.update(out)
                            if on_result is not None:
                                on_result(out)
                    elif busy:
                        bar.draw()
                        time.sleep(poll)
            except BaseException:
                st.release(owner)
                raise
            finally:
                bar.close()
            records = st.records(spec.name)
    finally:
        if own_executor:
            executor.close()
    return SweepResult(name=spec.name, store=Path(store), records=tuple(records), ran=ran,
                       skipped=skipped, seconds=time.monotonic() - t0)


def load_records(store: str | os.PathLike[str], sweep: str | None = None, *,
                 status: str | Sequence[str] | None = None) -> list[RunRecord]:
    """The records of a store (one sweep, or all runs), without running anything."""
    with SweepStore(store, create=False) as st:
        return st.records(sweep, status=status)
