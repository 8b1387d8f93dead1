"""Sections ``threads`` (BLAS pools under ARPACK, T8) and ``verify`` (its wall time, T7)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from xsam_theory.bench.config import MINIBATCH, torch_or_none
from xsam_theory.bench.keys import Kernel, Library, label
from xsam_theory.bench.problem import reference_problem
from xsam_theory.bench.report import Report, key_row, timed_row
from xsam_theory.bench.timing import interleaved

__all__ = ["bench_threads", "bench_verify"]


def _points(model: str) -> dict[Library, Any]:
    """The minibatch point of ``model`` at init on NumPy and (if installed) torch.

    Each point's gradient is computed, so its HVPs reuse the caches.
    """
    problem = reference_problem(model)
    w = np.asarray(problem.init_params(1))
    points = {Library.NUMPY: problem.at(w, np.arange(MINIBATCH))}
    torch = torch_or_none()
    if torch is not None:
        import array_api_compat.torch as xpt

        points[Library.TORCH] = problem.convert(xpt).at(torch.tensor(w), torch.arange(MINIBATCH))
    for point in points.values():
        point.grad  # noqa: B018
    return points


def _eigsh(point: Any, limited: bool) -> Callable[[], None]:
    """ARPACK's top eigenpair (``tol=1e-6``) of ``point``'s Hessian.

    ``limited`` keeps the package's BLAS limit; otherwise ``limit_blas_for`` is swapped for a
    no-op for the call, so every pool runs unlimited.
    """
    import importlib

    from xsam_theory.spectral import HessianOperator, lanczos_eigsh

    lanczos_module = importlib.import_module("xsam_theory.spectral.lanczos")

    def run() -> None:
        op = HessianOperator.from_point(point)
        if limited:
            lanczos_eigsh(op, 1, tol=1e-6)
            return
        saved = lanczos_module.limit_blas_for
        lanczos_module.limit_blas_for = lambda xp: contextlib.nullcontext()
        try:
            lanczos_eigsh(op, 1, tol=1e-6)
        finally:
            lanczos_module.limit_blas_for = saved

    return run


def bench_threads(report: Report, out: Callable[[str], None]) -> None:
    """ARPACK driving torch and NumPy HVPs, with the BLAS limit (the default) and without (T8)."""
    cfg = report.config
    if cfg.cuda:
        return
    model = "small" if any(m != "tiny" for m in cfg.models) else "tiny"
    points = _points(model)
    contenders = {}
    for lib, point in points.items():
        contenders[(lib, Kernel.EIGSH_LIMITED)] = _eigsh(point, True)
        contenders[(lib, Kernel.EIGSH_UNLIMITED)] = _eigsh(point, False)
    times = interleaved(contenders, max(2, cfg.repeats // 2 + 1), warmup=1)
    out(f"  {model}, batch {MINIBATCH}, ARPACK tol=1e-6")
    for (lib, kernel), t in times.items():
        report.add("threads", timed_row(lib, kernel, t, model=model, batch=MINIBATCH))
        out(f"    {label(lib, kernel):<46} {t}")
    for lib in points:
        ratio = (
            times[(lib, Kernel.EIGSH_UNLIMITED)].median / times[(lib, Kernel.EIGSH_LIMITED)].median
        )
        report.add("threads", key_row(lib, Kernel.EIGSH_UNLIMITED_OVER_LIMITED, ratio=ratio))
        out(f"    {lib.value}: unlimited / limited = {ratio:.2f}x")


def bench_verify(report: Report, out: Callable[[str], None]) -> None:
    """Wall time of ``xsam-theory verify --quick`` in a subprocess (full runs only; T7)."""
    cfg = report.config
    if cfg.quick:
        return
    cmd = list(
        cfg.verify_command
        or [sys.executable, "-m", "xsam_theory", "verify", "--quick", "--quiet", "--out"]
    )
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        proc = subprocess.run([*cmd, tmp], capture_output=True, text=True, check=False)
        dt = time.perf_counter() - t0
    report.add(
        "verify", key_row(None, Kernel.VERIFY_QUICK, seconds=dt, exit_status=proc.returncode)
    )
    out(f"    xsam-theory verify --quick: {dt:.1f} s (exit status {proc.returncode})")
