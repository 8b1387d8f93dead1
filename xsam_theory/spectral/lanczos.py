r"""Lanczos: the algebraic top eigenpairs of a symmetric operator (docs/theory.md#T-lanczos-bound).

Two implementations:

* :func:`lanczos_eigsh`: ARPACK's implicitly restarted Lanczos (``scipy.sparse.linalg.eigsh``) on
  a ``LinearOperator`` wired to the HVPs, with ``which="LA"`` (largest *algebraic*; never
  ``"LM"``, which would return the largest magnitude, the power-iteration pitfall of
  docs/theory.md#T-dominant-negative).
* :func:`lanczos`: a backend-native Lanczos with full reorthogonalization written against the
  array API only, so that the Krylov loop runs where the HVPs run (e.g. torch on CUDA); only the
  small tridiagonal eigenproblem goes to the host.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np
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

__all__ = ["lanczos", "lanczos_eigsh", "thick_restart_lanczos"]


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
    cores the HVPs need (docs/performance.md#perf-T8).

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
        # process-wide state, and the same call returns different eigenvectors).
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
    op: HessianOperator,
    v0: Any,
    steps: int,
    k: int = 1,
    *,
    tol: float = 1e-8,
    seed: int = 0,
    stop_at_breakdown: bool | None = None,
) -> EigenResult:
    r"""Backend-native Lanczos with full reorthogonalization: top-``k`` Ritz pairs after ``steps``.

    From :math:`q_1 = v_0/\|v_0\|`, step :math:`j = 1, \dots, m` computes

    .. math::

        w_j = Hq_j, \quad
        r_j = (I - Q_j^\top Q_j)\, w_j \ \ \text{(to working precision)}, \quad
        \alpha_j = q_j^\top w_j, \quad
        \beta_j = \|r_j\|, \quad q_{j+1} = r_j/\beta_j,

    with the rows :math:`Q_j = [q_1; \dots; q_j]` of a basis block allocated once (``(m + 1) x
    dim``, rows written in place; the work vectors too), so each Gram–Schmidt pass is two
    matrix–vector products on that block, :math:`r \leftarrow r - Q_j^\top(Q_j r)`. On the host
    the projection is a local pass against :math:`q_{j-1}, q_j`, one such block pass, and a
    second block pass only when the first shrank :math:`\|r\|` below :math:`1/\sqrt 2` of its
    length (the DGKS criterion), which keeps :math:`\|Q Q^\top - I\|` at rounding level;
    off the host every step runs two block passes, branch-free. Then
    :math:`HQ_m^\top = Q_m^\top T_m + \beta_m q_{m+1}e_m^\top` with :math:`T_m` tridiagonal
    (diagonal :math:`\alpha`, off-diagonal :math:`\beta_1..\beta_{m-1}`). The eigenpairs
    :math:`T_m s_i = \theta_i s_i` (on the host) give the Ritz pairs
    :math:`(\theta_i, y_i = Q_m^\top s_i)`, the best approximations from the
    Krylov space :math:`\mathcal K_m(H, v_0)`; :math:`\theta_1 \le \lambda_1` always.

    Exactly ``steps`` HVPs are spent (one per step) unless the recurrence breaks down:
    :math:`\beta_j \le 10\sqrt{\mathrm{dim}}\,\varepsilon\,\|Hq_j\|` means
    :math:`\mathcal K_j` is an invariant subspace (its Ritz pairs are exact eigenpairs), and
    ``m = j``. The loop is branch-free (after a breakdown :math:`q_{j+1} = 0` exactly, never a
    division by zero) and reads its scalars on the host after every step when
    ``stop_at_breakdown`` (a breakdown then stops the loop at once), else once, after the loop
    (the HVPs after a breakdown are then spent on the zero vector and dropped). The default
    stops on the CPU, where a read costs nothing, and not on an accelerator.

    Residuals: ``residual_estimates`` are the classical :math:`|\beta_m\, e_m^\top s_i|`;
    ``residuals`` are the exact :math:`\|Hy_i - \theta_i y_i\|`, computed for free by keeping the
    HVP outputs :math:`W = [Hq_1; \dots; Hq_m]` (so :math:`Hy_i = W^\top s_i` by linearity;
    memory ``2 m dim``). ``converged`` is :math:`\|Hy_i - \theta_i y_i\| \le
    \mathrm{tol}\cdot|\theta_i|` for every returned pair.

    Args:
        op (HessianOperator): The symmetric operator.
        v0 (array or None): Start vector (any backend); ``None`` draws a standard normal vector from
            ``numpy.random.default_rng(seed)``.
        steps (int): Number of Lanczos steps (= HVPs, = Krylov dimension ``m`` without breakdown),
            ``>= k``.
        k (int): Number of Ritz pairs returned (fewer, ``m``, if a breakdown left ``m < k``).
        tol (float): Relative residual tolerance for ``converged``.
        seed (int): Seed for the default ``v0``, an integer >= 0.
        stop_at_breakdown (bool, optional): Read the scalars after every step and stop at a
            breakdown (``None``: on the CPU only).

    Returns:
        EigenResult: Ritz values in descending order, unit Ritz vectors (package sign convention),
        ``iterations = m``, ``method`` noting a breakdown.
    """
    _check_steps("steps", steps)
    k = _check_k(k, op.dim)
    if steps < k:
        raise ValueError(f"steps must be >= k to produce k Ritz pairs, got steps={steps}, k={k}")
    tol = check_tolerance("tol", tol)
    before = op.n_hvp
    stop = _on_host(op) if stop_at_breakdown is None else bool(stop_at_breakdown)
    kry = _Krylov(op, _start_vector(op, v0, seed), int(steps), 1 if stop else int(steps))
    kry.extend(int(steps), None)
    return kry.result(k, tol, op.n_hvp - before, "lanczos_krylov (full reorthogonalization")


def thick_restart_lanczos(
    op: HessianOperator,
    v0: Any = None,
    k: int = 1,
    *,
    tol: float = 1e-6,
    max_basis: int = 20,
    max_hvp: int | None = None,
    seed: int = 0,
) -> EigenResult:
    r"""Top-``k`` algebraic eigenpairs to a residual tolerance, in a basis of ``max_basis`` vectors.

    Thick-restart Lanczos (Wu & Simon): the Lanczos recurrence of :func:`lanczos` runs until the
    basis holds :math:`m` = ``max_basis`` vectors; then the :math:`p` top Ritz pairs
    :math:`(\theta_i, y_i = Q_m^\top s_i)` are kept (with :math:`Hy_i = W_m^\top s_i`, no HVP) and
    the last residual vector :math:`q_{m+1}` is appended, so that

    .. math::

        H[y_1..y_p, q_{m+1}] = [y_1..y_p, q_{m+1}]
        \begin{pmatrix}\Theta_p & \beta_m s_m \\ \beta_m s_m^\top & \cdot\end{pmatrix} + \dots,
        \qquad s_m = (S_{m,1}, \dots, S_{m,p}),

    an arrowhead projected matrix that the next steps extend by tridiagonal columns (full
    reorthogonalization against the whole block keeps the basis orthonormal). Here
    :math:`p = \max(k + 1, \lfloor 3m/4 \rfloor)`. The residual estimates
    :math:`|\beta_j e_j^\top s_i|` of the current projected matrix are read after every step on
    the CPU (every 10 on an accelerator), and the iteration stops as soon as
    :math:`|\beta_j e_j^\top s_i| \le \mathrm{tol}\cdot|\theta_i|` for the ``k`` top pairs, or
    after ``max_hvp`` HVPs. ``converged`` is the exact criterion
    :math:`\|Hy_i - \theta_i y_i\| \le \mathrm{tol}\cdot|\theta_i|` (exact residuals from the kept
    HVP outputs, no extra HVP).

    Args:
        op (HessianOperator): The symmetric operator.
        v0 (array or None): Start vector (any backend); ``None``: a standard normal vector from
            ``seed``.
        k (int): Number of pairs, ``1 <= k < max_basis``.
        tol (float): Relative residual tolerance, ``> 0``.
        max_basis (int): Basis vectors kept at most, ``m`` (memory ``2 m dim``).
        max_hvp (int, optional): HVP budget (default ``max(100 * max_basis, 1000)``).
        seed (int): Seed for the default ``v0``, an integer >= 0.

    Returns:
        EigenResult: ``k`` pairs in descending order, ``iterations`` = Lanczos steps (= HVPs),
        ``method`` naming the restarts.
    """
    k = _check_k(k, op.dim)
    tol = check_tolerance("tol", tol)
    if tol <= 0:
        raise ValueError("tol must be > 0 (a residual of exactly 0 is not reachable in floats)")
    _check_steps("max_basis", max_basis)
    m = min(int(max_basis), op.dim)
    if k >= m and m < op.dim:
        raise ValueError(f"max_basis must be > k, got max_basis={max_basis}, k={k}")
    budget = max(100 * m, 1000) if max_hvp is None else _check_steps("max_hvp", max_hvp)
    before = op.n_hvp
    kry = _Krylov(op, _start_vector(op, v0, seed), m, 1 if _on_host(op) else 10)
    stop = _Converged(k, tol)
    restarts = 0
    while True:
        kry.extend(min(m, kry.j + budget - (op.n_hvp - before)), stop)
        if kry.broken or stop.done or op.n_hvp - before >= budget or kry.j < m:
            break
        kry.restart(max(k + 1, (3 * m) // 4))
        restarts += 1
    return kry.result(
        k, tol, op.n_hvp - before, f"thick_restart_lanczos (max_basis={m}, {restarts} restarts"
    )


def _check_steps(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _on_host(op: HessianOperator) -> bool:
    """Whether the operator's arrays live in host memory (reading a scalar costs no sync)."""
    return op.device is None or str(op.device).lower() in ("cpu", "cpu_device")


class _Converged:
    """Stopping test of :func:`thick_restart_lanczos`: the ``k`` top residual estimates."""

    def __init__(self, k: int, tol: float):
        self.k, self.tol, self.done = k, tol, False

    def __call__(self, theta: np.ndarray, estimates: np.ndarray) -> bool:
        kk = self.k
        self.done = bool(
            theta.shape[0] >= kk and np.all(estimates[:kk] <= self.tol * np.abs(theta[:kk]))
        )
        return self.done


class _Krylov:
    r"""A Lanczos factorization :math:`HQ_j^\top = Q_j^\top T_j + \beta_j q_{j+1}e_j^\top`.

    ``V`` (``(m + 1) x dim``) holds the rows :math:`q_1..q_{m+1}` and ``W`` (``m x dim``) the
    HVP outputs :math:`Hq_i`, both allocated once on the operator's device and written in place;
    ``T`` (host, ``m x m``) is the projected matrix (tridiagonal, arrowhead after a restart),
    ``j`` the number of steps in the basis and ``beta`` the coupling :math:`\beta_j`. The host
    reads the step scalars once every ``sync_every`` steps.
    """

    def __init__(self, op: HessianOperator, v: Any, m: int, sync_every: int):
        xp = op.xp
        self.op, self.xp, self.m = op, xp, m
        self.V = xp.zeros((m + 1, op.dim), dtype=op.dtype, device=op.device)
        self.W = xp.zeros((m, op.dim), dtype=op.dtype, device=op.device)
        self.V[0, :] = unit(v)
        self.T = np.zeros((m, m))
        self.j, self.beta, self.broken = 0, 0.0, False
        self.rtol = 10.0 * math.sqrt(op.dim) * float(xp.finfo(op.dtype).eps)
        self.sync_every = sync_every
        self.work = _Work(op)
        self.spare: Any = None  # the Ritz block of a restart, allocated at the first one

    def extend(self, stop: int, converged: Any) -> None:
        """Steps ``j .. stop - 1`` (fewer after a breakdown or once ``converged`` says so)."""
        while self.j < stop and not self.broken:
            j0 = self.j
            scalars = _lanczos_steps(
                self.op,
                self.V,
                self.W,
                j0,
                min(stop, j0 + self.sync_every),
                self.rtol,
                self.work,
                self.sync_every == 1,
            )
            self._record(np.asarray(to_numpy(scalars), dtype=float), j0)
            if converged is not None and converged(*self.ritz(estimates_only=True)):
                return

    def _record(self, scalars: np.ndarray, j0: int) -> None:
        """Enter the host scalars ``(alpha, beta, ok)`` of steps ``j0..`` into ``T``."""
        alpha, beta, ok = scalars
        bad = np.flatnonzero(ok == 0)
        n = int(bad[0]) + 1 if bad.size else alpha.shape[0]
        for i in range(n):
            j = j0 + i
            self.T[j, j] = alpha[i]
            if j + 1 < self.m:  # the coupling to step j + 1 (outside T[:j+1, :j+1] until then)
                self.T[j, j + 1] = self.T[j + 1, j] = beta[i]
        self.j, self.beta, self.broken = j0 + n, float(beta[n - 1]), bool(bad.size)

    def ritz(self, estimates_only: bool = False) -> tuple[np.ndarray, Any]:
        """Ritz values (descending) and the eigenvectors of ``T`` (or the residual estimates)."""
        # NumPy's eigh: the same LAPACK solver family with less call overhead than SciPy's, which
        # counts on the CPU where this runs after every step of a small problem
        theta, S = np.linalg.eigh(self.T[: self.j, : self.j])
        if estimates_only:
            return theta[::-1], np.abs(self.beta * S[self.j - 1, ::-1])
        return theta[::-1].copy(), S[:, ::-1].copy()  # copies: positive strides

    def restart(self, p: int) -> None:
        """Keep the ``p`` top Ritz pairs and the residual vector: the thick restart."""
        xp, j = self.xp, self.j
        theta, S = self.ritz()
        Sb = xp.asarray(S[:, :p].T.copy(), dtype=self.op.dtype, device=self.op.device)
        if self.spare is None or self.spare.shape[0] < p:
            self.spare = xp.empty((p, self.op.dim), dtype=self.op.dtype, device=self.op.device)
        Y = self.spare[:p, :]
        self.V[:p, :] = _matmul_into(Sb, self.V[:j, :], Y)  # Ritz vectors, no fresh block
        self.W[:p, :] = _matmul_into(Sb, self.W[:j, :], Y)
        self.V[p, :] = self.V[j, :]
        coupling = self.beta * S[j - 1, :p]
        self.T = np.zeros_like(self.T)
        self.T[:p, :p] = np.diag(theta[:p])
        self.T[p, :p] = self.T[:p, p] = coupling
        self.j = p

    def result(self, k: int, tol: float, n_hvp: int, method: str) -> EigenResult:
        """The ``k`` top Ritz pairs with exact residuals (``HY = S^T W``, no HVP)."""
        xp, op, m = self.xp, self.op, self.j
        theta, S = self.ritz()
        kk = min(k, m)
        theta, S = theta[:kk], S[:, :kk]
        estimates = np.abs(self.beta * S[m - 1, :])
        S_b = xp.asarray(S.T.copy(), dtype=op.dtype, device=op.device)
        Y = xp.matmul(S_b, self.V[:m, :])  # Ritz vectors as rows
        HY = xp.matmul(S_b, self.W[:m, :])  # H y_i = W^T s_i, no HVP
        norms = xp.reshape(xp.linalg.vector_norm(Y, axis=1), (-1, 1))
        Y, HY = Y / norms, HY / norms
        theta_b = xp.asarray(theta.copy(), dtype=op.dtype, device=op.device)
        residuals = _column_norms(xp, xp.matrix_transpose(HY - Y * xp.reshape(theta_b, (-1, 1))))
        note = f", breakdown: invariant subspace of dim {m}" if self.broken else ""
        if kk < k:
            note += f", only {kk} of k={k} pairs exist"
        return EigenResult(
            eigenvalues=theta.copy(),
            eigenvectors=orient(xp.matrix_transpose(Y)),
            residuals=residuals,
            n_hvp=n_hvp,
            converged=bool(np.all(residuals <= tol * np.abs(theta))),
            method=f"{method}{note})",
            iterations=m,
            residual_estimates=estimates,
        )


def _matmul_into(a: Any, b: Any, out: Any) -> Any:
    """``out[...] = a @ b`` without a fresh result array where the namespace allows it.

    NumPy and torch write the product straight into ``out`` (``out=``); any other array-API
    namespace computes ``a @ b`` and copies it in (the standard has no ``out=``).
    """
    if type(out) is np.ndarray:
        return np.matmul(a, b, out=out)
    if _is_torch(out):
        import torch

        if a.ndim == 1:  # torch.matmul's out= would resize a (1, n) product
            return torch.mv(b.mT, a, out=out)
        return torch.mm(a, b, out=out)
    out[...] = a @ b
    return out


def _sub_into(a: Any, b: Any, out: Any) -> None:
    """``out[...] = a - b`` in one pass where the namespace allows it (NumPy, torch)."""
    if type(out) is np.ndarray:
        np.subtract(a, b, out=out)
    elif _is_torch(out):
        import torch

        torch.sub(a, b, out=out)
    else:
        out[...] = a - b


def _is_torch(x: Any) -> bool:
    """Whether ``x`` is a torch tensor (without importing torch when it is not loaded)."""
    return type(x).__module__.startswith("torch")


class _Work:
    """The work vectors of the Lanczos steps, allocated once per factorization (no page faults).

    ``r`` holds the vector being orthogonalized and ``t`` the block product subtracted from it.
    """

    def __init__(self, op: HessianOperator):
        xp = op.xp
        self.r = xp.empty((op.dim,), dtype=op.dtype, device=op.device)
        self.t = xp.empty((op.dim,), dtype=op.dtype, device=op.device)

    def project_out(self, B: Any) -> Any:
        r"""One classical Gram–Schmidt pass :math:`r \leftarrow r - B^\top(Br)` in place.

        Returns:
            array: The coefficients :math:`h = Br`.
        """
        h = B @ self.r
        self.r -= _matmul_into(h, B, self.t)
        return h


#: DGKS: a second Gram–Schmidt pass when one pass shrinks the vector below this fraction
_DGKS = 1.0 / math.sqrt(2.0)


def _lanczos_steps(
    op: HessianOperator, V: Any, W: Any, j0: int, j1: int, rtol: float, work: _Work, host: bool
) -> Any:
    r"""Lanczos steps ``j0 .. j1 - 1`` on the block ``V`` in place.

    Step ``j``: :math:`w = Hq_j` (stored in ``W[j]``), then :math:`r` orthogonalized against the
    rows :math:`V_{:j+1}`, :math:`\alpha_j` the sum of its :math:`q_j` coefficients,
    :math:`\beta_j = \|r\|` (no underflow: :func:`~xsam_theory.vectors.norm`), ``ok``
    :math:`= \beta_j > \mathrm{rtol}\,\|w\|` and :math:`q_{j+1} = r/\|r\|`, times ``0`` once a
    step was not ``ok`` (never a division by zero).

    On the host (one step per call, scalars read at once) the orthogonalization is the local
    pass against :math:`q_{j-1}, q_j` followed by one classical Gram–Schmidt pass against the
    block, and a second one only when that pass shrank :math:`\|r\|` by more than
    :math:`1/\sqrt 2` (the Daniel–Gragg–Kaufman–Stewart criterion): two block products a step
    instead of four. Off the host the steps are branch-free and run two full passes
    (:math:`r \leftarrow r - V_{:j+1}^\top(V_{:j+1} r)`, twice) with no host synchronisation.

    Returns:
        array: Shape ``(3, j1 - j0)``: the rows ``alpha``, ``beta``, ``ok`` (as 0/1), on the device.
    """
    if host:
        return _host_steps(op, V, W, j0, j1, rtol, work)
    xp = op.xp
    alive = xp.ones((), dtype=xp.bool, device=op.device)
    out = []
    for j in range(j0, j1):
        w = op._apply_one(V[j, :])
        W[j, :] = w
        alpha, beta, ok = _device_step(xp, V, w, j, rtol, work)
        alive = xp.logical_and(alive, ok)
        _store_next(xp, V, j, work.r, beta, alive)
        out.append(xp.stack([alpha, beta, xp.astype(alive, op.dtype)]))
    return xp.stack(out, axis=1)


def _host_steps(
    op: HessianOperator, V: Any, W: Any, j0: int, j1: int, rtol: float, work: _Work
) -> np.ndarray:
    """:func:`_lanczos_steps` on the host: the step scalars as Python floats (no array calls)."""
    xp = op.xp
    alive = True
    out = []
    for j in range(j0, j1):
        w = op._apply_one(V[j, :])
        W[j, :] = w
        alpha, beta, ok = _host_step(xp, V, w, j, rtol, work)
        alive = alive and bool(ok)
        _store_next(xp, V, j, work.r, beta, alive)
        out.append((float(alpha), float(beta), 1.0 if alive else 0.0))
    return np.array(out, dtype=float).T


def _host_step(xp: Any, V: Any, w: Any, j: int, rtol: float, work: _Work) -> tuple[Any, ...]:
    r"""One orthogonalization on the host: local pass, one block pass, a second if DGKS says so.

    :math:`\|w\|` for the breakdown test is :math:`\sqrt{\|h_0\|^2 + \|r_0\|^2}` from the
    local pass :math:`w = h_0^\top L + r_0` (orthogonal parts: a sum of squares, no cancellation),
    so no pass over ``w`` is spent on it.
    """
    r = work.r
    L = V[max(j - 1, 0) : j + 1, :]
    h0 = L @ w
    _sub_into(w, _matmul_into(h0, L, work.t), r)
    n0 = float(norm(r))
    w_norm = math.hypot(float(xp.linalg.vector_norm(h0)), n0)
    B = V[: j + 1, :]
    alpha = h0[-1] + work.project_out(B)[j]
    beta = norm(r)
    if float(beta) < _DGKS * n0:
        alpha = alpha + work.project_out(B)[j]
        beta = norm(r)
    return alpha, beta, beta > rtol * w_norm


def _device_step(xp: Any, V: Any, w: Any, j: int, rtol: float, work: _Work) -> tuple[Any, ...]:
    """One branch-free orthogonalization: two classical Gram–Schmidt passes against the block."""
    work.r[...] = w
    B = V[: j + 1, :]
    alpha = work.project_out(B)[j] + work.project_out(B)[j]
    beta = norm(work.r)
    return alpha, beta, beta > rtol * norm(w)


def _store_next(xp: Any, V: Any, j: int, r: Any, beta: Any, alive: Any) -> None:
    r"""``V[j + 1] = r/beta`` while ``alive``, else exactly ``0`` (branch-free, no NaN).

    A float64 NumPy vector whose :math:`\beta` lies safely inside the float range (the direct
    path of :func:`~xsam_theory.vectors.unit`) is divided straight into the row; other vectors
    take :func:`~xsam_theory.vectors.unit`'s rescaled path.
    """
    if type(r) is np.ndarray and r.dtype == np.float64:
        b = float(beta)
        if bool(alive) and _SAFE_BETA[0] < b < _SAFE_BETA[1]:
            np.divide(r, b, out=V[j + 1, :])
            return
    if isinstance(alive, bool):  # read on the host already
        V[j + 1, :] = unit(r) * (1.0 if alive else 0.0)
        return
    V[j + 1, :] = unit(r) * xp.astype(alive, r.dtype)  # unit(0) = 0: no division by zero


#: beta in this range divides without overflow or loss (the square root of unit's safe range)
_SAFE_BETA = (2.0**-450, 2.0**450)
