r"""Spectral tools (SPEC §4): top eigenpairs, top-k, Hutchinson trace, angles, HVP counts.

* dense ``eigh`` for small problems: :func:`eigh_spectrum`, :func:`exact_top`;
* Lanczos, the algebraic top: :func:`lanczos_eigsh` (ARPACK, ``which="LA"``) and the
  backend-native :func:`lanczos` with full reorthogonalization;
* power iteration with the reference semantics (the dominant, largest-|λ| pair):
  :func:`power_iteration`, and the shift fix :func:`shifted_power_iteration`;
* :func:`hutchinson_trace`; :func:`orient`, :func:`top_eigenspace`, :func:`angle_to_subspace`.

Every method takes a :class:`HessianOperator` and reports the HVPs it spent.
"""

from __future__ import annotations

from typing import Any

from xsam_theory.spectral.angles import angle_to_subspace, orient, top_eigenspace
from xsam_theory.spectral.dense import eigh_spectrum, exact_top
from xsam_theory.spectral.lanczos import lanczos, lanczos_eigsh
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
    "top_eigenpair",
    "top_eigenspace",
]

#: eigenvector sources accepted by :func:`top_eigenpair` (SPEC §2: "exact", "lanczos", "power")
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
    * ``"lanczos"``: :func:`lanczos_eigsh` (ARPACK, ``which="LA"``), the algebraic top;
      ``tol`` defaults to ``0`` (machine precision); ``steps`` is ignored.
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
        return lanczos_eigsh(op, 1, v0=v0, tol=0.0 if tol is None else tol, seed=seed)
    if method == "power":
        if steps is None:
            raise ValueError("method='power' needs steps (the number of power-iteration steps)")
        return power_iteration(op, v0, steps, tol=1e-8 if tol is None else tol, seed=seed)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")
