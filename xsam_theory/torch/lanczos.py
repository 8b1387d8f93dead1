r"""Torch-native eigensolvers on a flat-vector HVP: Lanczos (algebraic top) and power iteration.

Both take ``matvec``, a function from a flat tensor to :math:`H` times it, and keep every
vector on the tensor's device.

* :func:`lanczos_top` is the algorithm of :func:`xsam_theory.spectral.lanczos` (full
  reorthogonalization by classical Gram–Schmidt twice, exact residuals from the kept HVP outputs),
  rewritten so that **the Krylov loop never synchronises with the host**: a breakdown is handled
  branch-free (the recurrence continues with a zero vector and the step is masked out), the
  number of valid steps is read once after the loop, and the small ``m x m`` tridiagonal
  eigenproblem is solved by ``torch.linalg.eigh`` on the same device. On CUDA the only host
  transfers are that one count and whatever the caller converts to Python floats.
* :func:`power_iteration` is the reference semantics of the X-SAM / Eigen-SAM code: a fixed
  number of warm-started steps :math:`u \leftarrow Hu/\|Hu\|` converging to the *dominant*
  (largest-:math:`|\lambda|`) eigenvector, with an exact zero branch (where :math:`Hu = 0` the
  iterate stays put) instead of the reference's :math:`+10^{-12}`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from xsam_theory.spectral.angles import orient

__all__ = ["TorchEigenResult", "lanczos_top", "power_iteration"]


@dataclass(frozen=True)
class TorchEigenResult:
    r"""Eigenpairs as tensors on the operator's device.

    Attributes:
        eigenvalues: shape ``(k,)``, descending (power iteration: one dominant estimate).
        eigenvectors: shape ``(dim, k)``, unit columns.
        residuals: shape ``(k,)``, :math:`\|Hv_i - \lambda_i v_i\|`.
        n_hvp: HVPs spent.
        iterations: Lanczos steps kept (``m``) or power steps run.
        method: which algorithm, with notes.
    """

    eigenvalues: Tensor
    eigenvectors: Tensor
    residuals: Tensor
    n_hvp: int
    iterations: int
    method: str

    @property
    def eigenvalue(self) -> Tensor:
        """The first eigenvalue (0-d tensor)."""
        return self.eigenvalues[0]

    @property
    def eigenvector(self) -> Tensor:
        """The first eigenvector, shape ``(dim,)``."""
        return self.eigenvectors[:, 0]


def lanczos_top(
    matvec: Callable[[Tensor], Tensor],
    v0: Tensor,
    steps: int,
    k: int = 1,
    *,
    keep_hvps: bool = True,
) -> TorchEigenResult:
    r"""Top-``k`` algebraic Ritz pairs after ``steps`` Lanczos steps with full reorthogonalization.

    From :math:`q_1 = v_0/\|v_0\|`:

    .. math::
        w_j = Hq_j,\quad r_j = (I - Q_jQ_j^\top)^2 w_j,\quad
        \alpha_j = q_j^\top w_j + q_j^\top(I - Q_jQ_j^\top)w_j,\quad
        \beta_j = \|r_j\|,\quad q_{j+1} = r_j/\beta_j,

    then the eigenpairs :math:`T_m s_i = \theta_i s_i` of the tridiagonal :math:`T_m` give the
    Ritz pairs :math:`(\theta_i, Q_m s_i)`. A breakdown
    (:math:`\beta_j \le 10\sqrt{\mathrm{dim}}\,\varepsilon\|w_j\|`: the Krylov space is invariant)
    sets every later :math:`q` to zero instead of stopping, so the loop has no data-dependent
    branch; the steps after it are dropped (``m = j``) after the loop. Exactly ``steps`` HVPs are
    spent.

    ``keep_hvps=True`` keeps :math:`W = [Hq_1..Hq_m]` (memory ``2·steps·dim``) so that the
    residuals :math:`\|Hy_i - \theta_i y_i\|` are exact and free; ``False`` spends ``k`` extra
    HVPs on them instead. Ritz vectors follow the package's sign convention
    (:func:`~xsam_theory.spectral.orient`).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= steps:
        raise ValueError(f"k must be an integer in [1, steps={steps}], got {k!r}")
    if v0.ndim != 1:
        raise ValueError(f"v0 must be a flat vector, got shape {tuple(v0.shape)}")
    dim = v0.shape[0]
    dtype, device = v0.dtype, v0.device
    eps = torch.finfo(dtype).eps
    rtol = 10.0 * math.sqrt(dim) * eps
    Q = torch.zeros((steps, dim), dtype=dtype, device=device)
    W = torch.zeros((steps, dim), dtype=dtype, device=device) if keep_hvps else None
    alphas = torch.zeros(steps, dtype=dtype, device=device)
    betas = torch.zeros(steps, dtype=dtype, device=device)
    active = torch.ones(steps, dtype=torch.bool, device=device)  # step j is part of T_m
    Q[0] = v0 / torch.linalg.vector_norm(v0)
    alive = torch.ones((), dtype=torch.bool, device=device)
    for j in range(steps):
        q = Q[j]
        w = matvec(q)
        if W is not None:
            W[j] = w
        Qj = Q[: j + 1]
        h1 = Qj @ w
        r = w - h1 @ Qj
        h2 = Qj @ r
        r = r - h2 @ Qj
        beta = torch.linalg.vector_norm(r)
        alphas[j] = h1[j] + h2[j]
        active[j] = alive
        ok = beta > rtol * torch.linalg.vector_norm(w)
        betas[j] = torch.where(ok, beta, torch.zeros_like(beta))
        alive = alive & ok
        if j + 1 < steps:
            # branch-free: after a breakdown the next q is exactly zero (and stays zero)
            safe = torch.where(ok, beta, torch.ones_like(beta))
            Q[j + 1] = torch.where(alive, r / safe, torch.zeros_like(r))
    m = int(active.sum())  # the one host synchronisation
    T = torch.diag(alphas[:m])
    if m > 1:
        off = betas[: m - 1]
        T = T + torch.diag(off, 1) + torch.diag(off, -1)
    theta, S = torch.linalg.eigh(T)  # ascending, on the device
    kk = min(k, m)
    theta = torch.flip(theta, (0,))[:kk]
    S = torch.flip(S, (1,))[:, :kk]  # (m, kk)
    Y = S.T @ Q[:m]  # Ritz vectors as rows
    if W is not None:
        HY = S.T @ W[:m]
        n_extra = 0
    else:
        HY = torch.stack([matvec(y) for y in Y])
        n_extra = kk
    norms = torch.linalg.vector_norm(Y, dim=1, keepdim=True)
    Y, HY = Y / norms, HY / norms
    residuals = torch.linalg.vector_norm(HY - theta[:, None] * Y, dim=1)
    note = f", breakdown: invariant subspace of dim {m}" if m < steps else ""
    return TorchEigenResult(
        eigenvalues=theta,
        eigenvectors=orient(Y.T),
        residuals=residuals,
        n_hvp=steps + n_extra,
        iterations=m,
        method=f"torch lanczos (full reorthogonalization{note})",
    )


def power_iteration(matvec: Callable[[Tensor], Tensor], v0: Tensor, steps: int) -> TorchEigenResult:
    r"""``steps`` warm-started power steps, the reference semantics (dominant pair, not oriented).

    .. math::
        u_0 = v_0/\|v_0\|,\qquad u_{j+1} = Hu_j/\|Hu_j\| \quad(\text{and } u_{j+1} = u_j
        \text{ where } Hu_j = 0).

    No extra HVP: the eigenvalue is the Rayleigh quotient :math:`\langle u_{k-1}, Hu_{k-1}\rangle`
    of the last *input* vector and the residual is :math:`\|Hu_{k-1} - \lambda u_{k-1}\|` (both
    belong to :math:`u_{k-1}`), as in :func:`xsam_theory.spectral.power_iteration` with
    ``rayleigh=False``. The loop has no host synchronisation.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    u = v0 / torch.linalg.vector_norm(v0)
    lam = res = None
    for _ in range(steps):
        Hu = matvec(u)
        n = torch.linalg.vector_norm(Hu)
        lam = torch.dot(u, Hu)
        res = torch.linalg.vector_norm(Hu - lam * u)
        u = torch.where(n > 0, Hu / torch.where(n > 0, n, torch.ones_like(n)), u)
    return TorchEigenResult(
        eigenvalues=lam.reshape(1),
        eigenvectors=u.reshape(-1, 1),
        residuals=res.reshape(1),
        n_hvp=steps,
        iterations=steps,
        method="torch power (reference semantics)",
    )
