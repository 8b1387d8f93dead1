r"""Spectral tools: top eigenpairs, top-k, Hutchinson trace, angles, HVP counts.

* dense ``eigh`` for small problems: :func:`eigh_spectrum`, :func:`exact_top`;
* Lanczos, the algebraic top: :func:`lanczos_eigsh` (ARPACK, ``which="LA"``), the
  backend-native :func:`lanczos` with full reorthogonalization, and its thick-restart variant
  :func:`thick_restart_lanczos` (a residual tolerance within a basis of ``max_basis`` vectors);
* power iteration with the reference semantics (the dominant pair, of largest :math:`|\lambda|`):
  :func:`power_iteration`, and the shift fix :func:`shifted_power_iteration`;
* :func:`hutchinson_trace`; :func:`orient`, :func:`top_eigenspace`, :func:`angle_to_subspace`.

Every method takes a :class:`HessianOperator` and reports the HVPs it spent. The eigenvector
sources and their semantics: docs/algorithms.md#A-eigenvector-sources; convergence:
docs/theory.md#T-power-rate, docs/theory.md#T-lanczos-bound, docs/theory.md#T-dominant-negative;
the trace: docs/theory.md#T-hutchinson; angles: docs/theory.md#T-eigenspace-angle.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from xsam_theory.spectral.angles import angle_to_subspace, orient, top_eigenspace
from xsam_theory.spectral.dense import eigh_spectrum, exact_top
from xsam_theory.spectral.lanczos import lanczos, lanczos_eigsh, thick_restart_lanczos
from xsam_theory.spectral.operator import HessianOperator
from xsam_theory.spectral.power import power_iteration, shifted_power_iteration
from xsam_theory.spectral.results import EigenResult
from xsam_theory.spectral.trace import TraceEstimate, hutchinson_trace

__all__ = [
    "METHODS",
    "EigenResult",
    "HessianOperator",
    "TraceEstimate",
    "angle_to_subspace",
    "eigh_spectrum",
    "exact_top",
    "hutchinson_trace",
    "lanczos",
    "lanczos_eigsh",
    "orient",
    "power_iteration",
    "shifted_power_iteration",
    "thick_restart_lanczos",
    "top_eigenpair",
    "top_eigenspace",
]

#: eigenvector sources accepted by :func:`top_eigenpair` (docs/algorithms.md#A-eigenvector-sources)
METHODS = ("exact", "lanczos", "power")


def top_eigenpair(
    op: HessianOperator,
    method: str = "lanczos",
    *,
    v0: Any = None,
    steps: int | None = None,
    tol: float | None = None,
    seed: int = 0,
) -> EigenResult:
    r"""One eigenpair of ``op`` by the named method.

    * ``"exact"``: :func:`exact_top` (dense, ``dim`` HVPs), the algebraic top
      :math:`(\lambda_1, v_1)`; ``v0``, ``steps``, ``tol`` are ignored.
    * ``"lanczos"``: the algebraic top. By default (``tol=None``) the backend-native
      :func:`thick_restart_lanczos` to the residual tolerance
      :math:`\|Hv - \lambda v\| \le 10^{-6}|\lambda|` (ARPACK's ``tol=1e-6`` criterion) in a basis
      of 20 vectors; should it not converge within its HVP budget, ARPACK finishes from its Ritz
      vector (HVPs of both counted). An explicit ``tol`` (``0``: machine precision) runs
      :func:`lanczos_eigsh` (ARPACK, ``which="LA"``) with it. ``steps`` is ignored.
    * ``"power"``: :func:`power_iteration` with ``steps`` steps (required), the *dominant*
      (largest-:math:`|\lambda|`) pair with the reference semantics, Rayleigh quotient of the
      returned vector (``steps + 1`` HVPs); ``tol`` (default ``1e-8``) only sets ``converged``.

    ``v0=None`` draws a standard normal start vector from ``seed``.

    Raises:
        ValueError: For an unknown ``method`` (the message names it), or ``method="power"`` without
            ``steps``.
    """
    if method == "exact":
        return exact_top(op, 1)
    if method == "lanczos":
        return _lanczos_top(op, v0, tol, seed)
    if method == "power":
        if steps is None:
            raise ValueError("method='power' needs steps (the number of power-iteration steps)")
        return power_iteration(op, v0, steps, tol=1e-8 if tol is None else tol, seed=seed)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


#: residual tolerance of :func:`top_eigenpair`'s default native Lanczos (ARPACK ``tol=1e-6``'s)
DEFAULT_LANCZOS_TOL = 1e-6


def _lanczos_top(op: HessianOperator, v0: Any, tol: float | None, seed: int) -> EigenResult:
    """``top_eigenpair(op, "lanczos")``: native thick restart by default, ARPACK for a given tol."""
    if tol is not None:
        return lanczos_eigsh(op, 1, v0=v0, tol=tol, seed=seed)
    res = thick_restart_lanczos(op, v0, 1, tol=DEFAULT_LANCZOS_TOL, max_basis=20, seed=seed)
    if res.converged:
        return res
    fin = lanczos_eigsh(op, 1, v0=res.eigenvector, tol=DEFAULT_LANCZOS_TOL, seed=seed)
    return dataclasses.replace(
        fin, n_hvp=res.n_hvp + fin.n_hvp, method=f"{res.method} -> {fin.method}"
    )
