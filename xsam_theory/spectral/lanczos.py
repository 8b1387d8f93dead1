r"""Lanczos: the algebraic top eigenpairs of a symmetric operator (SPEC §4 (b)).

Two implementations:

* :func:`lanczos_eigsh`: ARPACK's implicitly restarted Lanczos (``scipy.sparse.linalg.eigsh``) on
  a ``LinearOperator`` wired to the HVPs, with ``which="LA"`` (largest *algebraic*; never
  ``"LM"``, which would return the largest magnitude, the power-iteration pitfall F8.3).
* :func:`lanczos`: a backend-native Lanczos with full reorthogonalization written against the
  array API only, so that the Krylov loop runs where the HVPs run (e.g. torch on CUDA); only the
  small tridiagonal eigenproblem goes to the host.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse.linalg

from xsam_theory.backend import to_numpy
from xsam_theory.checks import check_tolerance
from xsam_theory.spectral.angles import orient
from xsam_theory.spectral.dense import exact_top
from xsam_theory.spectral.operator import HessianOperator
from xsam_theory.spectral.results import (
    EigenResult,
    _check_k,
    _column_norms,
    _start_vector,
    _to_backend,
)
from xsam_theory.threads import limit_blas_for
from xsam_theory.vectors import norm, unit

__all__ = ["lanczos", "lanczos_eigsh"]


def _host_dtype(op: HessianOperator) -> np.dtype:
    """The NumPy dtype matching the operator's dtype (float64 or float32)."""
    probe = op.xp.zeros((1,), dtype=op.dtype, device=op.device)
    return to_numpy(probe).dtype


def _linear_operator(op: HessianOperator) -> scipy.sparse.linalg.LinearOperator:
    """``op`` as a SciPy ``LinearOperator`` (host arrays in, host arrays out; HVPs counted)."""
    dtype = _host_dtype(op)

    def matvec(x: np.ndarray) -> np.ndarray:
        v = _to_backend(op, np.asarray(x, dtype=dtype).reshape(-1))
        return np.asarray(to_numpy(op._apply_one(v)), dtype=dtype)

    def matmat(X: np.ndarray) -> np.ndarray:
        # SciPy passes (dim, k) columns; the operator takes (k, dim) rows.
        rows = _to_backend(op, np.ascontiguousarray(np.asarray(X, dtype=dtype).T))
        return np.asarray(to_numpy(op._apply_rows(rows)), dtype=dtype).T

    return scipy.sparse.linalg.LinearOperator(
        shape=(op.dim, op.dim), matvec=matvec, rmatvec=matvec, matmat=matmat, dtype=dtype
    )


def lanczos_eigsh(
    op: HessianOperator,
    k: int = 1,
    *,
    v0: Any = None,
    tol: float = 0.0,
    maxiter: int | None = None,
    ncv: int | None = None,
    seed: int = 0,
) -> EigenResult:
    r"""Top-``k`` algebraic eigenpairs by ARPACK (``scipy.sparse.linalg.eigsh``, ``which="LA"``).

    Computes :math:`\lambda_1 \ge \dots \ge \lambda_k`, the ``k`` largest eigenvalues of the
    symmetric :math:`H` in algebraic order, with unit eigenvectors :math:`v_i` (package sign
    convention, :func:`~xsam_theory.spectral.orient`). ARPACK's stopping rule is
    :math:`\|Hv_i - \lambda_i v_i\| \lesssim \mathrm{tol}\cdot|\lambda_i|` (``tol=0``: machine
    precision).

    The residuals :math:`\|Hv_i - \lambda_i v_i\|` reported are computed exactly with **one extra
    batched** ``op.matmat`` of the ``k`` eigenvectors, i.e. ``k`` extra HVPs, which *are included*
    in ``n_hvp`` (ARPACK does not expose its residuals).

    During the call the BLAS pools that would compete with the HVPs are limited to one thread
    (:func:`xsam_theory.threads.limit_blas_for`: every BLAS pool for a torch operator, SciPy's
    own OpenBLAS for a NumPy one): ARPACK's spinning OpenBLAS threads would otherwise take the
    cores the HVPs need (PERFORMANCE.md, T8).

    When ``k >= dim`` (ARPACK needs ``k < dim``), falls back to the dense decomposition
    (:func:`~xsam_theory.spectral.exact_top`, ``dim`` HVPs) and says so in ``method``.

    Args:
        op (HessianOperator): The symmetric operator.
        k (int): Number of pairs, ``1 <= k <= dim``.
        v0 (array, optional): Start vector (any backend). Default: a standard normal vector from
            ``numpy.random.default_rng(seed)``, so results are reproducible.
        tol (float): ARPACK's relative tolerance (``0``: machine precision).
        maxiter (int, optional): ARPACK's maximum number of restarts (SciPy's default ``10 * dim``).
        ncv (int, optional): Krylov subspace size (SciPy's default ``min(dim, max(2k + 1, 20))``).
        seed (int): Seed for the default ``v0``, an integer >= 0.

    Returns:
        EigenResult: ``k`` pairs in descending order; ``converged`` is ARPACK's verdict (on
        non-convergence the pairs ARPACK did converge are returned with ``converged=False``);
        ``iterations`` is the number of operator applications ARPACK made (its Lanczos steps;
        ``eigsh`` does not expose its restart count), so ``n_hvp = iterations + k``.
    """
    k = _check_k(k, op.dim)
    tol = check_tolerance("tol", tol)
    for name, value in (("maxiter", maxiter), ("ncv", ncv)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1
        ):
            raise ValueError(f"{name} must be an integer >= 1 or None, got {value!r}")
    before = op.n_hvp
    if k >= op.dim:
        dense = exact_top(op, k)
        return EigenResult(
            eigenvalues=dense.eigenvalues,
            eigenvectors=dense.eigenvectors,
            residuals=dense.residuals,
            n_hvp=op.n_hvp - before,
            converged=True,
            method=f"lanczos_eigsh->dense (k={k} >= dim={op.dim}: ARPACK needs k < dim)",
            iterations=0,
        )
    dtype = _host_dtype(op)
    start = np.asarray(to_numpy(_start_vector(op, v0, seed)), dtype=dtype)
    A = _linear_operator(op)
    converged = True
    try:
        # SciPy's BLAS and the HVPs' pool would oversubscribe the cores (T8)
        with limit_blas_for(op.xp):
            lam, V, note = _eigsh_la(A, k, start, tol, maxiter, ncv, seed)
    except scipy.sparse.linalg.ArpackNoConvergence as err:
        note = ""
        converged = False
        lam, V = err.eigenvalues, err.eigenvectors
        if lam.size == 0:
            raise RuntimeError(
                f"ARPACK converged no eigenpair (k={k}, maxiter={maxiter}, ncv={ncv}, tol={tol}); "
                "raise maxiter or ncv"
            ) from err
    iterations = op.n_hvp - before  # ARPACK's Lanczos steps, one HVP each
    order = np.argsort(-lam, kind="stable")
    lam = np.asarray(lam[order], dtype=float)
    Vb = _to_backend(op, np.ascontiguousarray(V[:, order]))
    xp = op.xp
    Vb = orient(Vb / xp.reshape(xp.linalg.vector_norm(Vb, axis=0), (1, -1)))
    HV = xp.matrix_transpose(op._apply_rows(xp.matrix_transpose(Vb)))  # k extra HVPs
    lam_b = xp.asarray(lam, dtype=op.dtype, device=op.device)
    residuals = _column_norms(xp, HV - Vb * xp.reshape(lam_b, (1, -1)))
    return EigenResult(
        eigenvalues=lam,
        eigenvectors=Vb,
        residuals=residuals,
        n_hvp=op.n_hvp - before,
        converged=converged,
        method=f"lanczos_eigsh (ARPACK, which='LA'{note})",
        iterations=iterations,
    )


def _eigsh_la(
    A: scipy.sparse.linalg.LinearOperator,
    k: int,
    start: np.ndarray,
    tol: float,
    maxiter: int | None,
    ncv: int | None,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, str]:
    r"""``eigsh(which="LA")``, reproducible and robust to a start vector in the null space of ``H``.

    ARPACK's internal random vectors (drawn when the Krylov space becomes invariant) are seeded
    from ``seed``, so the same call gives the same bits (where SciPy supports ``rng``).

    ARPACK stops with error -9 ("Starting vector is zero") when :math:`Hv_0 = 0` exactly, even
    for :math:`H \ne 0`. Then it is restarted once from a seeded Gaussian vector; if that is
    annihilated too, :math:`H = 0` (with probability one) and its top-``k`` pairs are ``0`` with
    any orthonormal vectors (those of the restart, completed by QR).
    """

    def run(v0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # ARPACK draws its own random vectors when the Krylov space becomes invariant (e.g.
        # H = cI, or few distinct eigenvalues); without a seeded generator they come from a
        # process-wide state, and the same call returns different eigenvectors (SPEC §8).
        extra = {"rng": np.random.default_rng([seed, 0xA2])} if _EIGSH_HAS_RNG else {}
        return scipy.sparse.linalg.eigsh(
            A, k=k, which="LA", v0=v0, tol=tol, maxiter=maxiter, ncv=ncv, **extra
        )

    try:
        lam, V = run(start)
        return lam, V, ""
    except scipy.sparse.linalg.ArpackError as err:
        if not _start_annihilated(err):
            raise
    rng = np.random.default_rng([seed, 9])
    retry = rng.standard_normal(start.shape[0]).astype(start.dtype)
    try:
        lam, V = run(retry)
        return lam, V, ", restarted from a random vector: H v0 = 0"
    except scipy.sparse.linalg.ArpackError as err:
        if not _start_annihilated(err):
            raise
    cols = np.column_stack([retry, rng.standard_normal((start.shape[0], k - 1))])
    V = np.linalg.qr(cols)[0].astype(start.dtype)
    return np.zeros(k), V, ", H = 0: H annihilates v0 and a random vector"


#: SciPy >= 1.15 seeds ARPACK's internal random vectors through ``rng``
_EIGSH_HAS_RNG = "rng" in inspect.signature(scipy.sparse.linalg.eigsh).parameters


def _start_annihilated(err: Exception) -> bool:
    """Whether ``err`` is ARPACK's error -9 (SciPy keeps the code only in the message)."""
    return not isinstance(err, scipy.sparse.linalg.ArpackNoConvergence) and str(err).startswith(
        "ARPACK error -9:"
    )


def lanczos(
    op: HessianOperator, v0: Any, steps: int, k: int = 1, *, tol: float = 1e-8, seed: int = 0
) -> EigenResult:
    r"""Backend-native Lanczos with full reorthogonalization: top-``k`` Ritz pairs after ``steps``.

    From :math:`q_1 = v_0/\|v_0\|`, step :math:`j = 1, \dots, m` computes

    .. math::

        w_j = Hq_j, \quad
        r_j = (I - Q_jQ_j^\top)^2\, w_j \ \ \text{(classical Gram–Schmidt, twice)}, \quad
        \alpha_j = q_j^\top w_j + q_j^\top (I - Q_jQ_j^\top) w_j, \quad
        \beta_j = \|r_j\|, \quad q_{j+1} = r_j/\beta_j,

    with :math:`Q_j = [q_1, \dots, q_j]`, so that
    :math:`HQ_m = Q_mT_m + \beta_m q_{m+1}e_m^\top` with :math:`T_m` tridiagonal
    (diagonal :math:`\alpha`, off-diagonal :math:`\beta_1..\beta_{m-1}`). The eigenpairs
    :math:`T_m s_i = \theta_i s_i` (``scipy.linalg.eigh_tridiagonal`` on the host) give the Ritz
    pairs :math:`(\theta_i, y_i = Q_m s_i)`, the best approximations from the Krylov space
    :math:`\mathcal K_m(H, v_0)`; :math:`\theta_1 \le \lambda_1` always.

    Exactly ``steps`` HVPs are spent (one per step) unless the recurrence breaks down:
    :math:`\beta_j \le 10\sqrt{\mathrm{dim}}\,\varepsilon\,\|Hq_j\|` means
    :math:`\mathcal K_j` is an invariant subspace (its Ritz pairs are exact eigenpairs), and the
    loop stops early with ``m = j`` (for :math:`H = 0` after one HVP; never a division by zero).

    Residuals: ``residual_estimates`` are the classical :math:`|\beta_m\, e_m^\top s_i|`;
    ``residuals`` are the exact :math:`\|Hy_i - \theta_i y_i\|`, computed for free by keeping the
    HVP outputs :math:`W = [Hq_1, \dots, Hq_m]` (so :math:`Hy_i = W s_i` by linearity; memory
    ``2 m dim``). ``converged`` is :math:`\|Hy_i - \theta_i y_i\| \le \mathrm{tol}\cdot|\theta_i|`
    for every returned pair.

    Everything except the ``m x m`` tridiagonal problem runs in the operator's array-API namespace
    and on its device; the loop synchronises once per step (the breakdown test).

    Args:
        op (HessianOperator): The symmetric operator.
        v0 (array or None): Start vector (any backend); ``None`` draws a standard normal vector from
            ``numpy.random.default_rng(seed)``.
        steps (int): Number of Lanczos steps (= HVPs, = Krylov dimension ``m`` without breakdown),
            ``>= k``.
        k (int): Number of Ritz pairs returned (fewer, ``m``, if a breakdown left ``m < k``).
        tol (float): Relative residual tolerance for ``converged``.
        seed (int): Seed for the default ``v0``, an integer >= 0.

    Returns:
        EigenResult: Ritz values in descending order, unit Ritz vectors (package sign convention),
        ``iterations = m``, ``method`` noting a breakdown.
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    k = _check_k(k, op.dim)
    if steps < k:
        raise ValueError(f"steps must be >= k to produce k Ritz pairs, got steps={steps}, k={k}")
    tol = check_tolerance("tol", tol)
    xp = op.xp
    q = _start_vector(op, v0, seed)
    q = q / xp.linalg.vector_norm(q)
    eps = float(np.finfo(_host_dtype(op)).eps)
    breakdown_rtol = 10.0 * math.sqrt(op.dim) * eps
    before = op.n_hvp
    Q: list[Any] = [q]
    W: list[Any] = []
    alphas: list[float] = []
    betas: list[float] = []
    breakdown = False
    for j in range(int(steps)):
        w = op._apply_one(Q[j])
        W.append(w)
        Qm = xp.stack(Q, axis=0)  # (j + 1, dim)
        h1 = xp.matmul(Qm, w)
        r = w - xp.matmul(h1, Qm)
        h2 = xp.matmul(Qm, r)
        r = r - xp.matmul(h2, Qm)
        # rescaled norms: ||r||^2 may underflow even where ||r|| is a normal number
        scalars = to_numpy(xp.stack([h1[j] + h2[j], norm(r), norm(w)]))
        alpha, beta, w_norm = (float(s) for s in scalars)
        alphas.append(alpha)
        betas.append(beta)
        if beta <= breakdown_rtol * w_norm:
            breakdown = True
            break
        if j + 1 < steps:
            Q.append(unit(r))  # = r / beta, exact to round-off even where r is subnormal
    m = len(alphas)
    n_hvp = op.n_hvp - before
    theta, S = _tridiagonal_eigh(np.asarray(alphas), np.asarray(betas[: m - 1]))
    kk = min(k, m)
    order = np.argsort(-theta, kind="stable")[:kk]
    theta = theta[order]
    S = S[:, order]  # (m, kk)
    estimates = np.abs(betas[m - 1] * S[m - 1, :])
    S_b = xp.asarray(np.ascontiguousarray(S.T), dtype=op.dtype, device=op.device)  # (kk, m)
    Y = xp.matmul(S_b, xp.stack(Q[:m], axis=0))  # Ritz vectors as rows
    HY = xp.matmul(S_b, xp.stack(W, axis=0))  # H y_i = W s_i, no HVP
    norms = xp.reshape(xp.linalg.vector_norm(Y, axis=1), (-1, 1))
    Y, HY = Y / norms, HY / norms
    theta_b = xp.asarray(theta, dtype=op.dtype, device=op.device)
    residuals = _column_norms(xp, xp.matrix_transpose(HY - Y * xp.reshape(theta_b, (-1, 1))))
    Y = xp.matrix_transpose(Y)
    Y = orient(Y)
    converged = bool(np.all(residuals <= tol * np.abs(theta)))
    note = f", breakdown: invariant subspace of dim {m}" if breakdown else ""
    if kk < k:
        note += f", only {kk} of k={k} pairs exist"
    return EigenResult(
        eigenvalues=theta,
        eigenvectors=Y,
        residuals=residuals,
        n_hvp=n_hvp,
        converged=converged,
        method=f"lanczos_krylov (full reorthogonalization{note})",
        iterations=m,
        residual_estimates=estimates,
    )


def _tridiagonal_eigh(d: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs (ascending) of the symmetric tridiagonal matrix with diagonal ``d``, off ``e``."""
    if d.size == 1:
        return d.astype(float), np.ones((1, 1))
    return scipy.linalg.eigh_tridiagonal(d, e)
