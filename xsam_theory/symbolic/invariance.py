r"""Orientation and scale (in)variance of the X-SAM forms, by sympy.

Derivations: docs/theory.md#T-orientation and docs/theory.md#T-correction-identities (the step
length bound); the normalization is the authors' code's (docs/algorithms.md#A-reference-code).

Setting: :math:`g` (any nonzero vector), unit :math:`v`, :math:`\hat g = g/\|g\|`,
:math:`c = \langle\hat g, v\rangle`. The forms (docs/algorithms.md#A-xsam-forms):
paper :math:`d = \hat g - \alpha|c|v`, symmetric :math:`\hat g - \alpha c v`, projector
:math:`g - \alpha\langle g, v\rangle v`, raw projection
:math:`\hat g - \alpha|\langle g, v\rangle|v`.
All of them lie in :math:`\mathrm{span}(g, v)`, so it suffices to take :math:`v = (1, 0)` and
:math:`g = (g_1, g_2)`. Every statement is a ``simplify(lhs - rhs) == 0`` identity in these
coordinates (absolute values kept symbolic) or an inequality reduced to a product of factors
whose sign sympy decides.

* :func:`orientation_difference` — F-SIGN: :math:`d(v) - d(-v) = -2\alpha|c|v` for the paper rule
  (:math:`-2\alpha|\langle g, v\rangle|v` for the raw projection); the symmetric and projector
  forms are invariant. Mirror symmetry: with :math:`R = I - 2vv^\top` and
  :math:`RH = HR` (:math:`v` an eigenvector of :math:`H`), the paper-rule step with
  :math:`-v` from :math:`Rw` is :math:`R` times the step with :math:`v` from :math:`w`.
* :func:`scale_invariance` — F-NORM: :math:`\|d\| \le 1 + \alpha|c| \le 1 + \alpha` for the
  paper rule; the paper and symmetric forms are homogeneous of degree 0 in :math:`g` (so, with
  the scale-free ascent step :math:`\varepsilon = \rho\hat g` and :math:`v(sH) = v(H)`, the
  iterates are invariant under :math:`L \to sL`, :math:`s > 0`), while SAM's and the projector
  form's directions are homogeneous of degree 1 (the step scales with :math:`s`), and the raw
  projection's correction scales with :math:`s` (it is not scale-free,
  docs/theory.md#T-xsam-update).
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from xsam_theory.symbolic.base import Derivation, derivation

__all__ = ["orientation_difference", "scale_invariance"]

alpha = sp.Symbol("alpha", nonnegative=True)
g1, g2 = sp.symbols("g_1 g_2", real=True)
s = sp.Symbol("s", positive=True)
c = sp.Symbol("c", real=True)
cp = sp.Symbol("c_p", nonnegative=True)
cn = sp.Symbol("c_n", negative=True)

V = sp.Matrix([1, 0])
Gv = sp.Matrix([g1, g2])


def _zero_vec(m: sp.Matrix) -> bool:
    return all(sp.simplify(e) == 0 for e in m)


def _unit(g: sp.Matrix) -> sp.Matrix:
    return g / sp.sqrt(g[0] ** 2 + g[1] ** 2)


def _paper(g: sp.Matrix, v: sp.Matrix) -> sp.Matrix:
    gh = _unit(g)
    return gh - alpha * sp.Abs(gh.dot(v)) * v


def _symmetric(g: sp.Matrix, v: sp.Matrix) -> sp.Matrix:
    gh = _unit(g)
    return gh - alpha * gh.dot(v) * v


def _projector(g: sp.Matrix, v: sp.Matrix) -> sp.Matrix:
    return g - alpha * g.dot(v) * v


def _raw(g: sp.Matrix, v: sp.Matrix) -> sp.Matrix:
    return _unit(g) - alpha * sp.Abs(g.dot(v)) * v


@cache
def orientation_difference() -> Derivation:
    r"""F-SIGN, symbolic part: :math:`d(v) - d(-v)` for each form, and the mirror symmetry.

    Proved: paper :math:`d(v) - d(-v) = -2\alpha|c|v`; raw projection
    :math:`-2\alpha|\langle g, v\rangle|v`; symmetric and projector :math:`0`. Mirror: for
    :math:`R = I - 2vv^\top` (here :math:`\mathrm{diag}(-1, 1)`),
    :math:`d_{paper}(Rg; -v) = R\,d_{paper}(g; v)`, :math:`\widehat{Rg} = R\hat g`, and
    :math:`RH = HR` for :math:`H = \mathrm{diag}(\lambda_1, \lambda_2)`; so on a quadratic with
    :math:`v` an exact eigenvector the run with :math:`-v` from :math:`Rw_0` is the mirror image
    :math:`Rw_t` of the run with :math:`v` from :math:`w_0` (the ascent step
    :math:`\rho\widehat{Hw}` commutes with :math:`R` as well).
    Expression: :math:`-2\alpha|c|` (the coefficient of :math:`v` in the paper rule's difference).
    Derivation: docs/theory.md#T-orientation; claim page docs/claims/F-SIGN.md.

    Returns:
        The :class:`~xsam_theory.symbolic.base.Derivation` of :math:`-2\alpha|c|` over
        ``(c, alpha)``.
    """
    gh = _unit(Gv)
    cc = gh.dot(V)
    R = sp.diag(-1, 1)
    l1, l2 = sp.symbols("lambda_1 lambda_2", real=True)
    H = sp.diag(l1, l2)
    proved = {
        "paper: d(v) - d(-v) == -2 alpha |c| v": _zero_vec(
            _paper(Gv, V) - _paper(Gv, -V) + 2 * alpha * sp.Abs(cc) * V
        ),
        "raw projection: d(v) - d(-v) == -2 alpha |<g,v>| v": _zero_vec(
            _raw(Gv, V) - _raw(Gv, -V) + 2 * alpha * sp.Abs(Gv.dot(V)) * V
        ),
        "symmetric: d(v) == d(-v)": _zero_vec(_symmetric(Gv, V) - _symmetric(Gv, -V)),
        "projector: d(v) == d(-v)": _zero_vec(_projector(Gv, V) - _projector(Gv, -V)),
        "unit(R g) == R unit(g)": _zero_vec(_unit(R * Gv) - R * gh),
        "mirror: d_paper(R g; -v) == R d_paper(g; v)": _zero_vec(
            _paper(R * Gv, -V) - R * _paper(Gv, V)
        ),
        "R H == H R (v eigenvector of H)": _zero_vec(R * H - H * R),
    }
    return derivation(
        "paper-rule orientation difference d(v) - d(-v)",
        -2 * alpha * sp.Abs(c),
        (c, alpha),
        "unit v, g != 0, alpha >= 0; mirror statement: v an exact eigenvector of a quadratic's H",
        proved,
    )


@cache
def scale_invariance() -> Derivation:
    r"""F-NORM, symbolic part: the step-length bound and the homogeneity of each form in :math:`g`.

    Proved: :math:`(1 + \alpha|c|)^2 - \|d\|^2` equals :math:`2\alpha c(1 + c)` for
    :math:`c \ge 0` and :math:`2\alpha|c|(1 - |c|)` for :math:`c < 0`, both :math:`\ge 0` on
    :math:`|c| \le 1`, so :math:`\|d\| \le 1 + \alpha|c| \le 1 + \alpha`; the paper and
    symmetric directions and the ascent step :math:`\rho\hat g` are unchanged by
    :math:`g \to sg` (:math:`s > 0`); SAM's :math:`g_{adv}` and the projector form scale by
    :math:`s`; the raw projection's correction scales by :math:`s`. Expression: the bound
    :math:`1 + \alpha|c|` on :math:`\|d\|`. Derivation: docs/theory.md#T-correction-identities;
    claim page docs/claims/F-NORM.md.

    Returns:
        The :class:`~xsam_theory.symbolic.base.Derivation` of the bound over ``(c, alpha)``.
    """
    # ||d||^2 (docs/theory.md#T-correction-identities)
    nd2 = 1 - 2 * alpha * c * sp.Abs(c) + alpha**2 * c**2
    bound = 1 + alpha * sp.Abs(c)
    k = sp.Symbol("k", nonnegative=True)  # |c| = 1/(1 + k) in (0, 1]
    q = 1 / (1 + k)
    pos = sp.factor(sp.expand((bound**2 - nd2).subs(c, cp)))
    neg = sp.factor(sp.expand((bound**2 - nd2).subs(c, cn)))
    rho = sp.Symbol("rho", positive=True)
    w1, w2, l1, l2 = sp.symbols("w_1 w_2 lambda_1 lambda_2", real=True)
    w = sp.Matrix([w1, w2])
    Hq = sp.diag(l1, l2)

    def _g_adv(H: sp.Matrix) -> sp.Matrix:
        return H * (w + rho * _unit(H * w))

    proved = {
        "c >= 0: (1 + alpha|c|)^2 - ||d||^2 == 2 alpha c (1 + c) >= 0": bool(
            sp.simplify(pos - 2 * alpha * cp * (1 + cp)) == 0
            and (2 * alpha * cp * (1 + cp)).is_nonnegative
        ),
        "c < 0: (1 + alpha|c|)^2 - ||d||^2 == 2 alpha |c| (1 - |c|) >= 0 for |c| <= 1": bool(
            sp.simplify(neg - 2 * alpha * (-cn) * (1 + cn)) == 0
            and sp.factor(2 * alpha * q * (1 - q)).is_nonnegative
        ),
        "1 + alpha|c| <= 1 + alpha for |c| <= 1": bool(
            sp.factor(1 + alpha - (1 + alpha * q)).is_nonnegative
        ),
        "paper: d(s g) == d(g)": _zero_vec(_paper(s * Gv, V) - _paper(Gv, V)),
        "symmetric: d(s g) == d(g)": _zero_vec(_symmetric(s * Gv, V) - _symmetric(Gv, V)),
        "raw projection is not scale-free: d(s g) - d(g) == -alpha (s - 1)|<g,v>| v": _zero_vec(
            _raw(s * Gv, V) - _raw(Gv, V) + alpha * (s - 1) * sp.Abs(Gv.dot(V)) * V
        ),
        "ascent step: rho unit(s g) == rho unit(g)": _zero_vec(
            rho * _unit(s * Gv) - rho * _unit(Gv)
        ),
        "quadratic: g_adv(sH) == s g_adv(H) with eps = rho unit(Hw)": _zero_vec(
            _g_adv(s * Hq) - s * _g_adv(Hq)
        ),
        "projector: d(s g) == s d(g)": _zero_vec(_projector(s * Gv, V) - s * _projector(Gv, V)),
    }
    return derivation(
        "X-SAM step length bound and scale (in)variance",
        bound,
        (c, alpha),
        "unit v, g != 0, s > 0, |c| <= 1, alpha >= 0",
        proved,
    )
