r"""Section ``lanczos``: the package's Lanczos against the cost of its HVPs, and against ARPACK.

Two comparisons, each timed side by side (interleaved) on one Hessian operator:

* **fixed steps** (T9, T10): ``spectral.lanczos(op, v0, steps=40)`` against the same number of
  HVPs alone (``op.matvec`` called as many times as the Lanczos call spent, counted in an untimed
  first call). The ratio is the Lanczos's own overhead: orthogonalization, the tridiagonal
  eigenproblem, host reads. On the small and medium models, at the minibatch (128 points) and
  on all 2048 points (``quick`` leaves out the medium model).
* **to a tolerance** (T11): ``top_eigenpair(op, "lanczos")`` with its default tolerance (the
  native restarted Lanczos to :math:`\|Hv - \lambda v\| \le 10^{-6}|\lambda|`) against ARPACK
  (``lanczos_eigsh(op, 1, tol=1e-6)``) from the same start vector, on the minibatch of every
  model: seconds, HVPs, both eigenvalues and residuals :math:`\|Hv - \lambda v\|`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from xsam_theory.bench.config import MINIBATCH, N_SAMPLES, BenchConfig
from xsam_theory.bench.keys import Kernel, label
from xsam_theory.bench.problem import problem_on_backend, sync_for, to_backend
from xsam_theory.bench.report import Report, key_row, timed_row
from xsam_theory.bench.timing import Timing, interleaved

__all__ = ["LANCZOS_STEPS", "TOL", "bench_lanczos", "lanczos_cases"]

#: Lanczos steps of the fixed-steps comparison
LANCZOS_STEPS = 40
#: ARPACK's tolerance in the to-a-tolerance comparison (``top_eigenpair``'s default Lanczos
#: stops at the same relative residual)
TOL = 1e-6

Out = Callable[[str], None]


def lanczos_cases(cfg: BenchConfig) -> list[tuple[str, int, bool, bool]]:
    """``(model, batch size, fixed steps?, to a tolerance?)`` per measured case.

    Fixed steps: every model but tiny (tiny when it is the only one), at 128 and 2048 points;
    ``quick`` leaves out medium (full bench only). To a tolerance: every model at 128 points.
    """
    fixed = [mo for mo in cfg.models if mo != "tiny"] or list(cfg.models)
    if cfg.quick:
        fixed = [mo for mo in fixed if mo not in ("medium", "large")]
    cases = []
    for model in cfg.models:
        for bsize in (MINIBATCH, N_SAMPLES):
            steps, tol = model in fixed, bsize == MINIBATCH
            if steps or tol:
                cases.append((model, bsize, steps, tol))
    return cases


def bench_lanczos(report: Report, out: Out) -> None:
    """The package's Lanczos against its HVPs (T9, T10) and against ARPACK (T11)."""
    for model, bsize, steps, tol in lanczos_cases(report.config):
        _lanczos_one(report, out, model, bsize, steps, tol)


def _operator(cfg: BenchConfig, model: str, bsize: int) -> Any:
    """The Hessian operator at ``init_params(1)`` on ``bsize`` points (its gradient computed)."""
    from xsam_theory.spectral import HessianOperator

    problem, w, batch = problem_on_backend(cfg, model)
    point = problem.at(w, None if bsize == N_SAMPLES else batch)
    point.grad  # noqa: B018 - the HVPs reuse the gradient's forward/backward
    return HessianOperator.from_point(point)


def _counted(op: Any, results: dict[Kernel, Any], kernel: Kernel, f: Callable[[], Any]) -> Any:
    """``f`` storing ``(its result, the HVPs it spent)`` in ``results[kernel]`` on each call."""

    def g() -> None:
        before = op.n_hvp
        results[kernel] = (f(), op.n_hvp - before)

    return g


def _contenders(
    op: Any, v0: np.ndarray, steps: bool, tol: bool, results: dict[Kernel, Any]
) -> dict[Kernel, Callable[[], None]]:
    """The timed calls; the fixed-steps Lanczos is called once first to count its HVPs."""
    from xsam_theory.spectral import lanczos, lanczos_eigsh, top_eigenpair

    c: dict[Kernel, Callable[[], Any]] = {}
    if steps:
        lz = _counted(
            op, results, Kernel.LANCZOS_STEPS, lambda: lanczos(op, v0, steps=LANCZOS_STEPS)
        )
        lz()  # untimed: counts the HVPs the HVPs-alone contender repeats (and warms up)
        n, u = results[Kernel.LANCZOS_STEPS][1], to_backend(op, v0)
        c[Kernel.LANCZOS_STEPS] = lz
        c[Kernel.LANCZOS_HVPS] = _counted(
            op, results, Kernel.LANCZOS_HVPS, lambda: [op.matvec(u) for _ in range(n)]
        )
    if tol:
        c[Kernel.LANCZOS_TOL] = _counted(
            op, results, Kernel.LANCZOS_TOL, lambda: top_eigenpair(op, "lanczos", v0=v0)
        )
        c[Kernel.ARPACK_TOL] = _counted(
            op, results, Kernel.ARPACK_TOL, lambda: lanczos_eigsh(op, 1, v0=v0, tol=TOL)
        )
    return c


def _lanczos_one(report: Report, out: Out, model: str, bsize: int, steps: bool, tol: bool) -> None:
    """One model and batch: its contenders interleaved, then their rows and ratio rows."""
    cfg = report.config
    op = _operator(cfg, model, bsize)
    v0 = np.random.default_rng(1).standard_normal(op.dim)
    results: dict[Kernel, Any] = {}
    contenders = _contenders(op, v0, steps, tol, results)
    repeats = max(2, cfg.repeats // 2) if model in ("medium", "large") else cfg.repeats
    times = interleaved(contenders, repeats, warmup=0 if steps else 1, sync=sync_for(cfg))
    out(f"  {model} ({op.dim:,} params), batch {bsize}")
    where = {"model": model, "batch": bsize}
    for kernel, t in times.items():
        res, n_hvp = results[kernel]
        report.add("lanczos", timed_row(None, kernel, t, n_hvp=n_hvp, **where, **_fields(res)))
        out(f"    {label(None, kernel):<42} {n_hvp:4d} HVPs  {t}")
    if steps:
        _steps_ratio_row(report, out, where, times)
    if tol:
        _tol_ratio_row(report, out, where, times, results)


def _fields(res: Any) -> dict[str, Any]:
    """``eigenvalue``, ``residual`` and ``converged`` of an eigensolver's result (else none)."""
    if not hasattr(res, "eigenvalues"):
        return {}
    return {
        "eigenvalue": float(res.eigenvalues[0]),
        "residual": float(res.residuals[0]),
        "converged": bool(res.converged),
    }


def _steps_ratio_row(
    report: Report, out: Out, where: dict[str, Any], times: dict[Kernel, Timing]
) -> None:
    """Fixed-steps Lanczos / its HVPs alone (medians of the same run)."""
    ratio = times[Kernel.LANCZOS_STEPS].median / times[Kernel.LANCZOS_HVPS].median
    kernel = Kernel.LANCZOS_STEPS_OVER_HVPS
    report.add("lanczos", key_row(None, kernel, **where, steps=LANCZOS_STEPS, ratio=ratio))
    out(f"    {label(None, kernel)} ({LANCZOS_STEPS} steps): {ratio:.2f}x")


def _tol_ratio_row(
    report: Report,
    out: Out,
    where: dict[str, Any],
    times: dict[Kernel, Timing],
    results: dict[Kernel, Any],
) -> None:
    r"""Lanczos to ``TOL`` / ARPACK to ``TOL``: seconds, HVPs, and the accuracy reached.

    ``accurate``: the Lanczos residual is at most :math:`\max(\mathrm{tol}\,|\lambda|, r_A)`,
    ``r_A`` ARPACK's residual (the accuracy ARPACK's tolerance gave).
    """
    (lz, lz_hvp), (ar, ar_hvp) = results[Kernel.LANCZOS_TOL], results[Kernel.ARPACK_TOL]
    lam_l, lam_a = float(lz.eigenvalues[0]), float(ar.eigenvalues[0])
    res_l, res_a = float(lz.residuals[0]), float(ar.residuals[0])
    time_ratio = times[Kernel.LANCZOS_TOL].median / times[Kernel.ARPACK_TOL].median
    kernel = Kernel.LANCZOS_TOL_OVER_ARPACK
    row = key_row(
        None,
        kernel,
        **where,
        tol=TOL,
        time_ratio=time_ratio,
        hvp_ratio=lz_hvp / ar_hvp,
        n_hvp_lanczos=lz_hvp,
        n_hvp_arpack=ar_hvp,
        rel_diff=abs(lam_l - lam_a) / abs(lam_a),
        residual_lanczos=res_l,
        residual_arpack=res_a,
        accurate=res_l <= max(TOL * abs(lam_a), res_a),
    )
    report.add("lanczos", row)
    out(
        f"    {label(None, kernel)} {TOL:g}: {time_ratio:.2f}x time, {lz_hvp}/{ar_hvp} HVPs, "
        f"λ differ by {row['rel_diff']:.1e} (relative), residuals {res_l:.1e} / {res_a:.1e}"
    )
