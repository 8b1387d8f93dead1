r"""Warm-started power iteration under a dominant negative eigenvalue.

Derivations: docs/theory.md#T-power-rate and docs/theory.md#T-dominant-negative.

In the eigenbasis of the two largest-magnitude eigenvalues, :math:`H = \mathrm{diag}(\lambda_d,
\lambda_2)` with the dominant :math:`\lambda_d = -\mu < 0` and :math:`|\lambda_2| < \mu`, a start
vector :math:`u_0 = (a, b)`, :math:`a \ne 0`, gives after :math:`k` normalized power steps
:math:`u_k \propto (\lambda_d^k a, \lambda_2^k b)`:

* the sign of the dominant coordinate is :math:`(-1)^k\,\mathrm{sign}(a)`: with an odd number of
  steps per refresh (the reference uses 5) and a warm start, ``v`` flips orientation at every
  refresh; with an even number it keeps it;
* :math:`\tan\angle(u_k, v_d) = (|\lambda_2|/\mu)^k\tan\angle(u_0, v_d)` (the rate of
  docs/theory.md#T-power-rate, with equality in two dimensions, an upper bound in general), so
  the flip-to-flip overlap :math:`\langle v_{j+1}, v_j\rangle \to -1`;
* the Rayleigh quotient tends to :math:`\lambda_d < 0`, not to the algebraic top eigenvalue.
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from xsam_theory.symbolic.base import Derivation, derivation

__all__ = ["dominant_negative_flip"]


@cache
def dominant_negative_flip() -> Derivation:
    r"""Sign and angle of :math:`H^k u_0` for a dominant negative eigenvalue.

    Proved (with :math:`k = 2m + 1` odd, :math:`k = 2m` even, :math:`m \ge 0` an integer):
    the dominant coordinate of :math:`H^k u_0` is :math:`(-1)^k\mu^k a`, i.e. :math:`-\mu^k a`
    for odd and :math:`+\mu^k a` for even :math:`k`; the tangent of the angle to the dominant
    axis is :math:`(|\lambda_2|/\mu)^k|b/a|`; and the Rayleigh quotient of the dominant axis is
    :math:`-\mu`. Expression: the tangent factor per refresh :math:`(|\lambda_2|/\mu)^k`.

    In the basis of the two dominant eigenvectors, :math:`H^k(a, b) = ((-\mu)^k a, \lambda_2^k b)`.
    Derivation: docs/theory.md#T-dominant-negative (and docs/theory.md#T-power-rate for the
    tangent).

    Returns:
        The :class:`~xsam_theory.symbolic.base.Derivation` of :math:`(|\lambda_2|/\mu)^k` over
        ``(lambda_2, mu, k)``.
    """
    mu = sp.Symbol("mu", positive=True)
    l2 = sp.Symbol("lambda_2", real=True)
    a, b = sp.symbols("a b", real=True)
    m = sp.Symbol("m", integer=True, nonnegative=True)
    k = sp.Symbol("k", integer=True, positive=True)
    ld = -mu

    def dom(kk: sp.Expr) -> sp.Expr:
        return ld**kk * a

    tan_k = sp.Abs(l2**k * b) / sp.Abs(ld**k * a)
    proved = {
        "odd k: dominant coordinate == -mu^k a": sp.simplify(dom(2 * m + 1) + mu ** (2 * m + 1) * a)
        == 0,
        "even k: dominant coordinate == +mu^k a": sp.simplify(dom(2 * m) - mu ** (2 * m) * a) == 0,
        "tan angle(u_k, v_d) == (|lambda_2|/mu)^k |b/a|": sp.simplify(
            tan_k - (sp.Abs(l2) / mu) ** k * sp.Abs(b / a)
        )
        == 0,
        "Rayleigh quotient of v_d == -mu": sp.simplify(
            (sp.Matrix([1, 0]).T * sp.diag(ld, l2) * sp.Matrix([1, 0]))[0] + mu
        )
        == 0,
    }
    return derivation(
        "power iteration with a dominant negative eigenvalue",
        (sp.Abs(l2) / mu) ** k,
        (l2, mu, k),
        "H symmetric; lambda_d = -mu dominant in magnitude (|lambda_2| < mu); "
        "start vector not orthogonal to v_d",
        proved,
    )
