r"""Factorization toys: a manifold of minimizers whose sharpness varies along it.

:class:`Factorization` is the scalar toy :math:`\tfrac12(xy-1)^2`, the vector toy
:math:`\tfrac12(x^\top y-1)^2` and the depth-``k`` product in one class. At every minimizer
its Hessian is the rank-one Gauss-Newton term :math:`qq^\top`, so :math:`\lambda_{\max}` equals the
trace and the toy cannot separate the two criteria of what SAM regularizes
(docs/theory.md#T-flat-bias). :class:`TwoBlockFactorization` (toy B there) is a two-sample
problem whose per-sample losses live on separate blocks of parameters; it separates
:math:`\lambda_{\max}` from the trace. The problems: docs/algorithms.md#A-problems.
"""

from __future__ import annotations

import operator
from functools import cached_property
from types import ModuleType
from typing import Any

import numpy as np

from xsam_theory.backend import default_namespace, device_of, namespace
from xsam_theory.problems.base import Point, Problem

__all__ = ["Factorization", "TwoBlockFactorization"]


def _positive_int(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    try:
        k = operator.index(value)
    except TypeError:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}") from None
    if k < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return k


def _check_floating(problem: Problem, w: Any) -> None:
    """``problem``'s shape/finiteness check on ``w``, plus a real floating dtype."""
    problem._check_point(w)
    if not namespace(w).isdtype(w.dtype, "real floating"):
        raise ValueError(f"{type(problem).__name__}: w must be real floating, got dtype {w.dtype}")


def _check_directions(owner: str, V: Any, dim: int) -> None:
    shape = tuple(getattr(V, "shape", ()))
    if len(shape) != 2 or shape[1] != dim:
        raise ValueError(f"{owner}: V must have shape (k, {dim}), got {shape}")


# ------------------------------------------------------------------------------------------------
# Factorization
# ------------------------------------------------------------------------------------------------
class _FactorizationPoint(Point):
    problem: Factorization

    @cached_property
    def _W(self) -> Any:
        p = self.problem
        return self.xp.reshape(self.w, (p.depth, p.n))

    @cached_property
    def _prefix_suffix(self) -> tuple[list[Any], list[Any]]:
        # prefix[i] = prod_{l < i} W[l],  suffix[i] = prod_{l > i} W[l]  (rows of length n)
        W, depth = self._W, self.problem.depth
        ones = self.xp.ones_like(W[0, :])
        prefix = [ones]
        for i in range(1, depth):
            prefix.append(prefix[-1] * W[i - 1, :])
        suffix = [ones]
        for i in range(depth - 2, -1, -1):
            suffix.append(suffix[-1] * W[i + 1, :])
        return prefix, suffix[::-1]

    @cached_property
    def q(self) -> Any:
        r""":math:`q_{ij} = \partial r/\partial W_{ij} = \prod_{l\ne i} W_{lj}`, ``(depth, n)``."""
        prefix, suffix = self._prefix_suffix
        return self.xp.stack([a * b for a, b in zip(prefix, suffix, strict=True)], axis=0)

    @cached_property
    def r(self) -> Any:
        r"""The residual :math:`r = \sum_j \prod_i W_{ij} - 1` (0-d)."""
        return self.xp.sum(self.q[0, :] * self._W[0, :]) - 1.0

    @cached_property
    def _P2(self) -> Any:
        # P2[i, k] = prod_{l not in {i, k}} W[l] for i != k and 0 for i == k: the nonzero
        # blocks of the second derivative of r, from prefix * (middle product) * suffix.
        xp, W, depth = self.xp, self._W, self.problem.depth
        prefix, suffix = self._prefix_suffix
        zero = xp.zeros_like(W[0, :])
        rows: list[list[Any]] = [[zero] * depth for _ in range(depth)]
        for i in range(depth):
            middle = xp.ones_like(W[0, :])
            for k in range(i + 1, depth):
                rows[i][k] = rows[k][i] = prefix[i] * middle * suffix[k]
                middle = middle * W[k, :]
        return xp.stack([xp.stack(row, axis=0) for row in rows], axis=0)

    @property
    def loss(self) -> Any:
        return 0.5 * self.r * self.r

    @cached_property
    def grad(self) -> Any:
        return self.xp.reshape(self.r * self.q, (self.problem.dim,))

    def hvp_batch(self, V: Any) -> Any:
        p, xp = self.problem, self.xp
        _check_directions("Factorization", V, p.dim)
        k = V.shape[0]
        q = xp.reshape(self.q, (p.dim,))
        gauss_newton = (V @ q)[:, None] * q[None, :]
        Vr = xp.reshape(V, (k, p.depth, p.n))
        # (d^2 r  v)[i, j] = sum_k P2[i, k, j] v[k, j]
        curvature = xp.sum(self._P2[None, :, :, :] * Vr[:, None, :, :], axis=2)
        return gauss_newton + self.r * xp.reshape(curvature, (k, p.dim))

    def hessian(self) -> Any:
        p, xp = self.problem, self.xp
        q = xp.reshape(self.q, (p.dim,))
        eye = xp.eye(p.n, dtype=self.w.dtype, device=device_of(self.w))
        P2 = xp.permute_dims(self._P2, (0, 2, 1))  # [i, j, k]
        curvature = P2[:, :, :, None] * eye[None, :, None, :]  # [i, j, k, m] with delta_jm
        return q[:, None] * q[None, :] + self.r * xp.reshape(curvature, (p.dim, p.dim))


class Factorization(Problem):
    r"""A sum of ``n`` depth-``depth`` products fitted to 1.

    The parameters are the rows of a ``(depth, n)`` matrix :math:`W`, flattened row-major
    (``w = concat(W[0], ..., W[depth-1])``), and

    .. math::
        p_j = \prod_{i} W_{ij}, \qquad r = \sum_j p_j - 1, \qquad L = \tfrac12 r^2 .

    ``n=1, depth=2`` is the scalar toy :math:`\tfrac12(xy-1)^2` with ``w = (x, y)``; ``depth=2`` is
    the vector toy :math:`\tfrac12(x^\top y-1)^2` with ``w = (x, y)``; ``n=1`` is the depth-``k``
    scalar product. With :math:`q_{ij} = \partial r/\partial W_{ij} = \prod_{l\ne i} W_{lj}`
    (built from prefix and suffix products, never by dividing by :math:`W`):

    .. math::
        \nabla L = r\,q, \qquad
        \nabla^2 L = q q^\top + r\,\nabla^2 r, \qquad
        \frac{\partial^2 r}{\partial W_{ij}\,\partial W_{km}}
            = \delta_{jm}\,(1-\delta_{ik}) \prod_{l\notin\{i,k\}} W_{lj}.

    The minimizers :math:`r = 0` form a manifold on which :math:`\nabla^2 L = qq^\top`, so
    :math:`\lambda_{\max} = \|q\|^2` (:meth:`sharpness_on_manifold`); for ``depth=2`` this is
    :math:`\|x\|^2 + \|y\|^2`, smallest (= 2) at :math:`|x| = |y| = 1` for scalars.
    Gradient flow conserves :math:`W_{ij}^2 - W_{kj}^2` for every column :math:`j` (for
    ``depth=2``: :math:`D = \|x\|^2 - \|y\|^2`), and for ``depth=2`` one gradient step of size
    :math:`\eta` multiplies :math:`D` by :math:`1 - \eta^2 r^2` exactly
    (docs/theory.md#T-flat-bias).

    The problem has no data (``n_samples`` is ``None``): ``batch`` must be ``None``.

    Args:
        n (int): Number of products in the sum (width).
        depth (int): Number of factors in each product.
        xp (module, optional): Array namespace reported by :attr:`xp` (the problem holds no arrays;
            computations use the namespace of ``w``).

    Examples:
        >>> import numpy as np
        >>> toy = Factorization()                      # L = (xy - 1)^2 / 2
        >>> w = np.array([2.0, 1.0])
        >>> float(toy.loss(w)), toy.grad(w).tolist()
        (0.5, [1.0, 2.0])
        >>> float(toy.sharpness_on_manifold(np.array([2.0, 0.5])))   # x^2 + y^2 on xy = 1
        4.25
    """

    n_samples = None

    def __init__(self, n: int = 1, depth: int = 2, *, xp: ModuleType | None = None):
        self.n = _positive_int("Factorization", "n", n)
        self.depth = _positive_int("Factorization", "depth", depth)
        self.dim = self.n * self.depth
        self._xp = xp if xp is not None else default_namespace()

    def __repr__(self) -> str:
        return f"Factorization(n={self.n}, depth={self.depth})"

    @property
    def xp(self) -> ModuleType:
        """The array namespace the problem reports (it holds no arrays)."""
        return self._xp

    def at(self, w: Any, batch: Any = None) -> _FactorizationPoint:
        """The loss and its derivatives at ``w`` (no data: ``batch`` must be ``None``)."""
        self._batch_indices(batch)
        _check_floating(self, w)
        return _FactorizationPoint(self, w)

    def convert(self, xp: ModuleType, device: Any = None) -> Factorization:
        """The same problem, reporting namespace ``xp`` (no arrays held; ``device`` unused)."""
        return Factorization(self.n, self.depth, xp=xp)

    # -- closed forms ---------------------------------------------------------------------------
    def residual(self, w: Any) -> Any:
        r"""The residual :math:`r = \sum_j \prod_i W_{ij} - 1` (0-d array)."""
        return self.at(w).r

    def sharpness_on_manifold(self, w: Any) -> Any:
        r""":math:`\|q\|^2 = \sum_{ij} \prod_{l\ne i} W_{lj}^2` (:math:`\lambda_{\max}` if r = 0).

        At :math:`r = 0` the Hessian is :math:`qq^\top` (rank one), whose only nonzero eigenvalue
        is :math:`\|q\|^2`; for ``depth=2`` this is :math:`\|x\|^2 + \|y\|^2`. Away from the
        manifold the value is the top eigenvalue of the Gauss-Newton term only (no check of
        :math:`r` is made), not :math:`\lambda_{\max}` of the full Hessian.
        """
        q = self.at(w).q
        return namespace(w).sum(q * q)


# ------------------------------------------------------------------------------------------------
# Two-block factorization
# ------------------------------------------------------------------------------------------------
class _TwoBlockPoint(Point):
    problem: TwoBlockFactorization

    def __init__(self, problem: TwoBlockFactorization, w: Any, weights: Any):
        super().__init__(problem, w)
        self.weights = weights  # c_s: the mean over the batch as weights on the two samples

    @cached_property
    def _U(self) -> Any:
        return self.xp.reshape(self.w, (2, 2))  # rows (a, b), (c, d)

    @cached_property
    def q(self) -> Any:
        r"""Per-sample residual gradients :math:`((b, a), (d, c))`, shape ``(2, 2)``."""
        return self.xp.flip(self._U, axis=1)

    @cached_property
    def r(self) -> Any:
        r"""Per-sample residuals :math:`(ab - 1, cd - 1)`, shape ``(2,)``."""
        return self._U[:, 0] * self._U[:, 1] - 1.0

    @property
    def loss(self) -> Any:
        return 0.5 * self.xp.sum(self.weights * self.r * self.r)

    @cached_property
    def grad(self) -> Any:
        cr = self.weights * self.r
        return self.xp.reshape(cr[:, None] * self.q, (4,))

    def hvp_batch(self, V: Any) -> Any:
        xp = self.xp
        _check_directions("TwoBlockFactorization", V, 4)
        k = V.shape[0]
        Vr = xp.reshape(V, (k, 2, 2))
        qv = xp.sum(self.q[None, :, :] * Vr, axis=2)  # (k, 2)
        per_block = qv[:, :, None] * self.q[None, :, :] + self.r[None, :, None] * xp.flip(
            Vr, axis=2
        )
        return xp.reshape(self.weights[None, :, None] * per_block, (k, 4))

    def hessian(self) -> Any:
        xp = self.xp
        eye = xp.eye(2, dtype=self.w.dtype, device=device_of(self.w))
        swap = xp.flip(eye, axis=1)
        # block s: c_s (q_s q_s^T + r_s [[0, 1], [1, 0]])
        blocks = self.q[:, :, None] * self.q[:, None, :] + self.r[:, None, None] * swap[None, :, :]
        blocks = self.weights[:, None, None] * blocks  # [s, i, j]
        dense = blocks[:, :, None, :] * eye[:, None, :, None]  # [s, i, t, j] with delta_st
        return xp.reshape(dense, (4, 4))


class TwoBlockFactorization(Problem):
    r"""Toy B of what SAM regularizes (docs/theory.md#T-flat-bias): two samples, two products.

    With ``w = (a, b, c, d)`` the per-sample losses are

    .. math::
        \ell_1 = \tfrac12 (ab-1)^2, \qquad \ell_2 = \tfrac12 (cd-1)^2, \qquad
        L = \tfrac12(\ell_1 + \ell_2),

    the mean over the ``n_samples = 2`` samples. A ``batch`` (integer indices into ``{0, 1}``,
    repeats allowed) gives the mean over the chosen samples,
    :math:`L_B = \sum_s c_s \ell_s` with :math:`c_s = \#\{i \in B: i = s\}/|B|`; batch-1 SAM uses
    ``batch=[0]`` or ``batch=[1]``. Derivatives, with :math:`r_1 = ab-1`, :math:`r_2 = cd-1`:

    .. math::
        \nabla L_B = (c_1 r_1 b,\; c_1 r_1 a,\; c_2 r_2 d,\; c_2 r_2 c), \qquad
        \nabla^2 L_B = \bigoplus_s c_s \left( q_s q_s^\top
            + r_s \begin{pmatrix} 0 & 1 \\ 1 & 0 \end{pmatrix} \right),

    with :math:`q_1 = (b, a)`, :math:`q_2 = (d, c)`. At a minimizer (:math:`r_1 = r_2 = 0`) the
    full-batch Hessian is block diagonal with eigenvalues :math:`\tfrac12(a^2+b^2)`,
    :math:`\tfrac12(c^2+d^2)`, 0, 0 — half the block sharpnesses :math:`a^2 + b^2`,
    :math:`c^2 + d^2` of the per-sample losses (see :meth:`block_sharpness`).

    Examples:
        >>> import numpy as np
        >>> toy = TwoBlockFactorization()
        >>> w = np.array([2.0, 1.0, 1.0, 1.0])
        >>> float(toy.loss(w)), float(toy.loss(w, batch=np.array([0])))
        (0.25, 0.5)
        >>> toy.block_sharpness(np.array([2.0, 0.5, 1.0, 1.0])).tolist()
        [4.25, 2.0]
    """

    dim = 4
    n_samples = 2

    def __init__(self, *, xp: ModuleType | None = None):
        self._xp = xp if xp is not None else default_namespace()

    def __repr__(self) -> str:
        return "TwoBlockFactorization()"

    @property
    def xp(self) -> ModuleType:
        """The array namespace the problem reports (it holds no arrays)."""
        return self._xp

    def at(self, w: Any, batch: Any = None) -> _TwoBlockPoint:
        """The loss and its derivatives at ``w`` on samples ``batch`` (``None``: both samples)."""
        idx = self._batch_indices(batch)
        _check_floating(self, w)
        if idx is None:
            weights_np = np.full(2, 0.5)
        else:
            weights_np = np.bincount(idx, minlength=2).astype(np.float64) / idx.size
        xp = namespace(w)
        weights = xp.asarray(weights_np, dtype=w.dtype, device=device_of(w))
        return _TwoBlockPoint(self, w, weights)

    def convert(self, xp: ModuleType, device: Any = None) -> TwoBlockFactorization:
        """The same problem, reporting namespace ``xp`` (no arrays held; ``device`` unused)."""
        return TwoBlockFactorization(xp=xp)

    # -- closed forms ---------------------------------------------------------------------------
    def residuals(self, w: Any) -> Any:
        r"""Per-sample residuals :math:`(ab - 1, cd - 1)`, shape ``(2,)``."""
        return self.at(w).r

    def block_sharpness(self, w: Any) -> Any:
        r"""The per-sample block sharpnesses :math:`(a^2 + b^2,\ c^2 + d^2)`, shape ``(2,)``.

        At a minimizer of :math:`\ell_s` these are :math:`\lambda_{\max}(\nabla^2 \ell_s)` (the
        quantity that docs/theory.md#T-flat-bias compares). They are **not** the eigenvalues of the
        full-batch Hessian of :math:`L = \tfrac12(\ell_1 + \ell_2)`, which at a minimizer are
        half of them: :math:`\tfrac12(a^2+b^2)`, :math:`\tfrac12(c^2+d^2)` (and two zeros).
        """
        q = self.at(w).q
        return namespace(w).sum(q * q, axis=1)
