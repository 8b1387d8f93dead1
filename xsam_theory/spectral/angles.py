r"""Sign conventions, top eigenspaces, and angles between a vector and a subspace.

An eigenvector is defined only up to sign, and a repeated top eigenvalue has a whole eigenspace of
top eigenvectors. This module fixes the package's sign convention (:func:`orient`) and measures
angles against the top *eigenspace* (:func:`top_eigenspace`, :func:`angle_to_subspace`), which is
well defined in both cases (docs/theory.md#T-eigenspace-angle).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xsam_theory.backend import device_of, namespace, to_numpy

__all__ = ["angle_to_subspace", "orient", "top_eigenspace"]

_TINY = np.finfo(np.float64).tiny


def orient(v: Any) -> Any:
    r"""Canonical sign of a vector (or of each column of a matrix): the package's convention.

    .. math::

        \operatorname{orient}(v) = s\,v, \qquad
        s = \operatorname{sign}(v_{i^*}) \ (\text{with } \operatorname{sign}(0) = +1), \qquad
        i^* = \min \arg\max_i |v_i|,

    i.e. the component of largest magnitude is made non-negative, and on ties the first such
    component decides. Spectral methods that return an eigenvector of arbitrary sign (dense
    ``eigh``, ARPACK, Lanczos) pass it through this function, so results agree across backends;
    power iteration does not (its sign is part of the reference semantics:
    docs/theory.md#T-dominant-negative). The zero vector
    is returned unchanged. Works for shape ``(dim,)`` and, column by column, ``(dim, k)``.

    Args:
        v (array): A vector ``(dim,)`` or a matrix ``(dim, k)`` of column vectors, in any array-API
            namespace.

    Returns:
        array: ``v`` with each vector's sign fixed, same namespace, shape and dtype.

    Examples:
        >>> import numpy as np
        >>> orient(np.array([0.5, -2.0, 2.0])).tolist()
        [-0.5, 2.0, -2.0]
    """
    xp = namespace(v)
    if v.ndim not in (1, 2):
        raise ValueError(f"orient expects a vector or a matrix of columns, got shape {v.shape}")
    V = v if v.ndim == 2 else xp.reshape(v, (v.shape[0], 1))
    if V.shape[0] == 0:
        return v
    idx = xp.argmax(xp.abs(V), axis=0)  # first occurrence of the maximum (array API standard)
    rows = xp.arange(V.shape[0], device=device_of(V))
    mask = xp.reshape(rows, (-1, 1)) == xp.reshape(idx, (1, -1))
    pivot = xp.sum(xp.where(mask, V, xp.zeros_like(V)), axis=0)
    sign = xp.where(pivot < 0, -xp.ones_like(pivot), xp.ones_like(pivot))
    W = V * xp.reshape(sign, (1, -1))
    return W if v.ndim == 2 else xp.reshape(W, (v.shape[0],))


def top_eigenspace(eigenvalues: Any, eigenvectors: Any, rtol: float = 1e-8) -> Any:
    r"""Orthonormal basis of the span of all eigenvectors whose eigenvalue ties with the top one.

    With :math:`\lambda_1 = \max_i \lambda_i` (algebraic), the selected set is

    .. math::

        S = \{\, i : \lambda_1 - \lambda_i \le \mathrm{rtol}\cdot\max(|\lambda_1|,
        \mathrm{tiny}) \,\},

    and the basis is the ``Q`` factor of a reduced QR decomposition of the selected columns. The
    span, unlike any single eigenvector, is well defined when :math:`\lambda_1` is repeated. It is
    only as complete as the pairs passed in: pass at least as many pairs as the multiplicity of
    :math:`\lambda_1` (e.g. the output of :func:`~xsam_theory.spectral.eigh_spectrum`).

    Args:
        eigenvalues (array_like): Shape ``(k,)`` (NumPy or any backend; any order).
        eigenvectors (array): Shape ``(dim, k)``, column ``i`` belonging to ``eigenvalues[i]``.
        rtol (float): Relative tolerance for a tie with :math:`\lambda_1` (``>= 0``).

    Returns:
        array: Shape ``(dim, m)``, orthonormal columns, in the namespace of ``eigenvectors``
        (:math:`m = |S| \ge 1`).
    """
    if not rtol >= 0:
        raise ValueError(f"rtol must be >= 0, got {rtol!r}")
    lam = np.asarray(to_numpy(eigenvalues), dtype=float).reshape(-1)
    shape = tuple(eigenvectors.shape)
    if lam.size == 0 or len(shape) != 2 or shape[1] != lam.size:
        raise ValueError(
            f"eigenvectors must have shape (dim, {lam.size}) with at least one pair, got {shape}"
        )
    if not np.all(np.isfinite(lam)):
        raise ValueError("eigenvalues contain non-finite values (NaN or inf)")
    top = float(np.max(lam))
    selected = np.flatnonzero(top - lam <= rtol * max(abs(top), _TINY))
    xp = namespace(eigenvectors)
    idx = xp.asarray(selected, device=device_of(eigenvectors))
    Vs = xp.take(eigenvectors, idx, axis=1)
    Q, _ = xp.linalg.qr(Vs, mode="reduced")
    return Q


def angle_to_subspace(u: Any, basis: Any) -> float:
    r"""The angle in degrees between a vector and the subspace spanned by orthonormal columns.

    .. math::

        \angle(u, \mathcal{S}) = \arccos\bigl(\min(1, \|B^\top \hat u\|)\bigr),
        \qquad \hat u = u / \|u\|,

    where the columns of :math:`B` are an orthonormal basis of :math:`\mathcal{S}`. It is computed
    in the mathematically equal, numerically stable form
    :math:`\operatorname{atan2}(\|\hat u - BB^\top\hat u\|, \|B^\top \hat u\|)`, which stays
    accurate for small angles (``arccos`` of a number within round-off of 1 would report about
    :math:`10^{-6}` degrees for a vector inside the subspace). The angle lies in
    :math:`[0°, 90°]`, is invariant to :math:`u \to -u` and to any rotation of the basis within
    :math:`\mathcal{S}`. Returns NaN when :math:`u = 0` (the angle is undefined; a documented
    "not available", not a numerical failure).

    Args:
        u (array): Shape ``(dim,)``.
        basis (array): Shape ``(dim, m)`` with orthonormal columns (or ``(dim,)`` for a unit
            vector), in the same namespace as ``u``.

    Returns:
        float: The angle in degrees.
    """
    xp = namespace(u, basis)
    B = basis if basis.ndim == 2 else xp.reshape(basis, (basis.shape[0], 1))
    if u.ndim != 1 or B.ndim != 2 or B.shape[0] != u.shape[0]:
        raise ValueError(
            f"need u of shape (dim,) and basis of shape (dim, m), got {tuple(u.shape)} and "
            f"{tuple(basis.shape)}"
        )
    n = float(xp.linalg.vector_norm(u))
    if n == 0.0:
        return math.nan
    uh = u / n
    p = xp.matmul(uh, B)  # B^T u_hat, shape (m,)
    perp = uh - xp.matmul(B, p)
    return math.degrees(
        math.atan2(float(xp.linalg.vector_norm(perp)), float(xp.linalg.vector_norm(p)))
    )
