"""The embedded results store: one SQLite file, one row per run.

Layout (schema version 2, ``PRAGMA application_id`` = ``'XSAM'``):

* ``runs``: ``hash`` (primary key), ``config`` (canonical JSON), ``status``
  (``pending`` | ``running`` | ``done`` | ``failed``), ``outcome`` (``completed`` | ``diverged``),
  ``message``, ``results`` (JSON of scalars), ``trajectory`` (compressed ``.npz`` blob), the
  claim (``owner``, ``heartbeat``), ``attempts`` and the timings.
* ``sweeps`` and ``sweep_runs``: which runs each named sweep consists of, in order. A run shared
  by two sweeps is one row.

Every change is one transaction (``BEGIN IMMEDIATE``), so a killed process never leaves a
half-written row. While a writer has the store open it runs in WAL mode with a busy timeout, so
several processes on one or several hosts may read and write at once; creating a new store is
one immediate transaction, so processes that open one new file at once all succeed. Workers
never touch the store: the process that drives a sweep writes each result as it arrives, so
Dask workers on other machines need no shared file system.

Claims and leases. A run being computed is ``running`` with an owner ``host|pid|token|proc``
and a ``heartbeat`` (Unix time). The claim is *live* while its heartbeat is younger than the
lease (``lease_s``, default :data:`DEFAULT_LEASE_S`); the driving process refreshes the
heartbeats of its claims from a timer thread with its own connection every
:func:`heartbeat_period` (a sixth of the lease), whatever its workers are doing. Another driver
leaves a live claim alone and waits for it (saying which owner holds how many runs and when the
lease expires); once the lease has expired it takes the run over, so a sweep killed part-way is
resumed by the next one. Whether a process *exists* never keeps a claim alive (a zombie, a
reused PID, or PID 1 in a restarted container all exist). The one shortcut: a claim made on this
host, in this boot and PID namespace, whose process is gone, a zombie, or a different process
under the same PID (another start time) is proven dead and taken over at once. Hosts' clocks must
agree to well within the lease. Drivers claim a few runs at a time (about what their executor
runs at once), so two drivers on two hosts share a sweep without computing a run twice.
``attempts`` counts computations whose outcome was stored (``done`` or ``failed``), not claims.

At rest the file is self-contained: closing a writable store checkpoints the write-ahead log
into the file and, when no other connection has it open, switches back to rollback mode, so
copying the ``.sqlite`` alone carries every result. ``SweepStore(path, read_only=True)`` reads
without writing anything (no WAL switch, no ``-wal`` or ``-shm`` created where none is needed),
so it works in a read-only folder; it warns when the file is in WAL mode but its ``-wal`` is
missing (a copy taken while a sweep was writing, or after one was killed): results written
since the last checkpoint are then not in the file. A write that fails because the disk is
full or a file size limit was reached raises :class:`StoreFullError`: the store is intact and
the sweep resumes once there is room. The same guarantees, from a user's side:
docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import socket
import sqlite3
import threading
import time
import urllib.parse
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xsam_theory._version import __version__
from xsam_theory.sweeps.worker import decode_trajectory
from xsam_theory.trajectory import Trajectory

__all__ = [
    "APPLICATION_ID",
    "DEFAULT_LEASE_S",
    "SCHEMA_VERSION",
    "ClaimHolder",
    "Heartbeat",
    "RunRecord",
    "StoreError",
    "StoreFullError",
    "StoreWarning",
    "SweepExistsError",
    "SweepStore",
    "check_lease",
    "claim_is_live",
    "heartbeat_period",
    "new_owner",
]

APPLICATION_ID = 0x5853414D  # "XSAM"
SCHEMA_VERSION = 2
STATUSES = ("pending", "running", "done", "failed")
#: seconds a claim stays valid without a heartbeat, unless the caller chooses another lease
DEFAULT_LEASE_S = 60.0
#: the longest pause between two heartbeats, whatever the lease
MAX_HEARTBEAT_PERIOD_S = 30.0
_SQLITE_MAGIC = b"SQLite format 3\x00"
_CHUNK = 500
#: SQLite errors of a write the file system refused (no space, file size limit, quota)
_WRITE_REFUSED = (
    "SQLITE_FULL",
    "SQLITE_IOERR_WRITE",
    "SQLITE_IOERR_FSYNC",
    "SQLITE_IOERR_DIR_FSYNC",
    "SQLITE_IOERR_TRUNCATE",
    "SQLITE_IOERR_SHMSIZE",
)

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    hash TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    outcome TEXT,
    message TEXT NOT NULL DEFAULT '',
    results TEXT,
    trajectory BLOB,
    owner TEXT,
    heartbeat REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    wall_s REAL,
    worker TEXT,
    package_version TEXT
);
CREATE INDEX runs_status ON runs (status);
CREATE TABLE sweeps (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    runs_digest TEXT NOT NULL,
    n_runs INTEGER NOT NULL,
    package_version TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE sweep_runs (
    sweep TEXT NOT NULL REFERENCES sweeps (name),
    position INTEGER NOT NULL,
    hash TEXT NOT NULL REFERENCES runs (hash),
    PRIMARY KEY (sweep, position)
);
CREATE INDEX sweep_runs_hash ON sweep_runs (hash);
"""


class StoreError(RuntimeError):
    """The store file is missing, foreign, corrupted, too new, or in conflict with a request."""


class SweepExistsError(StoreError):
    """The store already holds this sweep and resuming was not asked for."""


class StoreFullError(StoreError):
    """A write was refused by the file system (disk full, file size limit, quota).

    The store is intact and can be resumed once there is room.
    """


class StoreWarning(UserWarning):
    """Something about a store the reader should know (e.g. a ``-wal`` file that is missing)."""


def check_lease(lease_s: Any) -> float:
    """``lease_s`` as a float if it is a finite number of seconds > 0, else ``ValueError``."""
    if (
        isinstance(lease_s, bool)
        or not isinstance(lease_s, (int, float))
        or not (math.isfinite(lease_s) and lease_s > 0)
    ):
        raise ValueError(
            "lease_s must be a finite number of seconds > 0 (how long a claim on a run stays "
            f"valid without a heartbeat; default {DEFAULT_LEASE_S:g}), got {lease_s!r}"
        )
    return float(lease_s)


def heartbeat_period(lease_s: float) -> float:
    """Seconds between two heartbeats of a driver's claims.

    A sixth of the lease, at most :data:`MAX_HEARTBEAT_PERIOD_S`, so several heartbeats may be
    lost before a claim lapses.

    >>> heartbeat_period(60.0)
    10.0
    """
    return min(check_lease(lease_s) / 6.0, MAX_HEARTBEAT_PERIOD_S)


def _namespace_id() -> str | None:
    """This machine's boot and PID namespace, hashed (``None`` where ``/proc`` cannot tell)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        pid_ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return hashlib.sha256(f"{boot}|{pid_ns}".encode()).hexdigest()[:12]


def _proc_stat(pid: int) -> tuple[str, str]:
    """The state letter and the start time (clock ticks since boot) of process ``pid``."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text.rpartition(")")[2].split()
    return fields[0], fields[19]


def _process_identity(pid: int) -> str:
    """``start@namespace`` of process ``pid`` (empty where ``/proc`` cannot tell)."""
    ns = _namespace_id()
    if ns is None:
        return ""
    try:
        return f"{_proc_stat(pid)[1]}@{ns}"
    except (OSError, IndexError):
        return ""


def new_owner() -> str:
    """A claim owner id, ``host|pid|token|proc``, unique to one driving process and sweep call.

    ``proc`` identifies the process beyond its PID where ``/proc`` allows.
    """
    pid = os.getpid()
    return f"{socket.gethostname()}|{pid}|{uuid.uuid4().hex[:8]}|{_process_identity(pid)}"


def owner_proven_dead(owner: str) -> bool:
    """Whether ``owner``'s process is certainly gone.

    That is: the claim was made on this host, in this boot and PID namespace, and that PID is
    now absent, a zombie, or another process (another start time). ``False`` whenever this
    cannot be told; the lease decides then.
    """
    parts = owner.split("|")
    if len(parts) < 4 or not parts[3] or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    start, _, ns = parts[3].partition("@")
    if not ns or ns != _namespace_id():
        return False
    try:
        state, now_start = _proc_stat(int(parts[1]))
    except FileNotFoundError:
        return True
    except (OSError, IndexError):
        return False
    return state in ("Z", "X") or now_start != start


def claim_is_live(
    owner: str | None, heartbeat: float | None, *, lease_s: float, now: float | None = None
) -> bool:
    """Whether a run's claim still stands.

    It does when its heartbeat is younger than ``lease_s`` and its owner is not proven dead
    (see :func:`owner_proven_dead`).
    """
    if not owner or heartbeat is None:
        return False
    now = time.time() if now is None else now
    return now - heartbeat < lease_s and not owner_proven_dead(owner)


@dataclass(frozen=True)
class ClaimHolder:
    """Another owner's live claims on some runs.

    Who (``host``, ``pid``), how many ``runs``, and when the lease of the most recent heartbeat
    expires (``expires``, Unix time).
    """

    owner: str
    host: str
    pid: str
    runs: int
    expires: float

    def describe(self, now: float | None = None) -> str:
        """E.g. ``2 runs held by node7 (pid 4242); its lease expires in 41 s (at 14:03:12)``."""
        now = time.time() if now is None else now
        left = max(0.0, self.expires - now)
        at = time.strftime("%H:%M:%S", time.localtime(self.expires))
        return (
            f"{self.runs} run{'s' if self.runs != 1 else ''} held by {self.host} "
            f"(pid {self.pid}); its lease expires in {left:.0f} s (at {at}) unless it "
            "sends a heartbeat"
        )


class Heartbeat:
    """A timer thread that refreshes ``owner``'s running claims in the store at ``path``.

    It refreshes them every ``period`` seconds, on its own connection, whatever the calling
    thread is doing.

    Use as a context manager around the work. A failed refresh (a locked or full disk) is kept
    in :attr:`error` and retried at the next period; the claims lapse after their lease if the
    failures last.
    """

    def __init__(
        self, path: str | os.PathLike[str], owner: str, *, period: float, timeout: float = 30.0
    ):
        self.path, self.owner = Path(path), owner
        self.period, self.timeout = float(period), float(timeout)
        self.beats = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat {owner}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop refreshing (and wait for the thread to close its connection)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        con = None
        try:
            con = sqlite3.connect(
                self.path, timeout=min(self.timeout, self.period * 3), isolation_level=None
            )
            while not self._stop.wait(self.period):
                try:
                    con.execute(
                        "UPDATE runs SET heartbeat = ? WHERE owner = ? AND status = 'running'",
                        (time.time(), self.owner),
                    )
                    self.beats += 1
                except sqlite3.Error as e:
                    self.error = e
        except sqlite3.Error as e:  # pragma: no cover - the store vanished
            self.error = e
        finally:
            if con is not None:
                con.close()


@dataclass(frozen=True)
class RunRecord:
    """One run as stored (the trajectory stays in the store: :meth:`SweepStore.trajectory`).

    Attributes:
        hash: the run's content hash. config: its full configuration. status: ``pending`` |
        ``running`` | ``done`` | ``failed``. outcome: ``completed`` | ``diverged`` (done runs).
        message: why a run failed or stopped early. results: the scalar results.
        attempts: how many computations of it were stored (done or failed), not claims.
        started, finished: Unix times; wall_s: seconds spent computing. worker: ``host:pid``
        of the process that computed it. sweeps: the sweeps of the store it belongs to.
        has_trajectory: whether arrays are stored.
    """

    hash: str
    config: dict[str, Any]
    status: str
    outcome: str | None
    message: str
    results: dict[str, Any]
    attempts: int
    started: float | None
    finished: float | None
    wall_s: float | None
    worker: str | None
    sweeps: tuple[str, ...]
    has_trajectory: bool

    @property
    def method(self) -> str:
        """The run's method label (the preset name unless the spec set a label)."""
        return str(self.config.get("method"))

    @property
    def seed(self) -> int:
        """The run's seed, from its configuration."""
        return int(self.config["seed"])


class SweepStore:
    """A results store file (created on first use unless ``create=False`` or ``read_only``).

    ``read_only=True`` opens an existing store for reading only (``mode=ro``): nothing is
    written, no WAL switch, and every writing method raises :class:`StoreError`; a missing
    ``-wal`` that the file's header calls for is reported through ``on_warning`` (default: a
    :class:`StoreWarning`). ``timeout`` is how long to wait for another process's lock.

    Use as a context manager, or call :meth:`close`, which checkpoints the write-ahead log into
    the file (see the module docstring). One object per process: it is not shared with workers
    (they never write to it) and must not be pickled.

    >>> import tempfile, pathlib
    >>> with SweepStore(pathlib.Path(tempfile.mkdtemp()) / "s.sqlite") as store:
    ...     store.counts()
    {'pending': 0, 'running': 0, 'done': 0, 'failed': 0}
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        read_only: bool = False,
        timeout: float = 60.0,
        on_warning: Callable[[str], None] | None = None,
    ):
        self.path = Path(path)
        self.read_only = bool(read_only)
        if self.read_only:
            warn = on_warning or (lambda m: warnings.warn(m, StoreWarning, stacklevel=3))
            self._con = _open_read_only(self.path, timeout=timeout, warn=warn)
        else:
            self._con = _open(self.path, create=create, timeout=timeout)

    # -- lifecycle --------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the store.

        A writable store first checkpoints its write-ahead log into the file and, when no other
        connection has it open, leaves WAL mode, so the ``.sqlite`` alone holds every result
        (failures here, e.g. a full disk, are ignored: the log keeps the results).
        """
        con, self._con = self._con, None
        if con is None:
            return
        try:
            if not self.read_only:
                _settle(con)
        finally:
            con.close()

    def __enter__(self) -> SweepStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SweepStore({str(self.path)!r})"

    def __getstate__(self) -> None:
        raise TypeError("a SweepStore is bound to one process; pass its path instead")

    @property
    def con(self) -> sqlite3.Connection:
        """The open SQLite connection; a :class:`StoreError` once the store is closed."""
        if self._con is None:
            raise StoreError(f"the store {self.path} is closed")
        return self._con

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as e:
            raise _store_error(self.path, e) from e

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self.read_only:
            raise StoreError(
                f"{self.path} is opened read-only; open it without read_only=True to change it"
            )
        with self._guard():
            con = self.con
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    # -- sweeps -----------------------------------------------------------------------------------
    def register_sweep(
        self,
        name: str,
        spec: Mapping[str, Any],
        runs: Sequence[tuple[str, Mapping[str, Any]]],
        *,
        resume: bool = False,
    ) -> int:
        """Record sweep ``name`` with its runs ``[(hash, config), ...]``.

        New runs start ``pending``. Returns how many runs were new to the store.

        Raises:
            SweepExistsError: the store already holds this sweep and ``resume`` is false.
            StoreError: the store holds a *different* sweep under this name.
        """
        hashes = [h for h, _ in runs]
        digest = hashlib.sha256("\n".join(hashes).encode()).hexdigest()
        now = time.time()
        with self._transaction() as con:
            row = con.execute(
                "SELECT runs_digest, n_runs, package_version FROM sweeps WHERE name = ?", (name,)
            ).fetchone()
            if row is not None:
                if row[0] != digest:
                    raise StoreError(
                        f"{self.path} already holds a different sweep named {name!r} "
                        f"({row[1]} runs, xsam-theory {row[2]}; this spec has {len(runs)} runs, "
                        f"xsam-theory {__version__}){_code_change(con, name, runs)}: rename the "
                        "sweep or use another store"
                    )
                if not resume:
                    counts = self._counts(con, name)
                    raise SweepExistsError(
                        f"{self.path} already holds sweep {name!r} ({counts['done']} of "
                        f"{row[1]} runs done, {counts['failed']} failed): resume it "
                        "(--resume / resume=True; finished runs are skipped, failed and "
                        "interrupted ones rerun) or use another store"
                    )
                return 0
            con.execute(
                "INSERT INTO sweeps VALUES (?, ?, ?, ?, ?, ?)",
                (name, json.dumps(dict(spec), sort_keys=True), digest, len(runs), __version__, now),
            )
            before = con.total_changes
            con.executemany(
                "INSERT OR IGNORE INTO runs (hash, config, status, created, package_version) "
                "VALUES (?, ?, 'pending', ?, ?)",
                [
                    (
                        h,
                        json.dumps(dict(cfg), sort_keys=True, separators=(",", ":")),
                        now,
                        cfg.get("package_version"),
                    )
                    for h, cfg in runs
                ],
            )
            new = con.total_changes - before
            con.executemany(
                "INSERT INTO sweep_runs VALUES (?, ?, ?)",
                [(name, i, h) for i, h in enumerate(hashes)],
            )
            return new

    def sweeps(self) -> list[dict[str, Any]]:
        """The sweeps in the store, one dictionary each.

        Each holds the name, number of runs, package version, creation time and the counts by
        status.
        """
        with self._guard():
            rows = self.con.execute(
                "SELECT name, n_runs, package_version, created FROM sweeps ORDER BY created, name"
            ).fetchall()
            return [
                {
                    "name": n,
                    "n_runs": k,
                    "package_version": v,
                    "created": c,
                    **self._counts(self.con, n),
                }
                for n, k, v, c in rows
            ]

    def spec(self, name: str) -> dict[str, Any]:
        """The spec a sweep was registered with."""
        with self._guard():
            row = self.con.execute("SELECT spec FROM sweeps WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise KeyError(f"no sweep named {name!r} in {self.path}")
        return json.loads(row[0])

    # -- claims and results -----------------------------------------------------------------
    def claim(
        self,
        hashes: Iterable[str],
        owner: str,
        *,
        lease_s: float = DEFAULT_LEASE_S,
        limit: int | None = None,
    ) -> tuple[list[str], list[str]]:
        """Claim for ``owner`` up to ``limit`` (default: all) of the given runs, in order.

        The runs claimed are those pending, failed, or running under a claim that is no longer
        live (see :func:`claim_is_live`). Returns ``(claimed, busy)``, ``busy`` being the given
        runs that another owner's live claim holds; done runs are in neither. A claim does not
        count as an attempt.
        """
        lease_s = check_lease(lease_s)
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise ValueError(f"limit must be an integer >= 0 or None, got {limit!r}")
        claimed: list[str] = []
        busy: list[str] = []
        now = time.time()
        hashes = list(hashes)
        with self._transaction() as con:
            for chunk in _chunks(hashes):
                rows = con.execute(
                    f"SELECT hash, status, owner, heartbeat FROM runs WHERE hash IN "
                    f"({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                state = {h: (s, o, hb) for h, s, o, hb in rows}
                for h in chunk:
                    if h not in state:
                        raise StoreError(
                            f"run {h[:12]} is not in {self.path}; register its sweep first"
                        )
                    status, other, hb = state[h]
                    if status == "done":
                        continue
                    if (
                        status == "running"
                        and other != owner
                        and claim_is_live(other, hb, lease_s=lease_s, now=now)
                    ):
                        busy.append(h)
                    elif limit is None or len(claimed) < limit:
                        claimed.append(h)
            con.executemany(
                "UPDATE runs SET status = 'running', owner = ?, heartbeat = ? WHERE hash = ?",
                [(owner, now, h) for h in claimed],
            )
        return claimed, busy

    def holders(
        self, hashes: Iterable[str], *, lease_s: float = DEFAULT_LEASE_S, exclude: str | None = None
    ) -> list[ClaimHolder]:
        """The owners (but ``exclude``) whose live claims hold some of the given runs.

        Each comes with how many and when their lease expires, most runs first.
        """
        lease_s = check_lease(lease_s)
        now = time.time()
        found: dict[str, list[float]] = {}
        with self._guard():
            for chunk in _chunks(list(hashes)):
                for other, hb in self.con.execute(
                    f"SELECT owner, heartbeat FROM runs WHERE status = 'running' AND hash "
                    f"IN ({','.join('?' * len(chunk))})",
                    chunk,
                ):
                    if other != exclude and claim_is_live(other, hb, lease_s=lease_s, now=now):
                        found.setdefault(other, []).append(hb)
        out = []
        for other, beats in found.items():
            host, _, rest = other.partition("|")
            out.append(
                ClaimHolder(
                    owner=other,
                    host=host,
                    pid=rest.partition("|")[0] or "?",
                    runs=len(beats),
                    expires=max(beats) + lease_s,
                )
            )
        return sorted(out, key=lambda h: (-h.runs, h.owner))

    def complete(self, output: Mapping[str, Any]) -> bool:
        """Store a run's output in one transaction, counting one more attempt.

        The output is one from :func:`~xsam_theory.sweeps.worker.execute_run`. A run already
        ``done`` is left as it is (the first result wins; runs are deterministic). Returns
        whether the row was written.
        """
        if output["status"] not in ("done", "failed"):
            raise ValueError(f"output status must be 'done' or 'failed', got {output['status']!r}")
        results = json.dumps(output.get("results") or {}, sort_keys=True)
        with self._transaction() as con:
            cur = con.execute(
                "UPDATE runs SET status = ?, outcome = ?, message = ?, results = ?, "
                "trajectory = ?, started = ?, finished = ?, wall_s = ?, worker = ?, "
                "owner = NULL, heartbeat = NULL, attempts = attempts + 1 "
                "WHERE hash = ? AND status != 'done'",
                (
                    output["status"],
                    output.get("outcome"),
                    output.get("message") or "",
                    results,
                    output.get("trajectory"),
                    output.get("started"),
                    output.get("finished"),
                    output.get("wall_s"),
                    output.get("worker"),
                    output["hash"],
                ),
            )
            return cur.rowcount == 1

    def heartbeat(self, owner: str) -> None:
        """Refresh the heartbeat of ``owner``'s running claims."""
        with self._transaction() as con:
            con.execute(
                "UPDATE runs SET heartbeat = ? WHERE owner = ? AND status = 'running'",
                (time.time(), owner),
            )

    def release(self, owner: str) -> int:
        """Put ``owner``'s unfinished claims back to ``pending``; returns how many."""
        with self._transaction() as con:
            cur = con.execute(
                "UPDATE runs SET status = 'pending', owner = NULL, "
                "heartbeat = NULL WHERE owner = ? AND status = 'running'",
                (owner,),
            )
            return cur.rowcount

    def statuses(self, hashes: Iterable[str]) -> dict[str, str]:
        """``{hash: status}`` for the given runs (absent runs are left out)."""
        out: dict[str, str] = {}
        with self._guard():
            for chunk in _chunks(list(hashes)):
                out.update(
                    self.con.execute(
                        f"SELECT hash, status FROM runs WHERE hash IN "
                        f"({','.join('?' * len(chunk))})",
                        chunk,
                    ).fetchall()
                )
        return out

    # -- reading ----------------------------------------------------------------------------------
    def counts(self, sweep: str | None = None) -> dict[str, int]:
        """Runs by status, in the whole store or in one sweep."""
        with self._guard():
            return self._counts(self.con, sweep)

    def _counts(self, con: sqlite3.Connection, sweep: str | None) -> dict[str, int]:
        if sweep is None:
            rows = con.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall()
        else:
            rows = con.execute(
                "SELECT r.status, COUNT(*) FROM sweep_runs s JOIN runs r "
                "ON r.hash = s.hash WHERE s.sweep = ? GROUP BY r.status",
                (sweep,),
            ).fetchall()
        counts = dict.fromkeys(STATUSES, 0)
        counts.update(rows)
        return counts

    def records(
        self, sweep: str | None = None, *, status: str | Sequence[str] | None = None
    ) -> list[RunRecord]:
        """The runs of one sweep (in the sweep's order) or of the whole store.

        They come as :class:`RunRecord`; ``status`` keeps only runs with that status (or those
        statuses).
        """
        statuses = [status] if isinstance(status, str) else list(status or ())
        bad = [s for s in statuses if s not in STATUSES]
        if bad:
            raise ValueError(f"status must be among {STATUSES}, got {bad}")
        cols = (
            "r.hash, r.config, r.status, r.outcome, r.message, r.results, r.attempts, "
            "r.started, r.finished, r.wall_s, r.worker, r.trajectory IS NOT NULL"
        )
        with self._guard():
            if sweep is None:
                rows = self.con.execute(f"SELECT {cols} FROM runs r ORDER BY r.rowid").fetchall()
            else:
                if (
                    self.con.execute("SELECT 1 FROM sweeps WHERE name = ?", (sweep,)).fetchone()
                    is None
                ):
                    names = [s["name"] for s in self.sweeps()]
                    raise KeyError(f"no sweep named {sweep!r} in {self.path}; it holds {names}")
                rows = self.con.execute(
                    f"SELECT {cols} FROM sweep_runs s JOIN runs r ON r.hash = s.hash "
                    "WHERE s.sweep = ? ORDER BY s.position",
                    (sweep,),
                ).fetchall()
            membership: dict[str, list[str]] = {}
            for h, name in self.con.execute("SELECT hash, sweep FROM sweep_runs ORDER BY sweep"):
                membership.setdefault(h, []).append(name)
        out = []
        for (
            h,
            config,
            st,
            outcome,
            message,
            results,
            attempts,
            started,
            finished,
            wall_s,
            worker,
            has_traj,
        ) in rows:
            if statuses and st not in statuses:
                continue
            out.append(
                RunRecord(
                    hash=h,
                    config=json.loads(config),
                    status=st,
                    outcome=outcome,
                    message=message or "",
                    results=json.loads(results) if results else {},
                    attempts=attempts,
                    started=started,
                    finished=finished,
                    wall_s=wall_s,
                    worker=worker,
                    sweeps=tuple(membership.get(h, ())),
                    has_trajectory=bool(has_traj),
                )
            )
        return out

    def trajectory(self, run: str | RunRecord) -> Trajectory:
        """The stored trajectory of a run (by hash, a unique hash prefix, or record)."""
        key = run.hash if isinstance(run, RunRecord) else str(run)
        with self._guard():
            rows = self.con.execute(
                "SELECT hash, trajectory FROM runs WHERE hash LIKE ? LIMIT 2",
                (key.replace("%", "") + "%",),
            ).fetchall()
        if not rows:
            raise KeyError(f"no run {key!r} in {self.path}")
        if len(rows) > 1:
            raise KeyError(f"hash prefix {key!r} is ambiguous in {self.path}")
        if rows[0][1] is None:
            raise KeyError(
                f"run {rows[0][0][:12]} has no stored trajectory (not done, or "
                "store_trajectory = false)"
            )
        return decode_trajectory(rows[0][1])

    def check(self) -> None:
        """Run SQLite's integrity check over the whole file; ``StoreError`` if it fails."""
        with self._guard():
            problems = [r[0] for r in self.con.execute("PRAGMA integrity_check").fetchall()]
        if problems != ["ok"]:
            raise StoreError(f"{self.path} is corrupted: {'; '.join(problems[:5])}")


# -- opening ------------------------------------------------------------------------------------


def _code_change(
    con: sqlite3.Connection, name: str, runs: Sequence[tuple[str, Mapping[str, Any]]]
) -> str:
    """Say so when a sweep differs from the stored one because the code changed.

    Run hashes include the source digest of the code that plans them; when the stored sweep's
    first run and the new first run differ only in it, the sweep is the same spec computed by
    other code, and the message says that its stored runs are stale.
    """
    stored = con.execute(
        "SELECT r.config FROM sweep_runs s JOIN runs r ON r.hash = s.hash "
        "WHERE s.sweep = ? ORDER BY s.position LIMIT 1",
        (name,),
    ).fetchone()
    if stored is None or not runs:
        return ""
    old, new = json.loads(stored[0]), dict(runs[0][1])
    old_digest, new_digest = old.pop("source_digest", None), new.pop("source_digest", None)
    if old_digest == new_digest or old != new:
        return ""
    return (
        f"; the same spec, but the code changed since its runs were computed (source digest "
        f"{old_digest} -> {new_digest}), so they are stale"
    )


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _store_error(path: Path, e: sqlite3.DatabaseError) -> StoreError:
    text = str(e)
    name = getattr(e, "sqlite_errorname", "") or ""
    if name in _WRITE_REFUSED or "database or disk is full" in text:
        return StoreFullError(
            f"{path}: could not write to the results store: the disk is full, or a file size "
            f"limit (ulimit -f) or quota was reached ({text}, {name or 'no code'}). The store "
            "is intact: every run stored so far is kept, and runs left running are released or "
            "taken over once their lease expires. Make room (or raise the limit) and resume the "
            "sweep (--resume / resume=True) to compute the rest"
        )
    if name.startswith("SQLITE_BUSY") or "locked" in text:
        return StoreError(f"{path}: the store stayed locked by another process ({text})")
    if name.startswith("SQLITE_READONLY") or "readonly database" in text:
        return StoreError(
            f"{path}: cannot write here ({text}): a read-only file or folder; "
            "read it with `xsam-theory results` or copy it somewhere writable"
        )
    if (
        name.startswith("SQLITE_CORRUPT")
        or name == "SQLITE_NOTADB"
        or any(w in text for w in ("malformed", "not a database", "corrupt"))
    ):
        return StoreError(
            f"{path} is corrupted or not an xsam-theory results store ({text}); "
            "finished runs can be recomputed into a new store"
        )
    if name.startswith("SQLITE_IOERR") or "disk I/O" in text:
        return StoreError(
            f"{path}: an I/O error while reading or writing the store ({text}, "
            f"{name or 'no code'}): a failing disk or network file system, or a "
            "corrupted file; SweepStore.check() tells whether the file is intact"
        )
    return StoreError(f"{path}: {text}")


def _is_busy(e: sqlite3.Error) -> bool:
    name = getattr(e, "sqlite_errorname", "") or ""
    return name.startswith("SQLITE_BUSY") or "locked" in str(e)


def _retrying(step: Callable[[], Any], con: sqlite3.Connection, deadline: float) -> Any:
    """Run ``step``, retrying while it meets another process's lock.

    It runs again after a short random pause whenever it meets another process's lock (some
    lock changes, such as the switch to WAL mode, fail at once instead of waiting for the busy
    timeout), until ``deadline`` (``time.monotonic()``).
    """
    while True:
        try:
            return step()
        except sqlite3.OperationalError as e:
            if con.in_transaction:
                con.execute("ROLLBACK")
            if not _is_busy(e) or time.monotonic() >= deadline:
                raise
        time.sleep(random.uniform(0.005, 0.05))


def _check_file(path: Path, *, create: bool) -> bytes:
    """The first 100 bytes of the store file (the SQLite header).

    A folder, a foreign file, or a missing file that is not to be created is refused first.
    """
    if path.is_dir():
        raise StoreError(f"{path} is a folder, not a results store file")
    if path.exists():
        with path.open("rb") as f:
            head = f.read(100)
        if head and head[: len(_SQLITE_MAGIC)] != _SQLITE_MAGIC:
            raise StoreError(
                f"{path} is not an xsam-theory results store: it is not an SQLite "
                f"database (it starts with {head[:8]!r})"
            )
        return head
    if not create:
        raise StoreError(f"no results store at {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return b""


def _open(path: Path, *, create: bool, timeout: float) -> sqlite3.Connection:
    """A read-write connection.

    The schema is checked (and created, in one immediate transaction, if the file is new),
    then the WAL switch is made, both retried while other processes hold locks.
    """
    _check_file(path, create=create)
    deadline = time.monotonic() + timeout
    con = None
    try:
        con = sqlite3.connect(path, timeout=timeout, isolation_level=None)  # busy timeout first
        _retrying(lambda: _ensure_schema(con, path, create=create), con, deadline)
        mode = _retrying(
            lambda: con.execute("PRAGMA journal_mode = WAL").fetchone()[0], con, deadline
        )
        if str(mode).lower() != "wal":
            raise StoreError(
                f"{path}: could not switch the store to WAL mode (got {mode!r}; "
                "a file system without shared memory?)"
            )
        con.execute("PRAGMA synchronous = NORMAL")
        con.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as e:
        if con is not None:
            con.close()
        raise _store_error(path, e) from e
    except BaseException:
        if con is not None:
            con.close()
        raise
    return con


def _wal_missing_message(path: Path) -> str:
    return (
        f"{path} is in WAL mode but its write-ahead log {path}-wal is missing: a sweep was "
        "still writing it, or was killed, when this file was copied, so results written "
        "since its last checkpoint may be missing here. Copy the -wal file along with it, "
        "or let the sweep finish (or resume it) before copying"
    )


def _open_read_only(
    path: Path, *, timeout: float, warn: Callable[[str], None]
) -> sqlite3.Connection:
    """A read-only connection, with the schema checked and nothing written.

    It is opened with ``mode=ro``, and ``immutable=1`` where the file's ``-wal`` is missing or
    cannot be read.
    """
    head = _check_file(path, create=False)
    if not head:
        raise StoreError(f"{path} is an empty file, not an xsam-theory results store")
    in_wal_mode = len(head) >= 20 and head[18] == 2  # the header's read/write version bytes
    uri = "file:" + urllib.parse.quote(str(path.resolve()))
    immutable = in_wal_mode and not Path(f"{path}-wal").exists()
    if immutable:
        warn(_wal_missing_message(path))
    con = None
    try:
        try:
            con = sqlite3.connect(
                f"{uri}?mode=ro{'&immutable=1' if immutable else ''}",
                uri=True,
                timeout=timeout,
                isolation_level=None,
            )
            _read_schema(con, path)
        except sqlite3.OperationalError as e:
            if immutable or not in_wal_mode or "unable to open" not in str(e):
                raise
            if con is not None:
                con.close()
            warn(
                f"{path}: its write-ahead log cannot be read here ({e}); reading the file "
                "alone, so results written since its last checkpoint may be missing"
            )
            con = sqlite3.connect(
                f"{uri}?mode=ro&immutable=1", uri=True, timeout=timeout, isolation_level=None
            )
            _read_schema(con, path)
    except sqlite3.DatabaseError as e:
        if con is not None:
            con.close()
        raise _store_error(path, e) from e
    except BaseException:
        if con is not None:
            con.close()
        raise
    return con


def _read_schema(con: sqlite3.Connection, path: Path) -> None:
    """Refuse a file that is not an xsam-theory store (read-only check, one snapshot)."""
    con.execute("BEGIN")
    try:
        app_id = con.execute("PRAGMA application_id").fetchone()[0]
        if app_id == APPLICATION_ID:
            _check_version(con, path)
            return
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        if app_id != 0 or tables:
            raise _foreign(path, app_id, tables)
        raise StoreError(f"{path} is an empty database, not an xsam-theory results store")
    finally:
        con.execute("COMMIT")


def _foreign(path: Path, app_id: int, tables: list[str]) -> StoreError:
    return StoreError(
        f"{path} is an SQLite database but not an xsam-theory results store "
        f"(application_id {app_id:#x}, tables {sorted(tables)[:8]})"
    )


def _ensure_schema(con: sqlite3.Connection, path: Path, *, create: bool) -> None:
    """Check that the file is an xsam-theory store, creating the schema in an empty file.

    The check and the creation are one immediate transaction, so a process never sees another's
    half-made store.
    """
    if con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID:
        _check_version(con, path)  # committed with the application id: no race
        return
    con.execute("BEGIN IMMEDIATE")
    try:
        app_id = con.execute("PRAGMA application_id").fetchone()[0]
        if app_id == APPLICATION_ID:  # another process created it while we waited
            _check_version(con, path)
        else:
            tables = [
                r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            ]
            if app_id != 0 or tables:
                raise _foreign(path, app_id, tables)
            if not create:
                raise StoreError(f"{path} is an empty database, not an xsam-theory results store")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    con.execute(statement)
            con.execute(
                "INSERT INTO meta VALUES ('schema_version', ?), ('created_by', ?)",
                (str(SCHEMA_VERSION), f"xsam-theory {__version__}"),
            )
            con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise


def _settle(con: sqlite3.Connection) -> None:
    """Checkpoint the write-ahead log into the file and leave WAL mode when possible.

    The checkpoint is ``TRUNCATE``; WAL mode is left when this is the only connection, so the
    file alone holds everything. Best effort: a busy or full disk leaves the log in place,
    which keeps the results.
    """
    with contextlib.suppress(sqlite3.Error):
        if con.in_transaction:
            con.execute("ROLLBACK")
        con.execute("PRAGMA busy_timeout = 2000")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        con.execute("PRAGMA busy_timeout = 0")
        con.execute("PRAGMA journal_mode = DELETE").fetchall()


def _check_version(con: sqlite3.Connection, path: Path) -> None:
    """Refuse a store of another schema version (``PRAGMA user_version``).

    A newer store needs a newer xsam-theory. An older one (schema 1) has the same tables, but
    its run hashes were taken of optimizer dictionaries that kept inert options, so they are not
    comparable with this version's: no run of it would be found again, and its sweeps would
    fill with a second copy of every run. Version 0 is a store whose creation did not finish.

    Raises:
        StoreError: saying which of these it is and what to do.
    """
    version = con.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written by a newer xsam-theory (store schema {version}, "
            f"this version reads {SCHEMA_VERSION}): upgrade xsam-theory"
        )
    if 1 <= version < SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written by an older xsam-theory (store schema {version}) "
            "whose run hashes are not comparable: use a new store file or rerun "
            "the sweeps"
        )
    if version < 1:
        raise StoreError(
            f"{path} is an incomplete xsam-theory results store (schema version {version})"
        )
