"""Where runs execute: in this process, in a local process pool, or on Dask distributed.

An executor is a context manager with one method, :meth:`Executor.map_unordered`, which takes
run configurations (plain dicts) and yields each run's output dict as it finishes — or ``None``
every ``tick`` seconds while it waits, so the caller can refresh its progress bar and its claims.
Each executor calls the same top-level function,
:func:`~xsam_theory.sweeps.worker.worker_entry`, which limits the worker's BLAS threads to one
and runs :func:`~xsam_theory.sweeps.worker.execute_run`. A lost worker is never a silent gap: its
runs are rerun, and a run that keeps killing its worker comes back as ``failed`` with a message.
Local workers exit by themselves when their driver process dies (SIGKILL included), and leaving
a :class:`LocalExecutor` while runs are in flight (Ctrl-C) ends its workers at once. Workers that
cannot start at all raise :class:`WorkerImportError` naming the import that failed (a file in
the working directory that shadows a standard-library module, for instance).

Dask is optional and imported only by :class:`DaskExecutor`. What a lost worker costs:
docs/reliability.md.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import re
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from xsam_theory.sweeps.spec import run_hash
from xsam_theory.sweeps.worker import execute_run, failed_output, watch_driver, worker_entry

__all__ = [
    "DaskExecutor",
    "Executor",
    "LocalExecutor",
    "SchedulerUnreachableError",
    "WorkerImportError",
    "available_cores",
    "make_executor",
]


class WorkerImportError(ImportError):
    """The worker processes of a local pool could not start.

    Importing the package failed in a new Python process (a module in the working directory
    shadowing a standard-library one, or a broken environment). The message names the failing
    import and any shadowing files.
    """


class SchedulerUnreachableError(ConnectionError, ValueError):
    """No Dask scheduler answered at the given address within the connect timeout.

    It is a :class:`ConnectionError`, and a :class:`ValueError` as the address given is
    unusable.
    """


def available_cores() -> int:
    """The cores this process may use (its CPU affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


class Executor(ABC):
    """Runs configurations and yields their outputs as they finish (see the module docstring)."""

    tick: float = 0.5

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:  # noqa: B027 - optional hook; executors without resources skip it
        """Release workers and connections."""

    @abstractmethod
    def map_unordered(
        self, configs: Sequence[Mapping[str, Any]]
    ) -> Iterator[dict[str, Any] | None]:
        """Yield one output per configuration, in completion order, and ``None`` on idle ticks."""

    @abstractmethod
    def describe(self) -> str:
        """A few words for the progress line, e.g. ``2 local processes``."""


class LocalExecutor(Executor):
    """A local process pool of ``workers`` processes (default: the available cores).

    ``workers=1`` runs in this process, with BLAS limited to one thread for the duration, which
    is what a debugger wants. Worker processes are started with ``forkserver`` where the
    platform has it (``spawn`` elsewhere), never ``fork``: the driver may hold threads and
    locks. As with any ``spawn``-style pool, a script that drives a sweep must guard its entry
    point with ``if __name__ == "__main__":``.

    Each worker watches a pipe held open by this process (:func:`~xsam_theory.sweeps.worker.
    watch_driver`) and exits when it closes: when the driver dies, however it dies, its workers
    follow within moments, and with them the fork server and the resource tracker. Closing the
    executor while runs are still in flight (the consumer stopped, Ctrl-C) terminates the
    workers instead of waiting for their runs.
    """

    def __init__(
        self, workers: int | None = None, *, tick: float = 0.5, mp_context: str | None = None
    ):
        if workers is not None and (
            isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
        ):
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        self.workers = workers or available_cores()
        self.tick = tick
        methods = multiprocessing.get_all_start_methods()
        self.mp_context = mp_context or ("forkserver" if "forkserver" in methods else "spawn")
        self._pool: ProcessPoolExecutor | None = None
        self._driver_alive: Any = None  # the write end of the pipe the workers watch
        self._inflight: dict[Future[dict[str, Any]], str] = {}

    def describe(self) -> str:
        """``this process`` for one worker, else ``N local processes``."""
        if self.workers == 1:
            return "this process"
        return f"{self.workers} local processes"

    def close(self) -> None:
        """Shut the pool down.

        Waits for idle workers to exit, or terminates them when runs are still in flight
        (nobody will read their outputs).
        """
        if any(not f.done() for f in self._inflight):
            self._terminate_pool()
        elif self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._release_workers()

    def _new_pool(self) -> ProcessPoolExecutor:
        ctx = multiprocessing.get_context(self.mp_context)
        if self.mp_context == "forkserver":
            ctx.set_forkserver_preload(["xsam_theory.sweeps.worker"])
        self._release_workers()
        watched, self._driver_alive = ctx.Pipe(duplex=False)
        return ProcessPoolExecutor(
            max_workers=self.workers, mp_context=ctx, initializer=watch_driver, initargs=(watched,)
        )

    def _release_workers(self) -> None:
        """Close the pipe the workers watch: those still alive exit."""
        if self._driver_alive is not None:
            self._driver_alive.close()
            self._driver_alive = None

    def _terminate_pool(self) -> None:
        """End the workers now, runs in flight included, and shut the pool down."""
        pool, self._pool = self._pool, None
        self._inflight = {}
        self._release_workers()
        if pool is None:
            return
        processes = getattr(pool, "_processes", None) or {}  # pid -> Process (CPython)
        for process in list(processes.values()):
            if process.is_alive():
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, config: Mapping[str, Any]) -> Future[dict[str, Any]]:
        """Hand one run to the pool; a pool that cannot start a process is diagnosed."""
        try:
            return self._pool.submit(worker_entry, config)  # type: ignore[union-attr]
        except BrokenProcessPool as e:  # a worker died since the last wait: a loss, as below
            lost: Future[dict[str, Any]] = Future()
            lost.set_exception(e)
            return lost
        except (EOFError, ConnectionError) as e:  # the fork server died while starting
            self._terminate_pool()
            raise (
                _start_failure()
                or RuntimeError(
                    f"the worker processes could not start ({type(e).__name__}: {e}); "
                    "workers=1 (--workers 1) runs in this process"
                )
            ) from e

    def map_unordered(
        self, configs: Sequence[Mapping[str, Any]]
    ) -> Iterator[dict[str, Any] | None]:
        """Each run's output as it finishes, or ``None`` every ``tick`` seconds of waiting.

        Runs of a worker that died are rerun (see :meth:`_lost`); runs still in flight when
        the consumer stops are ended with their workers.
        """
        if self.workers == 1:
            yield from _serial(configs)
            return
        by_hash = {run_hash(c): c for c in configs}
        runs = _Dispatch(by_hash, deque(by_hash))
        self._inflight = runs.inflight  # what close() finds still running
        try:
            while runs.queue or runs.suspects or runs.inflight:
                self._dispatch(runs)
                done, _ = wait(runs.inflight, timeout=self.tick, return_when=FIRST_COMPLETED)
                if not done:
                    yield None
                    continue
                outputs, broken = _collect(done, runs.inflight)
                for out in outputs:
                    runs.received = True
                    yield out
                if broken:
                    yield from self._lost(runs)
        finally:
            if any(not f.done() for f in runs.inflight):  # the consumer stopped early, or
                self._terminate_pool()  # Ctrl-C: nobody will read these runs; end them now
            self._inflight = {}

    def _dispatch(self, runs: _Dispatch) -> None:
        """Start a pool if there is none; then a suspect alone, or queued runs on free workers.

        A suspect (a run in flight when a worker died) runs only when nothing else is in
        flight, and nothing is submitted while it runs or while suspects wait.
        """
        if self._pool is None:
            self._pool = self._new_pool()
        if runs.suspects and not runs.inflight:
            h = runs.suspects.popleft()
            runs.inflight[self._submit(runs.by_hash[h])] = h
            runs.alone = True
        while runs.queue and not runs.suspects and len(runs.inflight) < self.workers:
            h = runs.queue.popleft()
            runs.inflight[self._submit(runs.by_hash[h])] = h
            runs.alone = False

    def _lost(self, runs: _Dispatch) -> Iterator[dict[str, Any]]:
        """Handle a worker that died and took the pool with it.

        Yields what finished, drops the pool (the next dispatch starts a new one) and makes
        the runs that were in flight suspects, to rerun one at a time; a run that kills its
        worker when it runs alone comes back as ``failed``. When no run has finished in this
        call, the workers may not be able to start at all: :func:`_start_failure` says why.

        Raises:
            WorkerImportError: The workers cannot import the package.
            RuntimeError: The ``__main__`` script lacks its ``if __name__ == "__main__":`` guard.
        """
        lost = []
        for f, h in runs.inflight.items():
            if f.done() and not f.cancelled() and f.exception() is None:
                yield f.result()
            else:
                lost.append(h)
        runs.inflight.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._release_workers()
        if not runs.received and not runs.alone:
            failure = _start_failure()
            if failure is not None:
                raise failure
        for h in lost:
            if runs.alone:
                yield failed_output(
                    h,
                    "its worker process died while it ran alone (killed, "
                    "or out of memory?); see the system log",
                )
            else:
                runs.suspects.append(h)


@dataclass
class _Dispatch:
    """The runs of one :meth:`LocalExecutor.map_unordered` call and where each one is.

    Attributes:
        by_hash: Each run's configuration, by run hash.
        queue: Runs not yet submitted.
        suspects: Runs that were in flight when a worker died, to rerun one at a time.
        inflight: The submitted runs, by future (the dictionary ``close()`` inspects).
        alone: Whether the one run in flight is a suspect, isolated.
        received: Whether some run finished in this call (so the workers can start).
    """

    by_hash: dict[str, Mapping[str, Any]]
    queue: deque[str]
    suspects: deque[str] = field(default_factory=deque)
    inflight: dict[Future[dict[str, Any]], str] = field(default_factory=dict)
    alone: bool = False
    received: bool = False


def _collect(
    done: set[Future[dict[str, Any]]], inflight: dict[Future[dict[str, Any]], str]
) -> tuple[list[dict[str, Any]], bool]:
    """The outputs of the finished futures ``done``, taken out of ``inflight``.

    Args:
        done: Futures that finished.
        inflight: The futures in flight, mapped to their run hashes.

    Returns:
        ``(outputs, broken)``: one output per run that finished (a ``failed`` output for an
        error outside the run itself, such as pickling), and whether the pool broke (a worker
        died); the futures the broken pool took stay in ``inflight``.
    """
    outputs, broken = [], False
    for f in done:
        h = inflight.pop(f)
        try:
            outputs.append(f.result())
        except BrokenProcessPool:
            broken = True
            inflight[f] = h  # lost with the others (LocalExecutor._lost)
        except Exception as e:  # an error outside execute_run (pickling, ...)
            outputs.append(failed_output(h, f"executor error: {type(e).__name__}: {e}"))
    return outputs, broken


#: run by :func:`_start_failure` in a new interpreter started the way the pool starts one
#: (``python -c``: the working directory heads ``sys.path``, the driver's path follows); prints
#: one tab-separated line: a marker, the failed import's exception (or nothing), and the
#: files it loaded from the working directory
_IMPORT_PROBE = """\
import os, sys
sys.path += [p for p in os.environ.get("XSAM_DRIVER_PATH", "").split(os.pathsep)
             if p and p not in sys.path]
error, files = "", []
try:
    import multiprocessing.connection, xsam_theory.sweeps.worker
except BaseException as e:
    error = (type(e).__name__ + ": " + str(e)).replace("\\t", " ").replace("\\n", " ")
    tb = e.__traceback__
    while tb is not None:  # a module that raised is no longer in sys.modules
        files.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
files += [m.__file__ for name, m in list(sys.modules.items())
          if "." not in name and name != "xsam_theory" and getattr(m, "__file__", None)]
here = os.path.realpath(os.getcwd()) + os.sep
local = sorted({os.path.realpath(f) for f in files if os.path.isfile(f)
                and os.path.realpath(f).startswith(here)
                and not os.path.realpath(f).startswith(here + "xsam_theory" + os.sep)})
print("\\nxsam-import-probe\\t" + error + "\\t" + "\\t".join(local))
"""

_MAIN_GUARD = re.compile(r"""__name__\s*==\s*['"]__main__['"]|['"]__main__['"]\s*==\s*__name__""")


def _start_failure(timeout: float = 60.0) -> Exception | None:
    """Why worker processes died before finishing any run, when a cause can be named.

    Else ``None`` (the runs themselves killed them: rerun them one at a time).

    Imports the package in a new interpreter started the way the pool starts its processes
    (in this working directory, which heads its ``sys.path``): a failure is a
    :class:`WorkerImportError` naming the exception and the files of the working directory
    that the new process imported in place of modules of the same name. Otherwise, a
    ``__main__`` script without an ``if __name__ == "__main__":`` guard (its workers rerun it
    at import; a package's ``__main__.py`` is never rerun) is a :class:`RuntimeError` saying so.
    """
    cwd = os.getcwd()
    env = {**os.environ, "XSAM_DRIVER_PATH": os.pathsep.join(p for p in sys.path if p)}
    try:
        probe = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        error, shadowing = _parse_probe(probe.stdout, probe.returncode, probe.stderr)
    except (OSError, subprocess.SubprocessError):
        error, shadowing = "", []
    if error:
        return WorkerImportError(_import_failure_message(cwd, error, shadowing))
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if main_file and os.path.basename(main_file) != "__main__.py" and _lacks_main_guard(main_file):
        return RuntimeError(
            f"the worker processes died before finishing any run: {main_file} starts a sweep "
            "when it is imported, and every worker process imports it. Guard its entry point "
            'with `if __name__ == "__main__":`; workers=1 runs in this process'
        )
    return None


def _parse_probe(stdout: str, returncode: int, stderr: str) -> tuple[str, list[str]]:
    """``(the failed import's exception or "", files loaded from the working directory)``."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("xsam-import-probe\t"):
            error, *shadowing = line.split("\t")[1:]
            return error, [f for f in shadowing if f]
    if returncode != 0:  # the probe itself could not run (a shadowed os or sys?)
        lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
        return (lines[-1] if lines else f"exit status {returncode}"), []
    return "", []


def _import_failure_message(cwd: str, error: str, shadowing: Sequence[str]) -> str:
    message = (
        f"the worker processes could not start: importing xsam_theory in a new Python "
        f"process in {cwd} failed with {error}"
    )
    if not shadowing:
        return (
            message + '. Check that `python -c "import xsam_theory.sweeps.worker"` '
            "works in that directory; workers=1 (--workers 1) runs in this process"
        )
    modules = ", ".join(_module_name(f) for f in shadowing)
    files = "that file" if len(shadowing) == 1 else "those files"
    return (
        message + f". It imported {', '.join(shadowing)} from the working directory (which "
        f"heads a new process's sys.path) in place of the module(s) {modules} of the "
        f"standard library or an installed package: rename or move {files}, or run from "
        "another directory"
    )


def _module_name(path: str) -> str:
    """``numbers`` for ``.../numbers.py`` and for ``.../numbers/__init__.py``."""
    name = os.path.basename(path)
    if name.startswith("__init__."):
        return os.path.basename(os.path.dirname(path))
    return name.split(".")[0]


def _lacks_main_guard(path: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return _MAIN_GUARD.search(f.read()) is None
    except OSError:
        return False


def _serial(configs: Sequence[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is in the sweeps extra
        for cfg in configs:
            yield execute_run(cfg)
        return
    for cfg in configs:
        with threadpool_limits(limits=1):
            out = execute_run(cfg)
        yield out


class DaskExecutor(Executor):
    """Dask distributed: a scheduler, an existing client, or a local cluster.

    The runs go to a scheduler at ``address`` (``tcp://host:port``), an existing ``client``, or
    else a :class:`distributed.LocalCluster` of ``n_workers`` single-threaded workers
    (``processes=False`` keeps them as threads of this process, for tests).

    Tasks are keyed by the run hash, carry only the configuration, and call the importable
    :func:`~xsam_theory.sweeps.worker.worker_entry`; the workers must have the same
    xsam-theory version installed (a run on a mismatched worker fails with a message saying
    so). When a worker dies, the scheduler reruns its tasks elsewhere; a task that kills
    workers repeatedly comes back as ``failed``.

    Entering the executor (``with DaskExecutor(...)``) connects at once. A scheduler that does
    not answer within ``connect_timeout`` seconds is a :class:`SchedulerUnreachableError`
    naming the address.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        n_workers: int | None = None,
        processes: bool = True,
        client: Any = None,
        tick: float = 0.5,
        poll: float = 0.02,
        connect_timeout: float = 5.0,
    ):
        if sum(x is not None for x in (address, client)) > 1:
            raise ValueError("give a scheduler address or a client, not both")
        if n_workers is not None and (
            isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1
        ):
            raise ValueError(f"n_workers must be an integer >= 1, got {n_workers!r}")
        if (
            isinstance(connect_timeout, bool)
            or not isinstance(connect_timeout, (int, float))
            or not math.isfinite(connect_timeout)
            or connect_timeout <= 0
        ):
            raise ValueError(
                f"connect_timeout must be a positive number of seconds, got {connect_timeout!r}"
            )
        self.connect_timeout = float(connect_timeout)
        self.address = address
        self.n_workers = n_workers
        self.processes = processes
        self.tick = tick
        self.poll = poll
        self._client = client
        self._owns_client = False
        self._cluster: Any = None

    def describe(self) -> str:
        """The scheduler address, ``Dask client``, or the LocalCluster and its workers."""
        if self.address:
            return f"Dask scheduler {self.address}"
        if self._client is not None and self._cluster is None:
            return "Dask client"
        kind = "processes" if self.processes else "threads"
        return f"Dask LocalCluster ({self.n_workers or available_cores()} worker {kind})"

    def __enter__(self) -> DaskExecutor:
        self.client  # noqa: B018 - connect (or start the cluster) before any work
        return self

    @property
    def client(self) -> Any:
        """The :class:`distributed.Client`, connecting or starting a cluster on first use."""
        if self._client is None:
            distributed = _import_distributed()
            if self.address is not None:
                self._client = _connect(distributed, self.address, self.connect_timeout)
            else:
                self._cluster = distributed.LocalCluster(
                    n_workers=self.n_workers or available_cores(),
                    threads_per_worker=1,
                    processes=self.processes,
                    dashboard_address=":0",
                )
                self._client = distributed.Client(self._cluster)
            self._owns_client = True
        return self._client

    def close(self) -> None:
        """Close the client and the LocalCluster if this executor opened them."""
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def map_unordered(
        self, configs: Sequence[Mapping[str, Any]]
    ) -> Iterator[dict[str, Any] | None]:
        """Submit one task per configuration, keyed by its run hash, and yield the outputs.

        Outputs come in completion order, with ``None`` on idle ticks; a task that raised (a
        killed worker, a cancellation, a lost connection) yields a ``failed`` output.
        """
        if not configs:
            return
        distributed = _import_distributed()
        client = self.client
        futures = {}
        for cfg in configs:
            h = run_hash(cfg)
            futures[client.submit(worker_entry, dict(cfg), key=f"xsam-run-{h}", pure=False)] = h
        ac = distributed.as_completed(list(futures))
        last = time.monotonic()
        try:
            while not ac.is_empty():
                batch = ac.next_batch(block=False)
                if not batch:
                    if time.monotonic() - last >= self.tick:
                        last = time.monotonic()
                        yield None
                    time.sleep(self.poll)
                    continue
                for f in batch:
                    h = futures[f]
                    try:
                        out = f.result()
                    except Exception as e:  # KilledWorker, CancelledError, communication
                        out = failed_output(h, f"dask: {type(e).__name__}: {e}")
                    f.release()
                    yield out
        finally:
            for f in futures:
                if not f.done():
                    f.cancel()


def _connect(distributed: Any, address: str, timeout: float) -> Any:
    """A :class:`distributed.Client` of the scheduler at ``address``.

    Raises:
        SchedulerUnreachableError: When no scheduler answered within ``timeout`` seconds.
    """
    try:
        return distributed.Client(address, timeout=timeout)
    except OSError as e:  # a refused or timed-out connection, an unknown host
        raise SchedulerUnreachableError(
            f"no Dask scheduler answered at {address} within {timeout:g} s ({e}): start one "
            "(`dask scheduler`) and give the address it prints, or check the host and port"
        ) from e


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as e:
        raise ImportError(
            "the Dask executor needs dask.distributed: "
            "pip install 'xsam-theory[sweeps]' (or 'dask[distributed]')"
        ) from e
    return distributed


def make_executor(
    workers: int | None = None, *, dask_local: int | None = None, scheduler: str | None = None
) -> Executor:
    """The executor the CLI options describe.

    ``scheduler`` (a Dask address), ``dask_local`` (a LocalCluster of that many workers), or
    else a local pool of ``workers`` processes.
    """
    given = [
        name
        for name, v in (("workers", workers), ("dask_local", dask_local), ("scheduler", scheduler))
        if v is not None
    ]
    if len(given) > 1:
        raise ValueError(f"choose one executor, got {given}")
    if scheduler is not None:
        return DaskExecutor(scheduler)
    if dask_local is not None:
        return DaskExecutor(n_workers=dask_local)
    return LocalExecutor(workers)
