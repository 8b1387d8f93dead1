r"""Closed forms of the SAM family on :math:`L(w) = \tfrac12 w^\top H w`, by sympy.

The closed forms are those of docs/theory.md, part III (docs/theory.md#T-usam,
docs/theory.md#T-sam-cycle, docs/theory.md#T-sam-edge, docs/theory.md#T-sam-lmax,
docs/theory.md#T-gd-edge).

Every map below is linear (GD, USAM, heavy ball) or piecewise linear (normalized SAM) on a
quadratic, and it acts on each eigendirection of :math:`H` separately (normalized SAM couples the
directions only through :math:`\|g\|`). So each derivation works in an eigenbasis with a scalar
eigenvalue :math:`\lambda` per direction:

* :func:`usam_factor` — USAM's factor :math:`r(\lambda) = 1 - \eta\lambda - \eta\rho\lambda^2`
  (docs/theory.md#T-usam), the stable set :math:`|r| < 1 \iff 0 < \eta\lambda(1 + \rho\lambda) < 2`;
* :func:`usam_threshold` — the edge :math:`\lambda_U = (\sqrt{1 + 8\rho/\eta} - 1)/(2\rho)`
  solved from :math:`\eta\lambda(1+\rho\lambda) = 2`, with :math:`\lambda_U < 2/\eta`
  (docs/theory.md#T-usam);
* :func:`sam_two_cycle` — normalized SAM's 2-cycle amplitude
  :math:`c^* = \eta\rho\lambda_1/(2 - \eta\lambda_1)` from the two-step fixed-point equation, the
  transverse factors :math:`\tau_i`, and the SAM-edge identity :math:`\lambda_{SAM}(\lambda_1 c^*)
  = \lambda_1` (docs/theory.md#T-sam-cycle, docs/theory.md#T-sam-edge);
* :func:`stability_edges` — the thresholds of GD (:math:`2/\eta`), USAM (:math:`\lambda_U`),
  SAM (:math:`\lambda_{SAM}(\|g\|)` with its limits) and heavy ball (:math:`2(1+\mu)/\eta`)
  (docs/theory.md#T-sam-edge, docs/theory.md#T-sam-lmax, docs/theory.md#T-gd-edge).

Proofs are ``simplify(lhs - rhs) == 0`` identities, sympy ``solve``/``limit`` results compared
with the stated closed form, and inequalities reduced to products of factors whose signs sympy
decides from the symbols' assumptions (``positive=True`` …). The constraint
:math:`0 < \eta\lambda_1 < 2` is encoded as :math:`\eta\lambda_1 = 2/(1 + s)` with :math:`s > 0`.
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from xsam_theory.symbolic.base import Derivation, derivation

__all__ = [
    "heavy_ball_edge",
    "sam_edge",
    "sam_two_cycle",
    "stability_edges",
    "usam_factor",
    "usam_threshold",
]

eta = sp.Symbol("eta", positive=True)
rho = sp.Symbol("rho", positive=True)
lam = sp.Symbol("lambda", real=True)
lam_p = sp.Symbol("lambda", positive=True)
G = sp.Symbol("G", positive=True)  # ||g||
mu = sp.Symbol("mu", nonnegative=True)
w = sp.Symbol("w", real=True)


def _zero(expr: sp.Expr) -> bool:
    """Whether ``expr`` simplifies to 0.

    Square roots of perfect squares are taken after factoring their radicands (sympy then uses the
    symbols' signs, e.g. sqrt((2s+1)^2) = 2s+1).
    """
    e = sp.simplify(expr)
    if e == 0:
        return True
    e = e.replace(lambda t: t.is_Pow and t.exp == sp.S.Half, lambda t: sp.sqrt(sp.factor(t.base)))
    return sp.simplify(e) == 0


@cache
def usam_factor() -> Derivation:
    r"""USAM's factor :math:`r(\lambda)` on a quadratic.

    Derivation: docs/theory.md#T-usam; claim page docs/claims/L-USAM.md.

    USAM on :math:`\tfrac12\lambda w^2` multiplies :math:`w` by
    :math:`r(\lambda) = 1 - \eta\lambda - \eta\rho\lambda^2`.

    .. math::
        w^+ = w - \eta\,\nabla L(w + \rho\nabla L(w)) = w - \eta\lambda(w + \rho\lambda w)
            = (1 - \eta\lambda - \eta\rho\lambda^2)\,w,

    so on :math:`\tfrac12 w^\top Hw` the map is :math:`I - \eta H - \eta\rho H^2` and the
    :math:`i`-th eigencomponent is multiplied by :math:`r(\lambda_i)`. With
    :math:`x = \eta\lambda(1 + \rho\lambda)`, :math:`r = 1 - x` and :math:`|r| < 1 \iff 0 < x < 2`.
    The linear rate of :math:`\|w_t\|` is therefore :math:`\max_i |r(\lambda_i)|` (for a start with
    a nonzero component along the maximizing direction).

    Expression: :math:`r(\lambda)` in ``(eta, rho, lambda)``; any real :math:`\lambda`.

    Returns:
        The :class:`~xsam_theory.symbolic.base.Derivation` of :math:`r(\lambda)`.
    """
    grad = lam * w  # dL/dw for L = lam w^2 / 2
    w_new = w - eta * (grad.subs(w, w + rho * grad))
    r = sp.expand(w_new / w)
    closed = 1 - eta * lam - eta * rho * lam**2
    x = sp.Symbol("x", real=True)
    stable = sp.solve_univariate_inequality(sp.Abs(1 - x) < 1, x, relational=False)
    proved = {
        "USAM map on lam w^2/2 is w -> (1 - eta lam - eta rho lam^2) w": _zero(r - closed),
        "r == 1 - eta lam (1 + rho lam)": _zero(closed - (1 - eta * lam * (1 + rho * lam))),
        "|1 - x| < 1 iff 0 < x < 2": stable == sp.Interval.open(0, 2),
    }
    return derivation(
        "USAM per-eigendirection factor",
        closed,
        (eta, rho, lam),
        "L = w^T H w / 2, H symmetric; eta > 0, rho > 0; lambda any eigenvalue",
        proved,
    )


@cache
def usam_threshold() -> Derivation:
    r"""USAM's stability edge :math:`\lambda_U`.

    Derivation: docs/theory.md#T-usam; claim page docs/claims/L-USAM.md.

    The USAM edge :math:`\lambda_U = (\sqrt{1 + 8\rho/\eta} - 1)/(2\rho)`, the positive
    root of :math:`\eta\lambda(1+\rho\lambda) = 2`; :math:`\lambda_U < 2/\eta` and
    :math:`\lambda_U = 2/\eta - 4\rho/\eta^2 + O(\rho^2)`.

    For :math:`\lambda > 0`, :math:`f(\lambda) = \eta\lambda(1+\rho\lambda)` is increasing
    (:math:`f' = \eta(1 + 2\rho\lambda) > 0`) and :math:`f(0) = 0`, so the stable positive
    eigenvalues are exactly :math:`(0, \lambda_U)`. :math:`\lambda_U < 2/\eta` because
    :math:`f(2/\eta) - 2 = 4\rho/\eta > 0`.

    Returns:
        The :class:`~xsam_theory.symbolic.base.Derivation` of :math:`\lambda_U` over
        ``(eta, rho)``.
    """
    f = eta * lam_p * (1 + rho * lam_p)
    closed = (sp.sqrt(1 + 8 * rho / eta) - 1) / (2 * rho)
    roots = sp.solve(sp.Eq(f, 2), lam_p)
    series = sp.series(closed, rho, 0, 2).removeO()
    proved = {
        "eta lam (1 + rho lam) = 2 has one positive root, lambda_U": (
            len(roots) == 1 and _zero(roots[0] - closed)
        ),
        "f' = eta (1 + 2 rho lam) > 0 for lam > 0": bool(sp.diff(f, lam_p).is_positive),
        "f(2/eta) - 2 = 4 rho / eta > 0, so lambda_U < 2/eta": (
            _zero(f.subs(lam_p, 2 / eta) - 2 - 4 * rho / eta) and bool((4 * rho / eta).is_positive)
        ),
        "lambda_U = 2/eta - 4 rho/eta^2 + O(rho^2)": _zero(series - (2 / eta - 4 * rho / eta**2)),
    }
    return derivation(
        "USAM stability threshold lambda_U",
        closed,
        (eta, rho),
        "eta > 0, rho > 0, positive eigenvalues",
        proved,
    )


@cache
def sam_edge() -> Derivation:
    r"""Normalized SAM's stability edge :math:`\lambda_{SAM}(\|g\|)`.

    Derivation: docs/theory.md#T-sam-edge; claim pages docs/claims/L-SAM2.md and
    docs/claims/L-EDGE.md.

    The SAM edge is
    :math:`\lambda_{SAM}(\|g\|) = \frac{\|g\|}{2\rho}\big(\sqrt{1 + 8\rho/(\eta\|g\|)} - 1\big)`.

    Freezing :math:`\|g\| = G`, normalized SAM is USAM with radius :math:`\rho/G`:
    :math:`\lambda_{SAM}(G) = \lambda_U|_{\rho \to \rho/G}`. It increases in :math:`G`, tends to
    :math:`2/\eta` as :math:`\rho/G \to 0` (:math:`\rho \to 0` or :math:`G \to \infty`), and behaves
    like :math:`\sqrt{2G/(\eta\rho)}` as :math:`G \to 0`.

    Expression: :math:`\lambda_{SAM}` in ``(eta, rho, G)``.

    Returns:
        The :class:`~xsam_theory.symbolic.base.Derivation` of :math:`\lambda_{SAM}`.
    """
    closed = G / (2 * rho) * (sp.sqrt(1 + 8 * rho / (eta * G)) - 1)
    from_usam = usam_threshold().expr.subs(rho, rho / G)
    # d/dG > 0  <=>  G + 4 rho/eta > sqrt(G^2 + 8 rho G/eta)  <=>  16 rho^2/eta^2 > 0
    alt = (sp.sqrt(G**2 + 8 * rho * G / eta) - G) / (2 * rho)
    lhs, rhs = G + 4 * rho / eta, sp.sqrt(G**2 + 8 * rho * G / eta)
    proved = {
        "lambda_SAM(G) == lambda_U with rho -> rho/G": _zero(closed - from_usam),
        "lambda_SAM == (sqrt(G^2 + 8 rho G/eta) - G)/(2 rho)": _zero(closed - alt),
        "increasing in G: (G + 4rho/eta)^2 - (G^2 + 8 rho G/eta) = 16 rho^2/eta^2 > 0": (
            _zero(sp.expand(lhs**2 - rhs**2) - 16 * rho**2 / eta**2)
            and bool((16 * rho**2 / eta**2).is_positive)
            and _zero(sp.diff(alt, G) - (lhs / rhs - 1) / (2 * rho))
        ),
        "rho -> 0: lambda_SAM -> 2/eta": _zero(sp.limit(closed, rho, 0, "+") - 2 / eta),
        "G -> oo: lambda_SAM -> 2/eta": _zero(sp.limit(closed, G, sp.oo) - 2 / eta),
        "G -> 0: lambda_SAM / sqrt(2G/(eta rho)) -> 1": _zero(
            sp.limit(closed / sp.sqrt(2 * G / (eta * rho)), G, 0, "+") - 1
        ),
    }
    return derivation(
        "SAM edge lambda_SAM(||g||)",
        closed,
        (eta, rho, G),
        "eta, rho, ||g|| > 0; ||g|| frozen over one step (local USAM with rho/||g||)",
        proved,
    )


@cache
def heavy_ball_edge() -> Derivation:
    r"""Heavy ball's stability interval on a quadratic.

    Derivation: docs/theory.md#T-gd-edge (heavy ball); claim page docs/claims/L-EDGE.md.

    Heavy ball (PyTorch SGD momentum :math:`\mu`, no dampening) on
    :math:`\tfrac12\lambda w^2` is stable iff :math:`0 < \eta\lambda < 2(1+\mu)` (for
    :math:`0 \le \mu < 1`).

    State :math:`(w, b)`: :math:`b^+ = \mu b + \lambda w`, :math:`w^+ = w - \eta b^+`, i.e.
    :math:`M = \begin{pmatrix}1 - \eta\lambda & -\eta\mu\\ \lambda & \mu\end{pmatrix}` with
    characteristic polynomial :math:`z^2 - (1 + \mu - \eta\lambda)z + \mu`. Jury's conditions
    :math:`|\mu| < 1`, :math:`p(1) = \eta\lambda > 0`, :math:`p(-1) = 2(1+\mu) - \eta\lambda > 0`
    give the stated interval; the edge :math:`p(-1) = 0` is :math:`\lambda = 2(1+\mu)/\eta`.

    Returns:
        The :class:`~xsam_theory.symbolic.base.Derivation` of the edge :math:`2(1+\mu)/\eta` over
        ``(eta, mu)``.
    """
    z = sp.Symbol("z")
    M = sp.Matrix([[1 - eta * lam, -eta * mu], [lam, mu]])
    p = M.charpoly(z).as_expr()
    edge = sp.solve(sp.Eq(p.subs(z, -1), 0), lam)
    closed = 2 * (1 + mu) / eta
    bb, w0 = sp.symbols("b w0", real=True)
    b_new = mu * bb + lam * w0
    step = sp.Matrix([w0 - eta * b_new, b_new])
    proved = {
        "M is the PyTorch heavy-ball map": _zero((step - M * sp.Matrix([w0, bb])).norm() ** 2),
        "charpoly == z^2 - (1 + mu - eta lam) z + mu": _zero(
            p - (z**2 - (1 + mu - eta * lam) * z + mu)
        ),
        "p(1) == eta lam": _zero(p.subs(z, 1) - eta * lam),
        "p(-1) = 0  <=>  lam = 2(1 + mu)/eta": len(edge) == 1 and _zero(edge[0] - closed),
    }
    return derivation(
        "heavy-ball edge",
        closed,
        (eta, mu),
        "eta > 0, 0 <= mu < 1, no dampening, no weight decay (with weight decay "
        "lambda -> lambda + wd)",
        proved,
    )


@cache
def stability_edges() -> Derivation:
    r"""The stability thresholds of GD, USAM, SAM and heavy ball as closed forms.

    Derivation: docs/theory.md#T-gd-edge, docs/theory.md#T-usam, docs/theory.md#T-sam-edge and
    docs/theory.md#T-sam-lmax; claim page docs/claims/L-EDGE.md.

    GD :math:`2/\eta` (solved from :math:`1 - \eta\lambda = -1`), USAM :math:`\lambda_U`,
    SAM :math:`\lambda_{SAM}(\|g\|)`, heavy ball :math:`2(1+\mu)/\eta`. The expression is the tuple
    ``(gd, usam, sam, heavy_ball)`` in ``(eta, rho, G, mu)``; ``proved`` collects every sub-result.

    Returns:
        The :class:`~xsam_theory.symbolic.base.Derivation` of the four thresholds.
    """
    gd = sp.solve(sp.Eq(1 - eta * lam, -1), lam)
    u, s, h = usam_threshold(), sam_edge(), heavy_ball_edge()
    proved = {
        "GD: 1 - eta lam = -1 <=> lam = 2/eta": len(gd) == 1 and _zero(gd[0] - 2 / eta),
        "USAM at rho -> 0 is GD": _zero(sp.limit(u.expr, rho, 0, "+") - 2 / eta),
        "heavy ball at mu = 0 is GD": _zero(h.expr.subs(mu, 0) - 2 / eta),
    }
    for prefix, der in (("USAM", u), ("SAM", s), ("heavy ball", h)):
        proved.update({f"{prefix}: {k}": v for k, v in der.proved.items()})
    expr = (2 / eta, u.expr, s.expr, h.expr)
    return derivation(
        "stability edges (GD, USAM, SAM, heavy ball)",
        expr,
        (eta, rho, G, mu),
        "quadratic, eta > 0, rho > 0, ||g|| > 0 frozen, 0 <= mu < 1",
        proved,
    )


@cache
def sam_two_cycle() -> Derivation:
    r"""Normalized SAM's 2-cycle on a quadratic: amplitude, transverse factors, edge.

    Derivation: docs/theory.md#T-sam-cycle and docs/theory.md#T-sam-edge; claim page
    docs/claims/L-SAM2.md.

    Normalized SAM :math:`w^+ = w - \eta H(w + \rho Hw/\|Hw\|)` on a quadratic with a
    simple top eigenvalue, :math:`0 < \eta\lambda_1 < 2`.

    *Amplitude.* Along :math:`v_1` (transverse part zero) the map is
    :math:`x^+ = f(x) = x - \eta\lambda_1(x + \rho\,\mathrm{sign}\,x)`. A 2-cycle
    :math:`x_0 = c > 0 \to x_1 = f(c) < 0 \to f(x_1) = c` solves the two-step fixed-point equation
    :math:`f_-(f_+(c)) = c`, whose only root is :math:`c^* = \eta\rho\lambda_1/(2 - \eta\lambda_1)`
    (and then :math:`f(c^*) = -c^*`: the cycle is :math:`\pm c^* v_1`). Its one-step derivative
    along :math:`v_1` is :math:`1 - \eta\lambda_1` (:math:`|\cdot| < 1`: attracting).

    *Transverse factors.* Linearizing the 2-D map :math:`(x, u)` (eigenvalues
    :math:`\lambda_1, \lambda_i`) at :math:`(\pm c^*, 0)`:
    :math:`\partial u^+/\partial u = \tau_i = 1 - \eta\lambda_i - (2 - \eta\lambda_1)
    (\lambda_i/\lambda_1)^2`, and the off-diagonal derivatives vanish. With
    :math:`t = \lambda_i/\lambda_1 \in (0, 1)`, :math:`1 - \tau_i = \eta\lambda_1 t
    + (2 - \eta\lambda_1)t^2 > 0` and :math:`1 + \tau_i = (1 - t)(2 + (2 - \eta\lambda_1)t) > 0`.

    *Edge.* On the cycle :math:`\|g\| = \lambda_1 c^*` and :math:`\lambda_{SAM}(\lambda_1 c^*) =
    \lambda_1` identically: the cycle sits on its own edge.

    Expression: ``(c_star, tau)`` in ``(eta, rho, lambda_1, lambda_i)``.

    Returns:
        The :class:`~xsam_theory.symbolic.base.Derivation` of :math:`(c^*, \tau_i)`.
    """
    l1, li, c = (sp.Symbol(n, positive=True) for n in ("lambda_1", "lambda_i", "c"))
    s = sp.Symbol("s", positive=True)  # eta lam1 = 2/(1 + s) in (0, 2)
    f_plus = c - eta * l1 * (c + rho)  # x > 0: sign x = +1
    x1 = sp.Symbol("x1", negative=True)
    f_minus = x1 - eta * l1 * (x1 - rho)  # x < 0: sign x = -1
    two_step = f_minus.subs(x1, f_plus)
    roots = sp.solve(sp.Eq(two_step, c), c)
    c_star = eta * rho * l1 / (2 - eta * l1)
    on_edge = {l1: 2 / (eta * (1 + s))}

    # the 2-D map (x along v1, u along v_i), normalized perturbation
    x, u = sp.symbols("x u", real=True)
    gx, gu = l1 * x, li * u
    ng = sp.sqrt(gx**2 + gu**2)
    xn = x - eta * l1 * (x + rho * gx / ng)
    un = u - eta * li * (u + rho * gu / ng)
    tau = 1 - eta * li - (2 - eta * l1) * (li / l1) ** 2
    t = sp.Symbol("t", positive=True)
    a = 2 / (1 + s)  # eta lam1 in (0, 2)
    tau_t = 1 - a * t - (2 - a) * t**2

    def at_cycle(expr: sp.Expr, sign: int) -> sp.Expr:
        return sp.simplify(expr.subs(u, 0).subs(x, sign * c_star).subs(on_edge))

    proved = {
        "two-step fixed point f_-(f_+(c)) = c has the single root c*": (
            len(roots) == 1 and _zero(roots[0] - c_star)
        ),
        "f(c*) = -c*: the cycle is +-c* v1": _zero((f_plus + c).subs(c, c_star)),
        "f_+(c*) < 0 for 0 < eta lam1 < 2": bool(
            sp.simplify(f_plus.subs(c, c_star).subs(on_edge)).is_negative
        ),
        "c* > 0 for 0 < eta lam1 < 2": bool(sp.simplify(c_star.subs(on_edge)).is_positive),
        "d x+/d x on the cycle = 1 - eta lam1": all(
            _zero(at_cycle(sp.diff(xn, x), sg) - (1 - eta * l1).subs(on_edge)) for sg in (1, -1)
        ),
        "d u+/d u on the cycle = tau_i (both phases)": all(
            _zero(at_cycle(sp.diff(un, u), sg) - tau.subs(on_edge)) for sg in (1, -1)
        ),
        "d u+/d x = d x+/d u = 0 on the cycle": all(
            _zero(at_cycle(sp.diff(un, x), sg)) and _zero(at_cycle(sp.diff(xn, u), sg))
            for sg in (1, -1)
        ),
        "1 - tau = eta lam1 t + (2 - eta lam1) t^2 > 0": bool(sp.simplify(1 - tau_t).is_positive),
        "1 + tau = (1 - t)(2 + (2 - eta lam1) t)": _zero(1 + tau_t - (1 - t) * (2 + (2 - a) * t)),
        "on the cycle ||g|| = lam1 c* solves eta lam (1 + rho lam/||g||) = 2 at lam = lam1": _zero(
            eta * l1 * (1 + rho * l1 / (l1 * c_star)) - 2
        ),
        "lambda_SAM(lam1 c*) == lam1": _zero(
            (sam_edge().expr.subs(G, l1 * c_star) - l1).subs(on_edge)
        ),
    }
    return derivation(
        "SAM 2-cycle on a quadratic",
        (c_star, tau),
        (eta, rho, l1, li),
        "L = w^T H w / 2, lambda_1 simple, 0 < lambda_i < lambda_1, "
        "0 < eta lambda_1 < 2, rho > 0, start with a nonzero v1 component",
        proved,
    )
