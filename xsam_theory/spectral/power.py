r"""Power iteration with the reference semantics of the X-SAM / Eigen-SAM code.

Semantics: docs/algorithms.md#A-eigenvector-sources; rate: docs/theory.md#T-power-rate.

The authors' code refreshes the eigenvector with a fixed number of warm-started steps
:math:`u \leftarrow Hu/\|Hu\|` and no convergence test. That iteration converges to the eigenvector
of largest :math:`|\lambda|` (the *dominant* pair), which is not the algebraic top eigenpair when a
negative eigenvalue dominates in magnitude; then the iterate's sign flips at every step
(docs/theory.md#T-dominant-negative).
:func:`power_iteration` keeps exactly that behaviour; :func:`shifted_power_iteration` applies the
shift fix :math:`H + \sigma I`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xsam_theory.checks import check_tolerance
from xsam_theory.spectral.operator import HessianOperator
from xsam_theory.spectral.results import EigenResult, _start_vector
from xsam_theory.vectors import _numpy_norm, norm, unit

__all__ = ["power_iteration", "shifted_power_iteration"]


def power_iteration(
    op: HessianOperator,
    v0: Any,
    steps: int,
    *,
    rayleigh: bool = True,
    tol: float = 1e-8,
    seed: int = 0,
) -> EigenResult:
    r"""``steps`` power-iteration steps, reference semantics: the DOMINANT pair (largest magnitude).

    .. math::

        u_0 = v_0/\|v_0\|, \qquad u_{j+1} = \frac{Hu_j}{\|Hu_j\|}, \quad j = 0, \dots, k-1,

    for exactly ``k = steps`` steps (no convergence test), warm-startable from ``v0``. The
    returned vector is :math:`u_k`. It converges to the eigenvector of largest :math:`|\lambda|`
    at the rate :math:`\tan\angle(u_k, v_1) \le (|\lambda_2|/|\lambda_1|)^k \tan\angle(u_0, v_1)`
    (eigenvalues ordered by magnitude; docs/theory.md#T-power-rate). When that eigenvalue is
    negative, the sign of :math:`u_j` flips at every step. The returned vector is *not* re-oriented.

    Zero branch: if :math:`Hu_j = 0` exactly, the iteration stops and returns :math:`u_j` with
    eigenvalue ``0`` and residual ``0`` (never a division by zero, never NaN).

    Eigenvalue and residual:

    * ``rayleigh=True``: one extra HVP gives the Rayleigh quotient of the **returned** vector,
      :math:`\lambda = \langle u_k, Hu_k\rangle` and :math:`\|Hu_k - \lambda u_k\|`
      (``n_hvp = steps + 1``; no extra HVP after a zero-branch stop, where :math:`Hu = 0` is
      already known).
    * ``rayleigh=False``: no extra HVP (``n_hvp = steps``). The eigenvalue is then the Rayleigh
      quotient of the **last input vector** :math:`u_{k-1}` (the vector the last HVP was applied
      to), :math:`\lambda = \langle u_{k-1}, Hu_{k-1}\rangle`, and the residual is
      :math:`\|Hu_{k-1} - \lambda u_{k-1}\|`, both free; they belong to :math:`u_{k-1}`, not to
      the returned :math:`u_k` (after a zero-branch stop the two coincide). Needs ``steps >= 1``.

    Args:
        op (HessianOperator): The symmetric operator.
        v0 (array or None): Start (warm-start) vector, any backend; normalized first. ``None`` draws
            a standard normal vector from ``numpy.random.default_rng(seed)``.
        steps (int): Number of power steps ``k >= 0`` (``>= 1`` when ``rayleigh=False``).
        rayleigh (bool): Spend one extra HVP on the Rayleigh quotient of the returned vector.
        tol (float): Only for the reported ``converged`` flag: ``residual <= tol * |eigenvalue|``.
            It never stops the iteration.
        seed (int): Seed for the default ``v0``, an integer >= 0.

    Returns:
        EigenResult: One pair, ``method="power"``, ``iterations`` = power steps actually run (HVPs
        in the loop; fewer than ``steps`` only after a zero-branch stop).
    """
    return _power(op, v0, steps, shift=0.0, rayleigh=rayleigh, tol=tol, seed=seed, method="power")


def shifted_power_iteration(
    op: HessianOperator,
    v0: Any,
    steps: int,
    shift: float,
    *,
    rayleigh: bool = True,
    tol: float = 1e-8,
    seed: int = 0,
) -> EigenResult:
    r"""Power iteration on :math:`H + \sigma I`: finds the algebraic top for large enough σ.

    .. math::

        u_{j+1} = \frac{(H + \sigma I)u_j}{\|(H + \sigma I)u_j\|},

    one HVP per step. With :math:`\sigma \ge -\lambda_n` (e.g. :math:`\sigma \ge |\lambda_{\min}|`)
    all eigenvalues of :math:`H + \sigma I` are :math:`\ge 0`, so the dominant one is
    :math:`\lambda_1 + \sigma` and the iteration converges to the algebraic top eigenvector of
    :math:`H`, at the rate :math:`(\lambda_2 + \sigma)/(\lambda_1 + \sigma)`. The eigenvalue
    reported is for :math:`H` itself (the shift removed): :math:`\langle u, Hu\rangle`, with
    the same ``rayleigh`` semantics, zero branch (:math:`(H + \sigma I)u = 0`), ``tol`` and HVP
    counts as :func:`power_iteration`.

    Args:
        op: As in :func:`power_iteration`.
        v0: As in :func:`power_iteration`.
        steps: As in :func:`power_iteration`.
        rayleigh: As in :func:`power_iteration`.
        tol: As in :func:`power_iteration`.
        seed: As in :func:`power_iteration`.
        shift (float): The shift :math:`\sigma` (finite).

    Returns:
        EigenResult: One pair, ``method="shifted_power (shift=σ)"``.
    """
    shift = float(shift)
    if not np.isfinite(shift):
        raise ValueError(f"shift must be finite, got {shift!r}")
    return _power(
        op,
        v0,
        steps,
        shift=shift,
        rayleigh=rayleigh,
        tol=tol,
        seed=seed,
        method=f"shifted_power (shift={shift!r})",
    )


def _power(
    op: HessianOperator,
    v0: Any,
    steps: int,
    *,
    shift: float,
    rayleigh: bool,
    tol: float,
    seed: int,
    method: str,
) -> EigenResult:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if not rayleigh and steps < 1:
        raise ValueError(
            "rayleigh=False needs steps >= 1 (the eigenvalue of the last input "
            f"vector comes from the last power step), got steps={steps}"
        )
    tol = check_tolerance("tol", tol)
    xp = op.xp
    u = _start_vector(op, v0, seed)
    u = u / xp.linalg.vector_norm(u)
    before = op.n_hvp
    u, last_in, last_Hu, iterations, stopped_at_zero = _power_steps(op, u, int(steps), shift)
    if stopped_at_zero or not rayleigh:
        v, Hv = last_in, last_Hu
    else:
        v, Hv = u, op._apply_one(u)
    lam = float(xp.vecdot(v, Hv))
    res = float(xp.linalg.vector_norm(Hv - lam * v))
    return EigenResult(
        eigenvalues=np.array([lam]),
        eigenvectors=xp.reshape(u, (op.dim, 1)),
        residuals=np.array([res]),
        n_hvp=op.n_hvp - before,
        converged=bool(res <= tol * abs(lam)),
        method=method,
        iterations=iterations,
    )


def _power_steps(op: HessianOperator, u: Any, steps: int, shift: float) -> tuple[Any, ...]:
    r"""``steps`` steps :math:`u \leftarrow Au/\|Au\|`, :math:`A = H + \sigma I`; zero branch kept.

    On the CPU the loop stops at the first :math:`Au = 0` (an exact eigenvector); elsewhere it is
    branch-free (no host synchronisation per step): where :math:`Au = 0` the iterate stays put,
    so later steps repeat it, and the zero branch is read once after the loop.

    Returns:
        tuple: ``(u, last_in, last_Hu, iterations, stopped_at_zero)``.
    """
    xp = op.xp
    on_host = op.device is None or str(op.device).lower() in ("cpu", "cpu_device")
    last_in = last_Hu = None  # u_{j} and H u_{j} of the last step taken
    zero = xp.zeros((), dtype=xp.bool, device=op.device)
    iterations = 0
    for _ in range(steps):
        Hu = op._apply_one(u)
        Au = Hu + shift * u if shift != 0.0 else Hu
        last_in, last_Hu = u, Hu
        iterations += 1
        # unit() rescales by max|Au_i| before normalizing: ||Au||^2 may underflow, and a
        # subnormal ||Au|| is itself too coarse to divide by
        if on_host:
            u_next, n = _host_unit(Au)
            if n == 0.0:  # zero branch: (H + shift I) u = 0, an exact eigenvector
                return u, last_in, last_Hu, iterations, True
            u = u_next
            continue
        n = norm(Au)
        zero = xp.logical_or(zero, n == 0)
        u = xp.where(n > 0, unit(Au), u)
    return u, last_in, last_Hu, iterations, bool(zero)


def _host_unit(u: Any) -> tuple[Any, float]:
    r"""``(unit(u), ||u||)`` on the host, the norm computed once.

    Bit-identical to :func:`~xsam_theory.vectors.unit`: a float64 NumPy vector safely inside the
    float range is divided by the same direct-formula norm ``unit`` would divide by; every other
    vector takes ``unit`` itself (and the rescaled :func:`~xsam_theory.vectors.norm`).
    """
    fast = _numpy_norm(u)
    if fast is None:
        return unit(u), float(norm(u))
    return u / fast, fast
