r"""The X-SAM correction geometry G1–G4 (SPEC §5, theory-notes F6.1, F6.3), derived with sympy.

Setting: unit :math:`\hat g`, unit :math:`v`, :math:`c = \langle \hat g, v\rangle \in [-1, 1]`,
:math:`\alpha \ge 0`, paper rule :math:`d = \hat g - \alpha|c|v`. Both :math:`\hat g` and :math:`d`
lie in :math:`\mathrm{span}(\hat g, v)`, so without loss of generality
:math:`v = (1, 0)`, :math:`\hat g = (c, s)` with :math:`s = \sqrt{1 - c^2} \ge 0`, and
:math:`d = (c - \alpha|c|,\ s)`. Every identity below is checked by ``simplify(lhs - rhs) == 0``
in these coordinates; every inequality is reduced, case by case on the sign of :math:`c`, to a
product of factors whose sign sympy decides over the stated interval.
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from xsam_theory.symbolic.base import Derivation, derivation, interval_nonnegative

__all__ = ["angle_monotonicity", "descent_inner_product", "direction_norm", "parallel_component"]

c = sp.Symbol("c", real=True)
alpha = sp.Symbol("alpha", nonnegative=True)
s = sp.Symbol("s", nonnegative=True)
cp = sp.Symbol("c_p", positive=True)     # c > 0
cn = sp.Symbol("c_n", negative=True)     # c < 0


def _d(cc: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    return (cc - alpha * sp.Abs(cc), sp.sqrt(1 - cc**2))


@cache
def parallel_component() -> Derivation:
    r"""G1: :math:`\langle d, v\rangle = c - \alpha|c|`."""
    d = (c - alpha * sp.Abs(c), s)
    rhs = c - alpha * sp.Abs(c)
    proved = {"<d,v> - (c - alpha|c|) == 0": sp.simplify(d[0] * 1 + d[1] * 0 - rhs) == 0}
    return derivation("G1 <d,v>", rhs, (c, alpha), "unit g_hat and v; alpha any real", proved)


@cache
def direction_norm() -> Derivation:
    r"""G2: :math:`\|d\|^2 = 1 - c^2 + (c - \alpha|c|)^2`; for :math:`c > 0`,
    :math:`\|d\|^2 - 1 = c^2\alpha(\alpha - 2) \le 0 \iff \alpha\in[0, 2]`; for :math:`c < 0`,
    :math:`\|d\|^2 - 1 = c^2\alpha(\alpha + 2) \ge 0` (the step gets longer)."""
    rhs = 1 - c**2 + (c - alpha * sp.Abs(c)) ** 2
    d0, d1 = c - alpha * sp.Abs(c), s
    identity = sp.simplify((d0**2 + d1**2).subs(s**2, 1 - c**2) - rhs.subs(s, 0))
    identity = sp.simplify(identity.subs(s, sp.sqrt(1 - c**2)))
    pos = sp.factor(sp.expand((rhs - 1).subs(c, cp)))
    neg = sp.factor(sp.expand((rhs - 1).subs(c, cn)))
    a = sp.Symbol("a", real=True)
    window = sp.solve_univariate_inequality(a * (a - 2) <= 0, a, relational=False)
    proved = {
        "||d||^2 identity": identity == 0,
        "c>0: ||d||^2 - 1 == c^2 alpha (alpha - 2)": (
            sp.simplify(pos - cp**2 * alpha * (alpha - 2)) == 0),
        "c>0: ||d|| <= 1 iff alpha in [0, 2]": window == sp.Interval(0, 2),
        "c<0: ||d||^2 - 1 == c^2 alpha (alpha + 2) >= 0": (
            sp.simplify(neg - cn**2 * alpha * (alpha + 2)) == 0
            and bool((cn**2 * alpha * (alpha + 2)).is_nonnegative)),
    }
    return derivation("G2 ||d||^2", rhs, (c, alpha), "unit g_hat and v, alpha >= 0", proved)


@cache
def angle_monotonicity() -> Derivation:
    r"""G3: :math:`\angle(d, v) \ge \angle(\hat g, v)` for every :math:`\alpha \ge 0`.

    Equivalent to :math:`\cos\angle(d,v) = (c - \alpha|c|)/\|d\| \le c`. Cases:
    :math:`c > 0, \alpha \le 1`: both sides non-negative, squaring reduces it to
    :math:`(2\alpha - \alpha^2)(1 - c^2) \ge 0`; :math:`c > 0, \alpha > 1`: the left side is
    negative; :math:`c < 0`: dividing by :math:`c` reduces it to
    :math:`(2\alpha + \alpha^2)(1 - c^2) \ge 0`; :math:`c = 0`: :math:`d = \hat g`.
    Returns the cosine :math:`\cos\angle(d, v)` as the expression.
    """
    nd2 = 1 - c**2 + (c - alpha * sp.Abs(c)) ** 2
    cos_dv = (c - alpha * sp.Abs(c)) / sp.sqrt(nd2)
    a = sp.Symbol("a", real=True)
    # c > 0, alpha <= 1:  c^2 ||d||^2 - (c(1 - alpha))^2 = c^2 (2a - a^2)(1 - c^2)
    red_pos = sp.factor(sp.expand(cp**2 * nd2.subs(c, cp) - (cp * (1 - alpha)) ** 2))
    # c < 0:  (c(1 + alpha))^2 - c^2 ||d||^2 = c^2 (2a + a^2)(1 - c^2)
    red_neg = sp.factor(sp.expand((cn * (1 + alpha)) ** 2 - cn**2 * nd2.subs(c, cn)))
    proved = {
        "c>0, alpha<=1 reduces to c^2 (2a - a^2)(1 - c^2)": sp.simplify(
            red_pos - cp**2 * (2 * alpha - alpha**2) * (1 - cp**2)) == 0,
        "2a - a^2 >= 0 on [0, 1]": interval_nonnegative(2 * a - a**2, a, sp.Interval(0, 1)),
        "c>0, alpha>1: numerator c(1 - alpha) < 0": bool((cp * (1 - (1 + sp.Symbol(
            "e", positive=True)))).is_negative),
        "c<0 reduces to c^2 (2a + a^2)(1 - c^2)": sp.simplify(
            red_neg - cn**2 * (2 * alpha + alpha**2) * (1 - cn**2)) == 0,
        "2a + a^2 >= 0 for a >= 0": bool((2 * alpha + alpha**2).is_nonnegative),
    }
    return derivation("G3 cos angle(d, v)", cos_dv, (c, alpha),
                      "unit g_hat and v, alpha >= 0, |c| <= 1 (1 - c^2 >= 0)", proved)


@cache
def descent_inner_product() -> Derivation:
    r"""G4: :math:`\langle d, \hat g\rangle = 1 - \alpha c|c|` (a descent direction for
    :math:`g_{adv}` unless :math:`\alpha c|c| \ge 1`)."""
    rhs = 1 - alpha * c * sp.Abs(c)
    inner = (c - alpha * sp.Abs(c)) * c + s * s
    proved = {"<d,g_hat> identity": sp.simplify(inner.subs(s**2, 1 - c**2).subs(
        s, sp.sqrt(1 - c**2)) - rhs) == 0}
    return derivation("G4 <d,g_hat>", rhs, (c, alpha), "unit g_hat and v, alpha >= 0", proved)
