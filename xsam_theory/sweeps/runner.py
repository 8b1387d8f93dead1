"""Drive a sweep: expand it, register it in the store, claim runs, execute them, store results.

:func:`run_sweep` is the one entry point; the ``xsam-theory sweep`` command is a thin wrapper.
Runs are claimed a batch at a time and their claims kept alive by a heartbeat timer (see
:mod:`xsam_theory.sweeps.store` for the lease model; for a user's view, docs/sweeps.md and
docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from xsam_theory.sweeps.executors import Executor, LocalExecutor, available_cores
from xsam_theory.sweeps.spec import SweepSpec, load_spec
from xsam_theory.sweeps.store import (
    DEFAULT_LEASE_S,
    ClaimHolder,
    Heartbeat,
    RunRecord,
    StoreError,
    SweepStore,
    check_lease,
    heartbeat_period,
    new_owner,
)
from xsam_theory.sweeps.table import tidy, to_dataframe
from xsam_theory.trajectory import Trajectory

__all__ = ["Progress", "SweepResult", "claim_batch_size", "load_records", "run_sweep"]


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
        with SweepStore(self.store, read_only=True) as store:
            return store.trajectory(run)


class Progress:
    """A one-line progress bar: finished, failed, remaining, skipped, elapsed time and ETA.

    On a terminal the line is redrawn in place; elsewhere (a log file) a line is written at
    most every ``every`` seconds and at the end.
    """

    def __init__(
        self,
        name: str,
        total: int,
        skipped: int,
        where: str,
        stream: IO[str] | None,
        *,
        every: float = 5.0,
        width: int = 24,
    ):
        self.name, self.total, self.skipped, self.where = name, total, skipped, where
        self.stream, self.every, self.width = stream, every, width
        self.done = self.failed = 0
        self.note = ""
        self._holders: tuple[tuple[str, int], ...] = ()
        self.t0 = time.monotonic()
        self._last = -math.inf
        self._tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        if stream is not None:
            stream.write(
                f"sweep {name}: {total} runs, {skipped} already in the store; running on {where}\n"
            )
            stream.flush()

    @property
    def remaining(self) -> int:
        """Runs neither skipped nor finished yet."""
        return self.total - self.skipped - self.done - self.failed

    def line(self) -> str:
        """The progress line: bar, done, failed, left, elapsed time, ETA and the waiting note."""
        elapsed = time.monotonic() - self.t0
        finished = self.done + self.failed
        eta = (
            elapsed / finished * self.remaining
            if finished
            else (0.0 if self.remaining == 0 else math.nan)
        )
        filled = round(self.width * (self.skipped + finished) / max(self.total, 1))
        bar = "#" * filled + "-" * (self.width - filled)
        eta_text = "?" if math.isnan(eta) else _seconds(eta)
        note = f" · {self.note}" if self.note else ""
        return (
            f"[{bar}] {self.skipped + self.done}/{self.total} done · {self.failed} failed"
            f" · {self.remaining} left · {_seconds(elapsed)} · ETA {eta_text}{note}"
        )

    def waiting(self, holders: Sequence[ClaimHolder]) -> None:
        """Say that the sweep waits for runs other owners hold (``[]``: it no longer waits).

        The line is written at once whenever who holds how many runs changes.
        """
        key = tuple((h.owner, h.runs) for h in holders)
        self.note = ("waiting for " + "; ".join(h.describe() for h in holders)) if holders else ""
        changed, self._holders = key != self._holders, key
        self.draw(force=changed)

    def update(self, output: Mapping[str, Any] | None = None) -> None:
        """Count a finished run (``output["status"]``; ``None``: nothing finished) and redraw."""
        if output is not None:
            if output["status"] == "done":
                self.done += 1
            else:
                self.failed += 1
        self.draw()

    def draw(self, *, force: bool = False) -> None:
        """Redraw the progress line: in place on a terminal, else at most every ``every`` seconds.

        ``force`` writes the line now.
        """
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
        """Draw the final progress line and end it."""
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


def claim_batch_size(capacity: int) -> int:
    """How many runs a driver claims at a time: twice what its executor runs at once.

    A multiple of the capacity keeps every worker busy through a batch of equally long runs, and
    claiming no more than that leaves the rest of the sweep to other drivers (on other hosts).

    >>> claim_batch_size(1), claim_batch_size(8)
    (2, 16)
    """
    return 2 * max(1, int(capacity))


def _executor_capacity(executor: Executor) -> int:
    """How many runs ``executor`` runs at once (its workers; the cores where it cannot tell)."""
    for attribute in ("capacity", "workers", "n_workers"):
        value = getattr(executor, attribute, None)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
    if getattr(executor, "address", None) or getattr(executor, "_client", None) is not None:
        with contextlib.suppress(Exception):  # a Dask scheduler: its workers' threads
            threads = sum(executor.client.nthreads().values())  # type: ignore[attr-defined]
            if threads >= 1:
                return threads
    return available_cores()


def run_sweep(
    spec: SweepSpec | Mapping[str, Any] | str | os.PathLike[str],
    store: str | os.PathLike[str],
    *,
    executor: Executor | None = None,
    workers: int | None = None,
    resume: bool = False,
    progress: bool | IO[str] = False,
    on_result: Callable[[Mapping[str, Any]], None] | None = None,
    lease_s: float = DEFAULT_LEASE_S,
    poll: float = 0.5,
    force: bool = False,
) -> SweepResult:
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
        lease_s: seconds a claim on a run stays valid without a heartbeat (a finite number
            > 0, default 60). This call refreshes its claims every ``lease_s / 6`` seconds (at
            most every 30 s) from a timer thread; runs another driver claimed are waited for
            while its heartbeat is younger than ``lease_s`` and taken over after, so a resume
            after a crash waits at most one lease (not at all when the dead driver ran on this
            host and its process is provably gone). All drivers sharing a store should use the
            same lease, longer than any pause of a driver (a suspended laptop, a stalled disk).
        poll: seconds between checks while another process computes some of this sweep's runs.
        force: run a sweep larger than :data:`~xsam_theory.sweeps.spec.MAX_RUNS` (without
            it such a sweep is refused before it is expanded).

    Runs are claimed a batch at a time (:func:`claim_batch_size` of the executor's capacity),
    so drivers on several hosts share a sweep without computing a run twice; runs that another
    live driver holds are waited for, not duplicated, and the progress line says which owner
    holds how many and when its lease expires. On return every run of the sweep is ``done`` or
    ``failed``. On an error or an interrupt, this call's unfinished claims are released (or,
    if the store cannot be written, lapse with the lease), so a resume reruns them.

    Raises:
        ValueError: ``lease_s`` is not a finite number > 0 (before the store is touched).
        StoreError: the store is foreign, corrupted, or in conflict with the spec;
            :class:`~xsam_theory.sweeps.store.StoreFullError` when the disk is full (the store
            is intact: resume once there is room).
    """
    lease_s = check_lease(lease_s)
    t0 = time.monotonic()
    spec = _as_spec(spec)
    runs = spec.runs(force=force)
    configs = {r.hash: r.config for r in runs}
    stream = sys.stderr if progress is True else (progress or None)
    own_executor = executor is None
    executor = executor if executor is not None else LocalExecutor(workers)
    owner = new_owner()
    ran = 0
    try:
        batch = claim_batch_size(_executor_capacity(executor))
        with SweepStore(store) as st:
            st.register_sweep(
                spec.name, spec.to_dict(), [(r.hash, r.config) for r in runs], resume=resume
            )
            statuses = st.statuses(configs)
            skipped = sum(s == "done" for s in statuses.values())
            bar = Progress(spec.name, len(runs), skipped, executor.describe(), stream)
            attempted: set[str] = set()
            try:
                with Heartbeat(st.path, owner, period=heartbeat_period(lease_s)):
                    while True:
                        statuses = st.statuses(configs)
                        todo = [h for h in configs if statuses[h] != "done" and h not in attempted]
                        if not todo:
                            break
                        claimed, busy = st.claim(todo, owner, lease_s=lease_s, limit=batch)
                        attempted.update(claimed)
                        if claimed:
                            bar.waiting([])
                            for out in executor.map_unordered([configs[h] for h in claimed]):
                                if out is None:
                                    bar.draw()
                                    continue
                                st.complete(out)
                                ran += 1
                                bar.update(out)
                                if on_result is not None:
                                    on_result(out)
                        elif busy:
                            bar.waiting(st.holders(busy, lease_s=lease_s, exclude=owner))
                            time.sleep(poll)
            except BaseException:
                with contextlib.suppress(StoreError):  # a full disk: the lease frees them
                    st.release(owner)
                raise
            finally:
                bar.close()
            records = st.records(spec.name)
    finally:
        if own_executor:
            executor.close()
    return SweepResult(
        name=spec.name,
        store=Path(store),
        records=tuple(records),
        ran=ran,
        skipped=skipped,
        seconds=time.monotonic() - t0,
    )


def load_records(
    store: str | os.PathLike[str],
    sweep: str | None = None,
    *,
    status: str | Sequence[str] | None = None,
) -> list[RunRecord]:
    """The records of a store (one sweep, or all runs), without running or writing anything.

    The store is opened read-only, so this works in a read-only folder.
    """
    with SweepStore(store, read_only=True) as st:
        return st.records(sweep, status=status)
