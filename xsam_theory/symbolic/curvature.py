r"""D-CURV: the curvature the X-SAM step sees, with the exact top eigenvector.

Derivation: docs/theory.md#T-curvature; claim page docs/claims/D-CURV.md.

Setting: :math:`H` symmetric with :math:`Hv = \lambda_1 v`, :math:`\|v\| = 1`; a base vector
:math:`u` (:math:`\hat g_{adv}` for the normalized forms, :math:`g_{adv}` for the projector form)
with :math:`c = \langle u, v\rangle`. In an orthonormal eigenbasis whose first vector is
:math:`v`, :math:`H = \mathrm{diag}(\lambda_1, B)` with :math:`B` any symmetric block and
:math:`u = (c, u_\perp)`. Every correction only rescales the :math:`v` component:

* projector / symmetric forms: :math:`Pu = u - \alpha c v = ((1-\alpha)c, u_\perp)`, so
  :math:`(Pu)^\top H (Pu) = u^\top H u - (2\alpha - \alpha^2)\lambda_1 c^2`;
* paper rule :math:`\tilde g = u - \alpha|c|v`: for :math:`c > 0` it equals the symmetric form;
  for :math:`c < 0` it is :math:`((1+\alpha)c, u_\perp)` and
  :math:`\tilde g^\top H\tilde g = u^\top Hu + (2\alpha + \alpha^2)\lambda_1 c^2`.

The cross terms vanish because :math:`H` is block diagonal in this basis. The sympy proof uses a
4-dimensional basis with a generic symmetric 3×3 block :math:`B` (six free entries) and a generic
:math:`u_\perp`: the identity involves :math:`u_\perp` only through the bilinear form
:math:`u_\perp^\top B u_\perp`, which cancels, so the dimension of the complement plays no role.
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from xsam_theory.symbolic.base import Derivation, derivation

__all__ = ["curvature_seen"]

alpha = sp.Symbol("alpha", nonnegative=True)
lam1 = sp.Symbol("lambda_1", real=True)
c = sp.Symbol("c", real=True)
cp = sp.Symbol("c_p", positive=True)
cn = sp.Symbol("c_n", negative=True)


def _block_setup() -> tuple[sp.Matrix, sp.Matrix, sp.Matrix]:
    b = sp.symbols("b11 b12 b13 b22 b23 b33", real=True)
    B = sp.Matrix([[b[0], b[1], b[2]], [b[1], b[3], b[4]], [b[2], b[4], b[5]]])
    H = sp.diag(lam1, B)
    u_perp = sp.Matrix(sp.symbols("u2 u3 u4", real=True))
    v = sp.Matrix([1, 0, 0, 0])
    return H, u_perp, v


def _quad(H: sp.Matrix, x: sp.Matrix) -> sp.Expr:
    return sp.expand((x.T * H * x)[0, 0])


@cache
def curvature_seen() -> Derivation:
    r"""Curvature change of the corrected direction: a drop, or a rise for the paper rule at c < 0.

    :math:`(Pu)^\top H(Pu) - u^\top Hu = -(2\alpha - \alpha^2)\lambda_1c^2` (projector and
    symmetric forms, and the paper rule for :math:`c > 0`);
    :math:`\tilde g^\top H\tilde g - u^\top Hu = +(2\alpha + \alpha^2)\lambda_1c^2` (paper rule,
    :math:`c < 0`).

    Expression: the pair of changes ``(reduction, increase)``,
    :math:`(-(2\alpha - \alpha^2)\lambda_1 c^2,\ (2\alpha + \alpha^2)\lambda_1 c^2)`, in
    ``(c, alpha, lambda_1)``: the first for the projector/symmetric forms (and the paper rule at
    :math:`c > 0`), the second for the paper rule at :math:`c < 0`. ``proved`` also holds
    the sign facts: a reduction for :math:`\alpha \in (0, 2)` when :math:`\lambda_1 > 0`, none at
    :math:`\alpha \in \{0, 2\}`, the largest at :math:`\alpha = 1`, and an increase for the paper
    rule with :math:`c < 0`, :math:`\alpha > 0`. Derivation: docs/theory.md#T-curvature.

    Returns:
        The :class:`~xsam_theory.symbolic.base.Derivation` of the pair of changes over
        ``(c, alpha, lambda_1)``.
    """
    H, u_perp, v = _block_setup()

    def vec(cc: sp.Expr) -> sp.Matrix:
        return sp.Matrix([cc, *u_perp])

    u = vec(c)
    Pu = u - alpha * c * v  # projector / symmetric
    paper_pos = vec(cp) - alpha * sp.Abs(cp) * v  # paper rule, c > 0
    paper_neg = vec(cn) - alpha * sp.Abs(cn) * v  # paper rule, c < 0
    reduce_ = -(2 * alpha - alpha**2) * lam1 * c**2
    increase = (2 * alpha + alpha**2) * lam1 * c**2
    l1p = sp.Symbol("lambda_1p", positive=True)
    ap = sp.Symbol("a_p", positive=True)
    a = sp.Symbol("a", real=True)
    factor = 2 * a - a**2
    proved = {
        "v is an eigenvector: H v = lambda_1 v": sp.simplify(H * v - lam1 * v) == sp.zeros(4, 1),
        "<u, v> = c": sp.simplify((u.T * v)[0, 0] - c) == 0,
        "projector/symmetric: (Pu)^T H (Pu) - u^T H u == -(2a - a^2) lambda_1 c^2": sp.simplify(
            _quad(H, Pu) - _quad(H, u) - reduce_
        )
        == 0,
        "paper rule, c > 0: equals the symmetric form": sp.simplify(
            paper_pos - (vec(cp) - alpha * cp * v)
        )
        == sp.zeros(4, 1),
        "paper rule, c < 0: g~^T H g~ - u^T H u == +(2a + a^2) lambda_1 c^2": sp.simplify(
            _quad(H, paper_neg) - _quad(H, vec(cn)) - increase.subs(c, cn)
        )
        == 0,
        "2a - a^2 > 0 exactly on (0, 2)": sp.solve_univariate_inequality(
            factor > 0, a, relational=False
        )
        == sp.Interval.open(0, 2),
        "2a - a^2 is largest at a = 1": sp.solve(sp.diff(factor, a), a) == [1],
        "paper rule, c < 0, a > 0, lambda_1 > 0: increase > 0": bool(
            ((2 * ap + ap**2) * l1p * cn**2).is_positive
        ),
    }
    return derivation(
        "D-CURV curvature seen by the step",
        (reduce_, increase),
        (c, alpha, lam1),
        "H symmetric, v unit with H v = lambda_1 v exactly; u any vector "
        "(g_hat_adv or g_adv), c = <u, v>; alpha any real for the identities",
        proved,
    )
