"""Where runs execute: in this process, in a local process pool, or on Dask distributed.

An executor is a context manager with one method, :meth:`Executor.map_unordered`, which takes
run configurations (plain dicts) and yields each run's output dict as it finishes — or ``None``
every ``tick`` seconds while it waits, so the caller can refresh its progress bar and its claims.
Each executor calls the same top-level function,
:func:`~xsam_theory.sweeps.worker.worker_entry`, which limits the worker's BLAS threads to one
and runs :func:`~xsam_theory.sweeps.worker.execute_run`. A lost worker is never a silent gap: its
runs are rerun, and a run that keeps killing its worker comes back as ``failed`` with a message.

Dask is optional and imported only by :class:`DaskExecutor`.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from xsam_theory.sweeps.spec import run_hash
from xsam_theory.sweeps.worker import execute_run, failed_output, worker_entry

__all__ = ["DaskExecutor", "Executor", "LocalExecutor", "available_cores", "make_executor"]

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
    def map_unordered(self, configs: Sequence[Mapping[str, Any]]
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
    """

    def __init__(self, workers: int | None = None, *, tick: float = 0.5,
                 mp_context: str | None = None):
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                    or workers < 1):
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        self.workers = workers or available_cores()
        self.tick = tick
        methods = multiprocessing.get_all_start_methods()
        self.mp_context = mp_context or ("forkserver" if "forkserver" in methods else "spawn")
        self._pool: ProcessPoolExecutor | None = None

    def describe(self) -> str:
        if self.workers == 1:
            return "this process"
        return f"{self.workers} local processes"

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _new_pool(self) -> ProcessPoolExecutor:
        ctx = multiprocessing.get_context(self.mp_context)
        if self.mp_context == "forkserver":
            ctx.set_forkserver_preload(["xsam_theory.sweeps.worker"])
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx)

    def map_unordered(self, configs: Sequence[Mapping[str, Any]]
                      ) -> Iterator[dict[str, Any] | None]:
        if self.workers == 1:
            yield from _serial(configs)
            return
        by_hash = {run_hash(c): c for c in configs}
        queue, suspects = deque(by_hash), deque()
        inflight: dict[Future[dict[str, Any]], str] = {}
        alone = False  # the one run in flight is a suspect, isolated
        received = False  # some run finished in this call: the workers can start
        try:
            while queue or suspects or inflight:
                if self._pool is None:
                    self._pool = self._new_pool()
                if suspects and not inflight:
                    h = suspects.popleft()
                    inflight[self._pool.submit(worker_entry, by_hash[h])] = h
                    alone = True
                while queue and not suspects and len(inflight) < self.workers:
                    h = queue.popleft()
                    inflight[self._pool.submit(worker_entry, by_hash[h])] = h
                    alone = False
                done, _ = wait(inflight, timeout=self.tick, return_when=FIRST_COMPLETED)
                if not done:
                    yield None
                    continue
                broken = False
                for f in done:
                    h = inflight.pop(f)
                    try:
                        out = f.result()
                    except BrokenProcessPool:
                        broken = True
                        inflight[f] = h  # lost with the others, below
                        continue
                    except Exception as e:  # an error outside execute_run (pickling, ...)
                        out = failed_output(h, f"executor error: {type(e).__name__}: {e}")
                    received = True
                    yield out
                if broken:
                    yield from self._lost(inflight, suspects, alone, received)
        finally:
            for f in inflight:  # the consumer stopped early: drop the work in flight
                f.cancel()

    def _lost(self, inflight: dict[Future[dict[str, Any]], str], suspects: deque[str],
              alone: bool, received: bool) -> Iterator[dict[str, Any]]:
        """A worker died and took the pool with it: keep what finished, restart the pool, and
        rerun the runs that were in flight one at a time; a run that kills its worker when it
        runs alone fails."""
        lost = []
        for f, h in inflight.items():
            if f.done() and not f.cancelled() and f.exception() is None:
                yield f.result()
            else:
                lost.append(h)
        inflight.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        if not received and not alone:
            raise RuntimeError(
                "the worker processes died before finishing any run (see their traceback "
                "above). A script that drives a sweep must be an importable file whose entry "
                "point is guarded by `if __name__ == \"__main__\":`; workers=1 runs in this "
                "process")
        for h in lost:
            if alone:
                yield failed_output(h, "its worker process died while it ran alone (killed, "
                                       "or out of memory?); see the system log")
            else:
                suspects.append(h)


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
    """Dask distributed: a scheduler at ``address`` (``tcp://host:port``), an existing
    ``client``, or else a :class:`distributed.LocalCluster` of ``n_workers`` single-threaded
    workers (``processes=False`` keeps them as threads of this process, for tests).

    Tasks are keyed by the run hash, carry only the configuration, and call the importable
    :func:`~xsam_theory.sweeps.worker.worker_entry`; the workers must have the same
    xsam-theory version installed (a run on a mismatched worker fails with a message saying
    so). When a worker dies, the scheduler reruns its tasks elsewhere; a task that kills
    workers repeatedly comes back as ``failed``.
    """

    def __init__(self, address: str | None = None, *, n_workers: int | None = None,
                 processes: bool = True, client: Any = None, tick: float = 0.5,
                 poll: float = 0.02):
        if sum(x is not None for x in (address, client)) > 1:
            raise ValueError("give a scheduler address or a client, not both")
        if n_workers is not None and (isinstance(n_workers, bool) or
                                      not isinstance(n_workers, int) or n_workers < 1):
            raise ValueError(f"n_workers must be an integer >= 1, got {n_workers!r}")
        self.address = address
        self.n_workers = n_workers
        self.processes = processes
        self.tick = tick
        self.poll = poll
        self._client = client
        self._owns_client = False
        self._cluster: Any = None

    def describe(self) -> str:
        if self.address:
            return f"Dask scheduler {self.address}"
        if self._client is not None and self._cluster is None:
            return "Dask client"
        kind = "processes" if self.processes else "threads"
        return f"Dask LocalCluster ({self.n_workers or available_cores()} worker {kind})"

    @property
    def client(self) -> Any:
        """The :class:`distributed.Client`, connecting or starting a cluster on first use."""
        if self._client is None:
            distributed = _import_distributed()
            if self.address is not None:
                self._client = distributed.Client(self.address)
            else:
                self._cluster = distributed.LocalCluster(
                    n_workers=self.n_workers or available_cores(), threads_per_worker=1,
                    processes=self.processes, dashboard_address=":0")
                self._client = distributed.Client(self._cluster)
            self._owns_client = True
        return self._client

    def close(self) -> None:
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def map_unordered(self, configs: Sequence[Mapping[str, Any]]
                      ) -> Iterator[dict[str, Any] | None]:
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


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as e:
        raise ImportError("the Dask executor needs dask.distributed: "
                          "pip install 'xsam-theory[sweeps]' (or 'dask[distributed]')") from e
    return distributed


def make_executor(workers: int | None = None, *, dask_local: int | None = None,
                  scheduler: str | None = None) -> Executor:
    """The executor the CLI options describe: ``scheduler`` (a Dask address), ``dask_local``
    (a LocalCluster of that many workers), or else a local pool of ``workers`` processes."""
    given = [name for name, v in (("workers", workers), ("dask_local", dask_local),
                                  ("scheduler", scheduler)) if v is not None]
    if len(given) > 1:
        raise ValueError(f"choose one executor, got {given}")
    if scheduler is not None:
        return DaskExecutor(scheduler)
    if dask_local is not None:
        return DaskExecutor(n_workers=dask_local)
    return LocalExecutor(workers)
