"""Thread pools: keep SciPy's BLAS from fighting torch for the cores (docs/performance.md#perf-T8).

When SciPy's ARPACK (``scipy.sparse.linalg.eigsh``) drives an operator whose HVPs run in torch,
two thread pools are live at once: the OpenBLAS that ARPACK calls for its vector updates, and
torch's OpenMP pool that runs the HVPs. OpenBLAS worker threads busy-wait for a while after each
call, so on a small machine they steal the cores torch needs: on 2 cores ``eigsh`` on a torch
operator is up to 3.4x (measured here: about 4x) slower than with OpenBLAS limited to one thread.
ARPACK's own BLAS work is level-1/2 on single vectors, which one thread does as fast, so the fix
costs nothing: :func:`limit_blas_for` limits the BLAS pools (threadpoolctl) whenever the operator
is not a NumPy one.

The same happens with NumPy operators when NumPy and SciPy each bring their own OpenBLAS (the
PyPI wheels do: ``numpy.libs/libscipy_openblas64_*`` and ``scipy.libs/libscipy_openblas*``):
two pools of spinning threads on two cores. Measured here, ARPACK on NumPy HVPs of the small
model ran at 88–181 ms per HVP unlimited and 6–119 ms with SciPy's own OpenBLAS at one thread
(interleaved, loaded machine). For NumPy operators only SciPy's *own* BLAS library is limited;
NumPy's, which computes the HVPs, keeps its threads (when both share one library nothing changes).

:func:`pool_info` reports the pools that are loaded (for benchmarks' environment records).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

__all__ = ["limit_blas_for", "pool_info", "scipy_drives_foreign_namespace"]

#: Environment variables that change how the BLAS / OpenMP pools behave; recorded by benchmarks.
POOL_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_VERBOSE",
    "OMP_WAIT_POLICY",
    "GOMP_SPINCOUNT",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
)


def scipy_drives_foreign_namespace(xp: ModuleType) -> bool:
    """Whether SciPy calling into operators of namespace ``xp`` mixes two thread pools.

    True for every namespace except NumPy's (and ``array_api_strict``, which computes with
    NumPy underneath).
    """
    name = getattr(xp, "__name__", "")
    return not (name.endswith("numpy") or name.startswith("array_api_strict"))


@contextlib.contextmanager
def limit_blas_for(xp: ModuleType, threads: int = 1) -> Iterator[None]:
    """Inside the block, limit the BLAS pools that would compete with the HVPs to ``threads``.

    The block is SciPy driving HVPs of namespace ``xp``.

    For torch operators every BLAS pool is limited (NumPy's and SciPy's OpenBLAS, not torch: the
    torch wheels link MKL statically and run on their own OpenMP pool, which threadpoolctl's
    ``blas`` API does not touch). For NumPy operators only the BLAS library that SciPy loaded
    for itself is limited, never NumPy's (its HVPs *are* BLAS calls and need every thread).
    """
    if scipy_drives_foreign_namespace(xp):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=threads, user_api="blas"):
            yield
        return
    libs = _scipy_only_blas()
    saved = [lib.num_threads for lib in libs]
    try:
        for lib in libs:
            lib.set_num_threads(threads)
        yield
    finally:
        for lib, n in zip(libs, saved):
            lib.set_num_threads(n)


_SCIPY_BLAS: list[Any] | None = None


def _scipy_only_blas() -> list[Any]:
    """The threadpoolctl controllers of the BLAS libraries in SciPy's installation, not NumPy's.

    Found once; loaded libraries do not change.
    """
    global _SCIPY_BLAS
    if _SCIPY_BLAS is None:
        import numpy
        import scipy
        from threadpoolctl import ThreadpoolController

        def roots(module: ModuleType) -> tuple[str, ...]:
            d = os.path.dirname(os.path.abspath(module.__file__ or ""))
            return (d + os.sep, d + ".libs" + os.sep)

        scipy_roots, numpy_roots = roots(scipy), roots(numpy)
        _SCIPY_BLAS = [
            lib
            for lib in ThreadpoolController().lib_controllers
            if lib.user_api == "blas"
            and os.path.abspath(lib.filepath).startswith(scipy_roots)
            and not os.path.abspath(lib.filepath).startswith(numpy_roots)
        ]
    return _SCIPY_BLAS


def pool_info() -> dict[str, Any]:
    """The loaded thread pools and the thread settings in force.

    The pools as threadpoolctl reports them, torch's thread counts if torch is imported, and the
    environment variables in :data:`POOL_ENV` that are set.
    """
    import sys

    from threadpoolctl import threadpool_info

    pools = [
        {
            key: info.get(key)
            for key in (
                "user_api",
                "internal_api",
                "num_threads",
                "version",
                "architecture",
                "threading_layer",
                "filepath",
            )
            if info.get(key) is not None
        }
        for info in threadpool_info()
    ]
    for p in pools:
        if "filepath" in p:
            p["filepath"] = os.path.basename(p["filepath"])
    out: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "pools": pools,
        "env": {k: os.environ[k] for k in POOL_ENV if k in os.environ},
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch_threads"] = torch.get_num_threads()
        out["torch_interop_threads"] = torch.get_num_interop_threads()
        out["torch_blas"] = "mkl" if torch.backends.mkl.is_available() else "other"
    return out
