"""The embedded results store: one SQLite file, one row per run (SPEC §8, §9).

Layout (schema version 1, ``PRAGMA application_id`` = ``'XSAM'``):

* ``runs``: ``hash`` (primary key), ``config`` (canonical JSON), ``status``
  (``pending`` | ``running`` | ``done`` | ``failed``), ``outcome`` (``completed`` | ``diverged``),
  ``message``, ``results`` (JSON of scalars), ``trajectory`` (compressed ``.npz`` blob), the
  claim (``owner``, ``heartbeat``), ``attempts`` and the timings.
* ``sweeps`` and ``sweep_runs``: which runs each named sweep consists of, in order. A run shared
  by two sweeps is one row.

Every change is one transaction (``BEGIN IMMEDIATE``), so a killed process never leaves a
half-written row; the database runs in WAL mode with a busy timeout, so several processes may
read and write at once. Workers never touch the store: the process that drives a sweep writes
each result as it arrives, so Dask workers on other machines need no shared file system.

A run being computed is ``running`` with an owner ``host|pid|token``. Another sweep leaves it
alone while that owner lives (its process exists, on the same host; its heartbeat is fresh,
elsewhere) and takes it over otherwise, so a sweep killed part-way is resumed by the next one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xsam_theory._version import __version__
from xsam_theory.sweeps.worker import decode_trajectory
from xsam_theory.trajectory import Trajectory

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "RunRecord",
    "StoreError",
    "SweepExistsError",
    "SweepStore",
    "new_owner",
]

APPLICATION_ID = 0x5853414D  # "XSAM"
SCHEMA_VERSION = 1
STATUSES = ("pending", "running", "done", "failed")
_SQLITE_MAGIC = b"SQLite format 3\x00"
_CHUNK = 500

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


def new_owner() -> str:
    """A claim owner id, ``host|pid|token``, unique to one driving process and sweep call."""
    return f"{socket.gethostname()}|{os.getpid()}|{uuid.uuid4().hex[:8]}"


def _pid_alive(pid: int) -> bool | None:
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return None
    return True


def owner_alive(owner: str | None, heartbeat: float | None, *, lease_s: float,
                now: float | None = None) -> bool:
    """Whether a claim's owner should still be trusted to finish the run.

    On this host: whether its process exists (the heartbeat where that cannot be told).
    Elsewhere: whether its heartbeat is younger than ``lease_s``.
    """
    if not owner:
        return False
    now = time.time() if now is None else now
    host, _, rest = owner.partition("|")
    pid_text = rest.partition("|")[0]
    if host == socket.gethostname() and pid_text.isdigit():
        alive = _pid_alive(int(pid_text))
        if alive is not None:
            return alive
    return heartbeat is not None and now - heartbeat < lease_s


@dataclass(frozen=True)
class RunRecord:
    """One run as stored (the trajectory stays in the store: :meth:`SweepStore.trajectory`).

    Attributes:
        hash: the run's content hash. config: its full configuration. status: ``pending`` |
        ``running`` | ``done`` | ``failed``. outcome: ``completed`` | ``diverged`` (done runs).
        message: why a run failed or stopped early. results: the scalar results.
        attempts: how many times it was started. started, finished: Unix times; wall_s: seconds
        spent computing. worker: ``host:pid`` of the process that computed it. sweeps: the
        sweeps of the store it belongs to. has_trajectory: whether arrays are stored.
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
        return int(self.config["seed"])


class SweepStore:
    """A results store file (created on first use unless ``create=False``).

    Use as a context manager, or call :meth:`close`. One object per process: it is not shared
    with workers (they never write to it) and must not be pickled.

    >>> import tempfile, pathlib
    >>> with SweepStore(pathlib.Path(tempfile.mkdtemp()) / "s.sqlite") as store:
    ...     store.counts()
    {'pending': 0, 'running': 0, 'done': 0, 'failed': 0}
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True,
                 timeout: float = 60.0):
        self.path = Path(path)
        self._con = _open(self.path, create=create, timeout=timeout)

    # -- lifecycle --------------------------------------------------------------------------------
    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

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
    def register_sweep(self, name: str, spec: Mapping[str, Any],
                       runs: Sequence[tuple[str, Mapping[str, Any]]], *,
                       resume: bool = False) -> int:
        """Record sweep ``name`` with its runs ``[(hash, config), ...]``; new runs start
        ``pending``. Returns how many runs were new to the store.

        Raises:
            SweepExistsError: the store already holds this sweep and ``resume`` is false.
            StoreError: the store holds a *different* sweep under this name.
        """
        hashes = [h for h, _ in runs]
        digest = hashlib.sha256("\n".join(hashes).encode()).hexdigest()
        now = time.time()
        with self._transaction() as con:
            row = con.execute("SELECT runs_digest, n_runs, package_version FROM sweeps "
                              "WHERE name = ?", (name,)).fetchone()
            if row is not None:
                if row[0] != digest:
                    raise StoreError(
                        f"{self.path} already holds a different sweep named {name!r} "
                        f"({row[1]} runs, xsam-theory {row[2]}; this spec has {len(runs)} runs, "
                        f"xsam-theory {__version__}): rename the sweep or use another store")
                if not resume:
                    counts = self._counts(con, name)
                    raise SweepExistsError(
                        f"{self.path} already holds sweep {name!r} ({counts['done']} of "
                        f"{row[1]} runs done, {counts['failed']} failed): resume it "
                        "(--resume / resume=True; finished runs are skipped, failed and "
                        "interrupted ones rerun) or use another store")
                return 0
            con.execute("INSERT INTO sweeps VALUES (?, ?, ?, ?, ?, ?)",
                        (name, json.dumps(dict(spec), sort_keys=True), digest, len(runs),
                         __version__, now))
            before = con.total_changes
            con.executemany(
                "INSERT OR IGNORE INTO runs (hash, config, status, created, package_version) "
                "VALUES (?, ?, 'pending', ?, ?)",
                [(h, json.dumps(dict(cfg), sort_keys=True, separators=(",", ":")), now,
                  cfg.get("package_version")) for h, cfg in runs])
            new = con.total_changes - before
            con.executemany("INSERT INTO sweep_runs VALUES (?, ?, ?)",
                            [(name, i, h) for i, h in enumerate(hashes)])
            return new

    def sweeps(self) -> list[dict[str, Any]]:
        """The sweeps in the store: name, number of runs, package version, creation time and
        the counts by status."""
        with self._guard():
            rows = self.con.execute("SELECT name, n_runs, package_version, created FROM sweeps "
                                    "ORDER BY created, name").fetchall()
            return [{"name": n, "n_runs": k, "package_version": v, "created": c,
                     **self._counts(self.con, n)} for n, k, v, c in rows]

    def spec(self, name: str) -> dict[str, Any]:
        """The spec a sweep was registered with."""
        with self._guard():
            row = self.con.execute("SELECT spec FROM sweeps WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise KeyError(f"no sweep named {name!r} in {self.path}")
        return json.loads(row[0])

    # -- claims and results -----------------------------------------------------------------
    def claim(self, hashes: Iterable[str], owner: str, *,
              lease_s: float = 600.0) -> tuple[list[str], list[str]]:
        """Claim runs for ``owner``: those pending, failed, or running under an owner that is
        gone (see :func:`owner_alive`). Returns ``(claimed, busy)``, ``busy`` being runs that a
        live owner is computing; done runs are in neither."""
        claimed: list[str] = []
        busy: list[str] = []
        now = time.time()
        hashes = list(hashes)
        with self._transaction() as con:
            for chunk in _chunks(hashes):
                rows = con.execute(
                    f"SELECT hash, status, owner, heartbeat FROM runs WHERE hash IN "
                    f"({','.join('?' * len(chunk))})", chunk).fetchall()
                state = {h: (s, o, hb) for h, s, o, hb in rows}
                for h in chunk:
                    if h not in state:
                        raise StoreError(f"run {h[:12]} is not in {self.path}; register its "
                                         "sweep first")
                    status, other, hb = state[h]
                    if status == "done":
                        continue
                    if status == "running" and other != owner and \
                            owner_alive(other, hb, lease_s=lease_s, now=now):
                        busy.append(h)
                        continue
                    claimed.append(h)
            con.executemany("UPDATE runs SET status = 'running', owner = ?, heartbeat = ?, "
                            "attempts = attempts + 1 WHERE hash = ?",
                            [(owner, now, h) for h in claimed])
        return claimed, busy

    def complete(self, output: Mapping[str, Any]) -> bool:
        """Store a run's output (from :func:`~xsam_theory.sweeps.worker.execute_run`) in one
        transaction. A run already ``done`` is left as it is (the first result wins; runs are
        deterministic). Returns whether the row was written."""
        if output["status"] not in ("done", "failed"):
            raise ValueError(f"output status must be 'done' or 'failed', got {output['status']!r}")
        results = json.dumps(output.get("results") or {}, sort_keys=True)
        with self._transaction() as con:
            cur = con.execute(
                "UPDATE runs SET status = ?, outcome = ?, message = ?, results = ?, "
                "trajectory = ?, started = ?, finished = ?, wall_s = ?, worker = ?, "
                "owner = NULL, heartbeat = NULL WHERE hash = ? AND status != 'done'",
                (output["status"], output.get("outcome"), output.get("message") or "", results,
                 output.get("trajectory"), output.get("started"), output.get("finished"),
                 output.get("wall_s"), output.get("worker"), output["hash"]))
            return cur.rowcount == 1

    def heartbeat(self, owner: str) -> None:
        """Refresh the heartbeat of ``owner``'s running claims."""
        with self._transaction() as con:
            con.execute("UPDATE runs SET heartbeat = ? WHERE owner = ? AND status = 'running'",
                        (time.time(), owner))

    def release(self, owner: str) -> int:
        """Put ``owner``'s unfinished claims back to ``pending``; returns how many."""
        with self._transaction() as con:
            cur = con.execute("UPDATE runs SET status = 'pending', owner = NULL, "
                              "heartbeat = NULL WHERE owner = ? AND status = 'running'", (owner,))
            return cur.rowcount

    def statuses(self, hashes: Iterable[str]) -> dict[str, str]:
        """``{hash: status}`` for the given runs (absent runs are left out)."""
        out: dict[str, str] = {}
        with self._guard():
            for chunk in _chunks(list(hashes)):
                out.update(self.con.execute(
                    f"SELECT hash, status FROM runs WHERE hash IN "
                    f"({','.join('?' * len(chunk))})", chunk).fetchall())
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
            rows = con.execute("SELECT r.status, COUNT(*) FROM sweep_runs s JOIN runs r "
                               "ON r.hash = s.hash WHERE s.sweep = ? GROUP BY r.status",
                               (sweep,)).fetchall()
        counts = dict.fromkeys(STATUSES, 0)
        counts.update(rows)
        return counts

    def records(self, sweep: str | None = None, *,
                status: str | Sequence[str] | None = None) -> list[RunRecord]:
        """The runs of one sweep (in the sweep's order) or of the whole store, as
        :class:`RunRecord`; ``status`` keeps only runs with that status (or those statuses)."""
        statuses = [status] if isinstance(status, str) else list(status or ())
        bad = [s for s in statuses if s not in STATUSES]
        if bad:
            raise ValueError(f"status must be among {STATUSES}, got {bad}")
        cols = ("r.hash, r.config, r.status, r.outcome, r.message, r.results, r.attempts, "
                "r.started, r.finished, r.wall_s, r.worker, r.trajectory IS NOT NULL")
        with self._guard():
            if sweep is None:
                rows = self.con.execute(f"SELECT {cols} FROM runs r ORDER BY r.rowid").fetchall()
            else:
                if self.con.execute("SELECT 1 FROM sweeps WHERE name = ?",
                                    (sweep,)).fetchone() is None:
                    names = [s["name"] for s in self.sweeps()]
                    raise KeyError(f"no sweep named {sweep!r} in {self.path}; it holds {names}")
                rows = self.con.execute(
                    f"SELECT {cols} FROM sweep_runs s JOIN runs r ON r.hash = s.hash "
                    "WHERE s.sweep = ? ORDER BY s.position", (sweep,)).fetchall()
            membership: dict[str, list[str]] = {}
            for h, name in self.con.execute("SELECT hash, sweep FROM sweep_runs "
                                            "ORDER BY sweep"):
                membership.setdefault(h, []).append(name)
        out = []
        for (h, config, st, outcome, message, results, attempts, started, finished, wall_s,
             worker, has_traj) in rows:
            if statuses and st not in statuses:
                continue
            out.append(RunRecord(
                hash=h, config=json.loads(config), status=st, outcome=outcome,
                message=message or "", results=json.loads(results) if results else {},
                attempts=attempts, started=started, finished=finished, wall_s=wall_s,
                worker=worker, sweeps=tuple(membership.get(h, ())),
                has_trajectory=bool(has_traj)))
        return out

    def trajectory(self, run: str | RunRecord) -> Trajectory:
        """The stored trajectory of a run (by hash, a unique hash prefix, or record)."""
        key = run.hash if isinstance(run, RunRecord) else str(run)
        with self._guard():
            rows = self.con.execute("SELECT hash, trajectory FROM runs WHERE hash LIKE ? "
                                    "LIMIT 2", (key.replace("%", "") + "%",)).fetchall()
        if not rows:
            raise KeyError(f"no run {key!r} in {self.path}")
        if len(rows) > 1:
            raise KeyError(f"hash prefix {key!r} is ambiguous in {self.path}")
        if rows[0][1] is None:
            raise KeyError(f"run {rows[0][0][:12]} has no stored trajectory (not done, or "
                           "store_trajectory = false)")
        return decode_trajectory(rows[0][1])

    def check(self) -> None:
        """Run SQLite's integrity check over the whole file; ``StoreError`` if it fails."""
        with self._guard():
            problems = [r[0] for r in self.con.execute("PRAGMA integrity_check").fetchall()]
        if problems != ["ok"]:
            raise StoreError(f"{self.path} is corrupted: {'; '.join(problems[:5])}")


# -- opening ------------------------------------------------------------------------------------

def _chunks(items: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i:i + _CHUNK]


def _store_error(path: Path, e: sqlite3.DatabaseError) -> StoreError:
    text = str(e)
    if isinstance(e, sqlite3.OperationalError) and "locked" in text:
        return StoreError(f"{path}: the store stayed locked by another process ({text})")
    if any(w in text for w in ("malformed", "not a database", "corrupt", "disk I/O")):
        return StoreError(f"{path} is corrupted or not an xsam-theory results store ({text}); "
                          "finished runs can be recomputed into a new store")
    return StoreError(f"{path}: {text}")


def _open(path: Path, *, create: bool, timeout: float) -> sqlite3.Connection:
    if path.is_dir():
        raise StoreError(f"{path} is a folder, not a results store file")
    if path.exists():
        with path.open("rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
        if head and head != _SQLITE_MAGIC:
            raise StoreError(f"{path} is not an xsam-theory results store: it is not an SQLite "
                             f"database (it starts with {head[:8]!r})")
    elif not create:
        raise StoreError(f"no results store at {path}")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = None
    try:
        con = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        _ensure_schema(con, path, create=create)
        mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{path}: could not switch the store to WAL mode (got {mode!r})")
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


def _ensure_schema(con: sqlite3.Connection, path: Path, *, create: bool) -> None:
    app_id = con.execute("PRAGMA application_id").fetchone()[0]
    if app_id == APPLICATION_ID:
        _check_version(con, path)
        return
    tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    if app_id != 0 or tables:
        raise StoreError(
            f"{path} is an SQLite database but not an xsam-theory results store "
            f"(application_id {app_id:#x}, tables {sorted(tables)[:8]})")
    if not create:
        raise StoreError(f"{path} is an empty database, not an xsam-theory results store")
    con.execute("BEGIN IMMEDIATE")
    try:
        # another process may have created the schema while we waited for the lock
        if con.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    con.execute(statement)
            con.execute("INSERT INTO meta VALUES ('schema_version', ?), ('created_by', ?)",
                        (str(SCHEMA_VERSION), f"xsam-theory {__version__}"))
            con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _check_version(con: sqlite3.Connection, path: Path) -> None:
    version = con.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path} was written by a newer xsam-theory (store schema {version}, "
                         f"this version reads {SCHEMA_VERSION}): upgrade xsam-theory")
    if version < 1:
        raise StoreError(f"{path} is an incomplete xsam-theory results store (schema version "
                         f"{version})")

