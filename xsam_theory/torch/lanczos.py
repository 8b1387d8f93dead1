r"""Torch adapters of the package's eigensolvers on a flat-vector HVP: Lanczos and power iteration.

Both take ``matvec``, a function from a flat tensor to :math:`H` times it, wrap it as a
:class:`~xsam_theory.spectral.HessianOperator` on the tensor's namespace and device, and run the
one implementation of :mod:`xsam_theory.spectral` on it, so every vector stays on the tensor's
device:

* :func:`lanczos_top` is :func:`xsam_theory.spectral.lanczos` (full reorthogonalization on a
  preallocated basis block, exact residuals from the kept HVP outputs; here its loop is
  branch-free and reads its scalars on the host once per call);
* :func:`power_iteration` is :func:`xsam_theory.spectral.power_iteration` with
  ``rayleigh=False``, the reference semantics of the X-SAM / Eigen-SAM code: a fixed number of
  warm-started steps :math:`u \leftarrow Hu/\|Hu\|` converging to the *dominant*
  (largest-:math:`|\lambda|`) eigenvector, with an exact zero branch.

Their results are :class:`TorchEigenResult`, the :class:`~xsam_theory.spectral.EigenResult` with
its eigenvalues and residuals as tensors on the device.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import array_api_compat.torch as xp_torch
import torch
from torch import Tensor

from xsam_theory.spectral import EigenResult, HessianOperator, lanczos
from xsam_theory.spectral import power_iteration as _power_iteration

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
        converged: the :class:`~xsam_theory.spectral.EigenResult`'s ``converged``.
    """

    eigenvalues: Tensor
    eigenvectors: Tensor
    residuals: Tensor
    n_hvp: int
    iterations: int
    method: str
    converged: bool

    @property
    def eigenvalue(self) -> Tensor:
        """The first eigenvalue (0-d tensor)."""
        return self.eigenvalues[0]

    @property
    def eigenvector(self) -> Tensor:
        """The first eigenvector, shape ``(dim,)``."""
        return self.eigenvectors[:, 0]

    @classmethod
    def of(cls, res: EigenResult, like: Tensor, extra_hvp: int = 0) -> TorchEigenResult:
        """``res`` with its host arrays as tensors of ``like``'s dtype and device."""

        def tensor(a: object) -> Tensor:
            return torch.as_tensor(a, dtype=like.dtype).to(like.device)

        return cls(
            eigenvalues=tensor(res.eigenvalues),
            eigenvectors=res.eigenvectors,
            residuals=tensor(res.residuals),
            n_hvp=res.n_hvp + extra_hvp,
            iterations=res.iterations,
            method=f"torch {res.method}",
            converged=res.converged,
        )


def _operator(matvec: Callable[[Tensor], Tensor], v0: Tensor) -> HessianOperator:
    """``matvec`` as a :class:`HessianOperator` on ``v0``'s dtype and device (rows one by one)."""
    if v0.ndim != 1:
        raise ValueError(f"v0 must be a flat vector, got shape {tuple(v0.shape)}")
    return HessianOperator(
        lambda V: torch.stack([matvec(v) for v in V]),
        v0.shape[0],
        xp=xp_torch,
        dtype=v0.dtype,
        device=v0.device,
    )


def lanczos_top(
    matvec: Callable[[Tensor], Tensor],
    v0: Tensor,
    steps: int,
    k: int = 1,
    *,
    keep_hvps: bool = True,
) -> TorchEigenResult:
    r"""Top-``k`` algebraic Ritz pairs after ``steps`` Lanczos steps with full reorthogonalization.

    :func:`xsam_theory.spectral.lanczos` on ``matvec`` (its docstring states the recurrence): the
    Ritz pairs :math:`(\theta_i, Q_m^\top s_i)` of :math:`T_m s_i = \theta_i s_i`, exactly
    ``steps`` HVPs with one host read per call (``stop_at_breakdown=False``: after a breakdown,
    an invariant Krylov space of dimension ``m < steps``, the remaining steps run on the zero
    vector and are dropped), ``k <= steps``.

    The residuals :math:`\|Hy_i - \theta_i y_i\|` come from the kept HVP outputs (free);
    ``keep_hvps=False`` recomputes them by ``k`` extra HVPs of the Ritz vectors (counted in
    ``n_hvp``). Ritz vectors follow the package's sign convention
    (:func:`~xsam_theory.spectral.orient`).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= steps:
        raise ValueError(f"k must be an integer in [1, steps={steps}], got {k!r}")
    op = _operator(matvec, v0)
    res = lanczos(op, v0, steps, k, stop_at_breakdown=False)
    out = TorchEigenResult.of(res, v0)
    if keep_hvps:
        return out
    Y = res.eigenvectors.T
    HY = torch.stack([matvec(y) for y in Y])
    residuals = torch.linalg.vector_norm(HY - out.eigenvalues[:, None] * Y, dim=1)
    return dataclasses.replace(out, residuals=residuals, n_hvp=out.n_hvp + Y.shape[0])


def power_iteration(matvec: Callable[[Tensor], Tensor], v0: Tensor, steps: int) -> TorchEigenResult:
    r"""``steps`` warm-started power steps, the reference semantics (dominant pair, not oriented).

    :func:`xsam_theory.spectral.power_iteration` with ``rayleigh=False`` on ``matvec``:

    .. math::
        u_0 = v_0/\|v_0\|,\qquad u_{j+1} = Hu_j/\|Hu_j\|,

    the iterate left in place where :math:`Hu_j = 0`. No extra HVP: the eigenvalue is the
    Rayleigh quotient :math:`\langle u_{k-1}, Hu_{k-1}\rangle` of the last *input* vector and the
    residual is :math:`\|Hu_{k-1} - \lambda u_{k-1}\|`.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    res = _power_iteration(_operator(matvec, v0), v0, steps, rayleigh=False)
    return TorchEigenResult.of(res, v0)
