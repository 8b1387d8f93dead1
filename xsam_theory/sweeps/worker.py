"""The work of one run, as a top-level function of plain data.

:func:`execute_run` takes a run configuration (a JSON-ready dict, see
:class:`~xsam_theory.sweeps.spec.RunConfig`) and returns a :class:`dict` of plain values and one
``bytes`` blob (the compressed trajectory). Executors ship the configuration, never a closure,
so the same function runs in-process, in a local process pool and on Dask workers, and gives
bit-identical results in all three.
"""

from __future__ import annotations

import io
import os
import socket
import threading
import time
import traceback
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from xsam_theory._version import __version__
from xsam_theory.backend import use_backend
from xsam_theory.optimizers.config import OptimizerConfig
from xsam_theory.sweeps.registry import (
    build_monitors,
    build_problem,
    extract_results,
    initial_point,
    problem_factory,
)
from xsam_theory.sweeps.spec import run_hash
from xsam_theory.trajectory import Trajectory, run_trajectory

__all__ = [
    "decode_trajectory",
    "encode_trajectory",
    "execute_run",
    "failed_output",
    "limit_blas_threads",
    "watch_driver",
    "worker_entry",
]

#: the longest failure message kept (the tail of the traceback)
MAX_MESSAGE = 4000
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def encode_trajectory(traj: Trajectory) -> bytes:
    """A trajectory as a compressed ``.npz`` blob (the layout of :meth:`Trajectory.save`).

    The blob is a function of the arrays alone — fixed zip timestamps, fixed member order — so
    equal trajectories give equal bytes.
    """
    arrays = traj.to_arrays()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, a in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, a, allow_pickle=False)
    return buf.getvalue()


def decode_trajectory(blob: bytes) -> Trajectory:
    """The :class:`Trajectory` an :func:`encode_trajectory` blob holds."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        return Trajectory.from_arrays(z, source="the blob")


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def failed_output(
    config_hash: str, message: str, *, started: float | None = None
) -> dict[str, Any]:
    """The output of a run that did not finish (an error, or a lost worker)."""
    now = time.time()
    return {
        "hash": config_hash,
        "status": "failed",
        "outcome": None,
        "message": message[-MAX_MESSAGE:],
        "results": {},
        "trajectory": None,
        "started": started if started is not None else now,
        "finished": now,
        "wall_s": now - started if started is not None else 0.0,
        "worker": _worker_name(),
        "package_version": __version__,
    }


def execute_run(config: Mapping[str, Any]) -> dict[str, Any]:
    """Run one configuration and return its output; never raises for a failing run.

    Returns:
        ``{"hash", "status": "done" | "failed", "outcome": "completed" | "diverged" | None,
        "message", "results": {column: number}, "trajectory": bytes | None, "started",
        "finished", "wall_s", "worker", "package_version"}``. A diverging run is ``done`` with
        outcome ``diverged`` (a result, kept); an exception makes it ``failed`` with the
        traceback in ``message``.
    """
    config_hash = run_hash(config)
    started = time.time()
    t0 = time.perf_counter()
    try:
        if config.get("package_version") != __version__:
            raise RuntimeError(
                f"this worker has xsam-theory {__version__}, the run was planned with "
                f"{config.get('package_version')}: install the same version on every worker"
            )
        if config.get("backend", "numpy") != "numpy":
            raise ValueError(f"sweeps run on the numpy backend, got {config.get('backend')!r}")
        with use_backend("numpy"):
            problem = build_problem(config["problem"])
            w0 = initial_point(
                problem,
                config["init"],
                config["seed"],
                default_init=problem_factory(config["problem"]["name"]).init,
            )
            traj = run_trajectory(
                problem,
                OptimizerConfig.from_dict(config["optimizer"]),
                w0,
                config["steps"],
                seed=config["seed"],
                batch_size=config["batch_size"],
                monitors=build_monitors(config["monitors"]),
                iterate_every=config["iterate_every"],
                on_nonfinite="stop",
            )
            with np.errstate(over="ignore", invalid="ignore"):
                results = extract_results(problem, traj, config["results"])
        blob = encode_trajectory(traj) if config.get("store_trajectory", True) else None
    except Exception:
        return failed_output(config_hash, traceback.format_exc(), started=started)
    return {
        "hash": config_hash,
        "status": "done",
        "outcome": traj.status,
        "message": traj.message,
        "results": results,
        "trajectory": blob,
        "started": started,
        "finished": time.time(),
        "wall_s": time.perf_counter() - t0,
        "worker": _worker_name(),
        "package_version": __version__,
    }


_blas_lock = threading.Lock()
_blas_limited = False


def limit_blas_threads(n: int = 1) -> bool:
    """Limit this process's BLAS/OpenMP pools to ``n`` threads (threadpoolctl), once.

    N worker processes on N cores then do not oversubscribe them. Returns whether threadpoolctl
    was available (without it the pools keep their defaults).
    """
    global _blas_limited
    with _blas_lock:
        if _blas_limited:
            return True
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return False
        threadpool_limits(limits=n)
        _blas_limited = True
        return True


def worker_entry(config: Mapping[str, Any]) -> dict[str, Any]:
    """What pool and Dask workers call: :func:`limit_blas_threads` then :func:`execute_run`."""
    limit_blas_threads(1)
    return execute_run(config)


def watch_driver(driver_alive: Any) -> None:
    """Pool initializer: end this worker process as soon as its driver is gone.

    ``driver_alive`` is the read end of a pipe (a :class:`multiprocessing.connection.Connection`)
    whose write end only the driver holds and never writes to. A daemon thread blocks on it; the
    read returns end-of-file when the driver closes the pipe or dies in any way (SIGKILL
    included), and the thread then ends the process with :func:`os._exit`, even in the middle
    of a run. The parent process cannot serve as the signal: under ``forkserver`` the workers'
    parent is the fork server, which outlives the driver for as long as the workers do.
    """
    threading.Thread(
        target=_exit_at_end_of_file, args=(driver_alive,), name="xsam-driver-watchdog", daemon=True
    ).start()


def _exit_at_end_of_file(driver_alive: Any) -> None:
    try:
        while True:
            driver_alive.recv_bytes()  # the driver sends nothing: this returns only at EOF
    except (EOFError, OSError):
        pass
    os._exit(1)
