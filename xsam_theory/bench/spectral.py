"""Sections ``eigen`` (λ_max at init, T3) and ``hessian`` (the exact Hessian of tiny, T4)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from xsam_theory.bench.config import MINIBATCH, N_SAMPLES, BenchConfig
from xsam_theory.bench.keys import Kernel, label
from xsam_theory.bench.problem import problem_on_backend, sync_for, to_backend
from xsam_theory.bench.report import Report, timed_row
from xsam_theory.bench.timing import Timing, fmt_s, interleaved

__all__ = ["bench_eigen", "bench_hessian", "pyhessian_power"]


def pyhessian_power(
    op: Any, v0: Any, tol: float = 1e-3, max_iter: int = 100
) -> tuple[float, Any, int]:
    """PyHessian's top-eigenvalue loop, as PyHessian writes it.

    ``v ← Hv / (‖Hv‖ + 1e-6)``, stopping when ``|λ_prev − λ| / (|λ_prev| + 1e-6) < tol``;
    ``λ = <Hv, v>`` before the update.

    Returns:
        ``λ_prev`` (its behaviour), the last vector, and the HVPs spent.
    """
    xp = op.xp
    v = v0 / xp.linalg.vector_norm(v0)
    before = op.n_hvp
    eig = None
    for _ in range(max_iter):
        Hv = op.matvec(v)
        tmp = float(xp.vecdot(Hv, v))
        v = Hv / (xp.linalg.vector_norm(Hv) + 1e-6)
        if eig is not None and abs(eig - tmp) / (abs(eig) + 1e-6) < tol:
            break
        eig = tmp
    return float(eig if eig is not None else tmp), v, op.n_hvp - before


def bench_eigen(report: Report, out: Callable[[str], None]) -> None:
    """λ_max at init on the minibatch (T3)."""
    for model in report.config.models:
        _eigen_one(report, out, model)


def _eigen_methods(cfg: BenchConfig, op: Any, v0: np.ndarray) -> dict[Kernel, Callable[[], Any]]:
    """The eigensolvers compared, by kernel (quick runs skip the rows no target reads)."""
    from xsam_theory.spectral import lanczos, lanczos_eigsh, power_iteration

    methods: dict[Kernel, Callable[[], Any]] = {
        Kernel.EIGEN_LANCZOS: lambda: lanczos(op, v0, steps=40),
        Kernel.EIGEN_ARPACK: lambda: lanczos_eigsh(op, 1, v0=v0, tol=1e-6),
        Kernel.EIGEN_POWER_5: lambda: power_iteration(op, v0, 5, rayleigh=True),
        Kernel.EIGEN_POWER_40: lambda: power_iteration(op, v0, 39, rayleigh=True),
        Kernel.EIGEN_PYHESSIAN: lambda: pyhessian_power(op, to_backend(op, v0)),
    }
    if cfg.quick:
        del methods[Kernel.EIGEN_ARPACK], methods[Kernel.EIGEN_POWER_40]
    if cfg.backend == "torch":
        try:  # the torch-native Lanczos, while it is a separate implementation
            from xsam_theory.torch.lanczos import lanczos_top
        except ImportError:
            return methods
        methods[Kernel.EIGEN_TORCH_LANCZOS] = lambda: lanczos_top(op.matvec, to_backend(op, v0), 40)
    return methods


def _time_methods(
    cfg: BenchConfig, op: Any, methods: dict[Kernel, Callable[[], Any]]
) -> tuple[dict[Kernel, Timing], dict[Kernel, tuple[Any, int]]]:
    """Timings and ``(result, HVPs)`` of the last call, per method."""
    results: dict[Kernel, tuple[Any, int]] = {}

    def counted(kernel: Kernel, f: Callable[[], Any]) -> Callable[[], None]:
        def g() -> None:
            before = op.n_hvp
            results[kernel] = (f(), op.n_hvp - before)

        return g

    times = interleaved(
        {k: counted(k, f) for k, f in methods.items()},
        max(1, cfg.repeats // 2),
        warmup=0,
        sync=sync_for(cfg),
    )
    return times, results


def _estimate(res: Any) -> tuple[float, Any, float]:
    """``(λ, vector, residual)`` of a solver's result (PyHessian's tuple has no residual)."""
    if isinstance(res, tuple):
        return res[0], res[1], math.nan
    return float(res.eigenvalue), res.eigenvector, float(res.residuals[0])


def _eigen_one(report: Report, out: Callable[[str], None], model: str) -> None:
    """Every eigensolver on one model, against a tight ARPACK reference (``tol=0``)."""
    from xsam_theory.backend import to_numpy
    from xsam_theory.spectral import HessianOperator, lanczos_eigsh
    from xsam_theory.vectors import angle_deg

    cfg = report.config
    problem, w, batch = problem_on_backend(cfg, model)
    point = problem.at(w, batch)
    point.grad  # noqa: B018
    op = HessianOperator.from_point(point)
    t0 = time.perf_counter()
    ref = lanczos_eigsh(op, 1, tol=0.0, seed=0)
    t_ref = time.perf_counter() - t0
    lam, u = ref.eigenvalue, ref.eigenvector
    v0 = np.random.default_rng(1).standard_normal(problem.dim)
    times, results = _time_methods(cfg, op, _eigen_methods(cfg, op, v0))
    out(
        f"  {model} ({problem.dim:,} params), batch {MINIBATCH}: tight reference "
        f"λ_max = {lam:.10g} (ARPACK tol=0, {ref.n_hvp} HVPs, residual "
        f"{ref.residuals[0]:.1e}, {t_ref:.2f} s)"
    )
    report.add(
        "eigen",
        {
            "name": label(None, Kernel.EIGEN_REFERENCE),
            "kernel": Kernel.EIGEN_REFERENCE.value,
            "model": model,
            "eigenvalue": lam,
            "n_hvp": ref.n_hvp,
            "seconds": t_ref,
            "residual": float(ref.residuals[0]),
        },
    )
    for kernel, t in times.items():
        res, n_hvp = results[kernel]
        est, vec, residual = _estimate(res)
        rel = abs(est - lam) / abs(lam)
        angle = angle_deg(to_backend(op, to_numpy(vec)), u, oriented=False)
        report.add(
            "eigen",
            timed_row(
                None,
                kernel,
                t,
                model=model,
                n_hvp=n_hvp,
                eigenvalue=est,
                rel_error=rel,
                angle_deg=angle,
                residual=residual,
            ),
        )
        out(
            f"    {label(None, kernel):<42} {n_hvp:4d} HVPs  rel.err {rel:8.1e}  angle "
            f"{angle:7.3f}°  residual {residual:8.1e}  {t}"
        )


def bench_hessian(report: Report, out: Callable[[str], None]) -> None:
    """The exact Hessian of tiny and its spectrum (T4), on the minibatch (and all points)."""
    cfg = report.config
    for bsize in [MINIBATCH] if cfg.quick else [MINIBATCH, None]:
        _hessian_one(report, out, bsize)


def _hessian_one(report: Report, out: Callable[[str], None], bsize: int | None) -> None:
    """Assemble tiny's Hessian (batched R-operator) and its ``eigvalsh``, interleaved."""
    cfg = report.config
    problem, w, _ = problem_on_backend(cfg, "tiny")
    batch = None
    if bsize is not None:
        batch = np.arange(bsize)
        if cfg.backend == "torch":
            import torch

            batch = torch.as_tensor(batch, device=w.device)
    n = N_SAMPLES if bsize is None else bsize
    holder: dict[str, Any] = {}
    xp = problem.xp

    def assemble() -> None:
        holder["H"] = problem.hessian(w, batch)

    def spectrum() -> None:
        holder["spec"] = xp.linalg.eigvalsh(holder["H"])

    times = interleaved(
        {"assemble": assemble, "eigvalsh": spectrum},
        max(1, cfg.repeats // 2),
        warmup=0,
        sync=sync_for(cfg),
    )
    total = times["assemble"].median + times["eigvalsh"].median
    lam = float(xp.max(holder["spec"]))
    report.add(
        "hessian",
        {
            "name": f"{label(None, Kernel.HESSIAN)}, batch {n}",
            "kernel": Kernel.HESSIAN.value,
            "batch": n,
            "assemble": times["assemble"].to_dict(),
            "eigvalsh": times["eigvalsh"].to_dict(),
            "total_s": total,
            "lambda_max": lam,
            "dim": problem.dim,
        },
    )
    out(
        f"  tiny ({problem.dim:,} params), batch {n}: assemble {times['assemble']}, "
        f"eigvalsh {times['eigvalsh']}, total {fmt_s(total)}; λ_max = {lam:.10g}"
    )
