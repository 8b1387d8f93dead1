r"""Dense eigendecomposition: the exact reference for small problems (source ``"exact"``).

Semantics: docs/algorithms.md#A-eigenvector-sources.
"""

from __future__ import annotations

from typing import Any

from xsam_theory.backend import namespace, to_numpy
from xsam_theory.spectral.angles import orient
from xsam_theory.spectral.operator import HessianOperator
from xsam_theory.spectral.results import (
    EigenResult,
    _check_k,
    _check_symmetric,
    _column_norms,
)

__all__ = ["eigh_spectrum", "exact_top"]


def eigh_spectrum(H: Any) -> EigenResult:
    r"""All eigenpairs of a dense symmetric matrix, in descending algebraic order.

    .. math::

        H = V \operatorname{diag}(\lambda) V^\top, \qquad
        \lambda_1 \ge \lambda_2 \ge \dots \ge \lambda_n,

    by ``xp.linalg.eigh`` (which reads one triangle of ``H``) in the matrix's own namespace.
    Eigenvectors follow the package's sign convention (:func:`~xsam_theory.spectral.orient`).
    Residuals :math:`\|Hv_i - \lambda_i v_i\|` are computed with one dense product, not with HVPs,
    so ``n_hvp = 0``.

    Args:
        H (array): Symmetric matrix of shape ``(n, n)`` in any array-API namespace (``ValueError``
            if it is not symmetric up to round-off).

    Returns:
        EigenResult: ``n`` pairs, ``method="dense_eigh"``, ``converged=True``, ``iterations=0``.

    Examples:
        >>> import numpy as np
        >>> eigh_spectrum(np.array([[2.0, 1.0], [1.0, 2.0]])).eigenvalues.tolist()
        [3.0, 1.0]
    """
    xp = namespace(H)
    if H.ndim != 2 or H.shape[0] != H.shape[1] or H.shape[0] == 0:
        raise ValueError(f"H must be a non-empty square matrix, got shape {tuple(H.shape)}")
    if not bool(xp.all(xp.isfinite(H))):
        raise ValueError("H contains non-finite values (NaN or inf)")
    _check_symmetric(H)
    lam, V = xp.linalg.eigh(H)
    lam = xp.flip(lam, axis=0)
    V = orient(xp.flip(V, axis=1))
    R = xp.matmul(H, V) - V * xp.reshape(lam, (1, -1))
    return EigenResult(
        eigenvalues=to_numpy(lam).astype(float),
        eigenvectors=V,
        residuals=_column_norms(xp, R),
        n_hvp=0,
        converged=True,
        method="dense_eigh",
        iterations=0,
    )


def exact_top(op_or_matrix: HessianOperator | Any, k: int = 1) -> EigenResult:
    r"""The top-``k`` algebraic eigenpairs, exactly, from the dense matrix.

    Given a :class:`~xsam_theory.spectral.operator.HessianOperator`, the matrix is assembled as
    :math:`H = \tfrac12 (\tilde H + \tilde H^\top)`, :math:`\tilde H = [He_1, \dots, He_n]`
    (``op.dense()``: exactly ``dim`` HVPs, counted; symmetrizing only removes round-off asymmetry
    of the HVPs). Given a matrix, it is used as is (``n_hvp = 0``). Then
    :func:`eigh_spectrum` and the first ``k`` pairs :math:`\lambda_1 \ge \dots \ge \lambda_k`.

    Args:
        op_or_matrix (HessianOperator or array): The operator, or a dense symmetric matrix.
        k (int): Number of pairs, ``1 <= k <= dim``.

    Returns:
        EigenResult: ``k`` pairs, ``method="exact_dense"``.
    """
    if isinstance(op_or_matrix, HessianOperator):
        op = op_or_matrix
        k = _check_k(k, op.dim)
        before = op.n_hvp
        Ht = op.dense()
        n_hvp = op.n_hvp - before
        H = 0.5 * (Ht + op.xp.matrix_transpose(Ht))
    else:
        H = op_or_matrix
        if H.ndim != 2:
            raise ValueError(f"expected a HessianOperator or a square matrix, got shape {H.shape}")
        k = _check_k(k, H.shape[0])
        n_hvp = 0
    full = eigh_spectrum(H)
    return EigenResult(
        eigenvalues=full.eigenvalues[:k],
        eigenvectors=full.eigenvectors[:, :k],
        residuals=full.residuals[:k],
        n_hvp=n_hvp,
        converged=True,
        method="exact_dense",
        iterations=0,
    )
