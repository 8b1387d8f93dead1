r"""X-SAM's one-dimensional dynamics along an exact top eigenvector.

Derivations: docs/theory.md, part VII (docs/theory.md#T-reduction-1d to docs/theory.md#T-trap)
and docs/theory.md#T-fixed-points.

Setting: :math:`L(w) = \tfrac12 w^\top H w` with :math:`H \succeq 0`, :math:`v` a unit top
eigenvector (:math:`Hv = \lambda_1 v`, :math:`\lambda_1 > 0`, either orientation) and
:math:`x = \langle w, v\rangle`. On a quadratic
:math:`g_{adv} = H(w + \rho\hat g) = (I + \rho H/\|g\|)Hw`, so
:math:`\langle g_{adv}, v\rangle = \lambda_1(1 + \rho\lambda_1/\|g\|)\,x` has the sign of
:math:`x` (:func:`paper_rule_map`). Once the components of :math:`w` transverse to :math:`v` have
decayed, :math:`\hat g_{adv} = \mathrm{sign}(x)\,v` and every normalized form reduces to a map of
the scalar :math:`x` that does not depend on :math:`\lambda_1` or :math:`\rho`
(docs/theory.md#T-reduction-1d). That premise can fail: :func:`v2_cycle_trap`
(docs/theory.md#T-trap) gives the trap in which the transverse components never decay.

* paper rule :math:`d = \hat g_{adv} - \alpha|c|v`:
  :math:`x' = x - \eta(\mathrm{sign}(x) - \alpha)`; for :math:`0 \le \alpha < 1` the window
  :math:`(-\eta(1-\alpha), \eta(1+\alpha)]` of width :math:`2\eta` is entered and never left, and
  the fraction of steps with :math:`x > 0` is :math:`(1+\alpha)/2` within :math:`1/N` over any
  :math:`N` steps (:func:`paper_window`, docs/theory.md#T-window);
* symmetric rule :math:`d = \hat g_{adv} - \alpha c v`: normalized GD with step
  :math:`\eta(1-\alpha)`, a 2-cycle :math:`\{x, x - \eta(1-\alpha)\}` with
  :math:`|x| + |x'| = \eta(1-\alpha)` (:func:`symmetric_window`, docs/theory.md#T-window);
* projector form with the USAM perturbation, :math:`w' = w - \eta P(H + \rho H^2)w`,
  :math:`P = I - \alpha vv^\top`: the factor :math:`1 - \eta(1-\alpha)(\lambda_1 + \rho\lambda_1^2)`
  along :math:`v` and the USAM factors elsewhere (:func:`projector_factor`,
  docs/theory.md#T-projector-usam);
* :math:`\alpha = 1`: non-stationary fixed points (:func:`fixed_points`,
  docs/theory.md#T-fixed-points, docs/theory.md#T-freeze);
* :math:`\alpha > 1`: linear escape at :math:`\eta(\alpha-1)` per step,
  :math:`\eta(\alpha-1)/(1-\mu)` with heavy-ball momentum :math:`\mu`, and exponential divergence
  of the projector form at the rate :math:`1 + \eta(\alpha-1)(\lambda_1 + \rho\lambda_1^2)` for
  every :math:`\eta > 0` (:func:`escape`, docs/theory.md#T-escape,
  docs/theory.md#T-projector-usam).

The maps are piecewise affine and increasing on each piece, so the image of an interval is the
interval between the images of its end points; every invariance statement is proved by comparing
end points, each comparison reduced to a factor whose sign sympy decides from the symbols'
assumptions (``positive=True`` …) or over a stated interval. Constraints such as
:math:`\alpha \in [0, 1)` or :math:`\alpha > 1` are encoded by positive symbols
(:math:`\alpha = 1 - \delta` or :math:`1 + \delta`, :math:`\delta > 0`).
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from xsam_theory.symbolic.base import Derivation, derivation, interval_nonnegative

__all__ = [
    "escape",
    "fixed_points",
    "paper_rule_map",
    "paper_window",
    "projector_factor",
    "symmetric_window",
    "v2_cycle_trap",
]

eta = sp.Symbol("eta", positive=True)
rho = sp.Symbol("rho", nonnegative=True)
alpha = sp.Symbol("alpha", nonnegative=True)
lam1 = sp.Symbol("lambda_1", positive=True)
lam2 = sp.Symbol("lambda_2", nonnegative=True)
mu = sp.Symbol("mu", nonnegative=True)
x = sp.Symbol("x", real=True)
xp = sp.Symbol("x_p", positive=True)  # x > 0
xn = sp.Symbol("x_n", negative=True)  # x < 0
delta = sp.Symbol("delta", positive=True)  # alpha = 1 -+ delta
G = sp.Symbol("G", positive=True)  # ||g||
a_ = sp.Symbol("a", real=True)  # a free real for interval statements


def _zero(expr: sp.Expr) -> bool:
    return sp.simplify(expr) == 0


def _d_paper(c: sp.Expr) -> sp.Expr:
    """<d, v> for the paper rule with ĝ_adv = c v exactly (c = ±1): c - alpha|c|."""
    return c - alpha * sp.Abs(c)


@cache
def paper_rule_map() -> Derivation:
    r"""The 1-D reduction of the paper rule: :math:`x' = x - \eta(\mathrm{sign}(x) - \alpha)`.

    Derivation: docs/theory.md#T-reduction-1d (valid once the transverse components have
    decayed; see docs/theory.md#T-trap for when they do not).

    Proved: (i) on :math:`\tfrac12 w^\top Hw` with :math:`Hv = \lambda_1 v`,
    :math:`\langle g_{adv}, v\rangle = \lambda_1(1 + \rho\lambda_1/\|g\|)x`, a positive multiple
    of :math:`x` (in an eigenbasis, :math:`H = \mathrm{diag}(\lambda_1, \lambda_2)`, with a
    symbolic :math:`\|g\| = G > 0`); (ii) with :math:`\hat g_{adv} = \pm v` the paper rule's
    :math:`\langle d, v\rangle` is :math:`1 - \alpha` for :math:`x > 0` and :math:`-(1 + \alpha)`
    for :math:`x < 0`; the symmetric rule's is :math:`\pm(1 - \alpha)`.
    Expression: :math:`x - \eta(\mathrm{sign}(x) - \alpha)`.

    Returns:
        The :class:`~xsam_theory.symbolic.base.Derivation` of the map over ``(x, eta, alpha)``.
    """
    w1, w2 = sp.symbols("w_1 w_2", real=True)
    H = sp.diag(lam1, lam2)
    w = sp.Matrix([w1, w2])
    g = H * w
    g_adv = H * (w + rho * g / G)
    coef = sp.factor(g_adv[0])
    proved = {
        "<g_adv, v1> == lambda1 (1 + rho lambda1/||g||) <w, v1>": _zero(
            g_adv[0] - lam1 * (1 + rho * lam1 / G) * w1
        ),
        "lambda1 (1 + rho lambda1/||g||) > 0": bool((lam1 * (1 + rho * lam1 / G)).is_positive),
        "paper rule, x > 0: <d, v> == 1 - alpha": _zero(_d_paper(sp.Integer(1)) - (1 - alpha)),
        "paper rule, x < 0: <d, v> == -(1 + alpha)": _zero(_d_paper(sp.Integer(-1)) + (1 + alpha)),
        "symmetric rule: <d, v> == sign(x)(1 - alpha)": all(
            _zero((s - alpha * s) - s * (1 - alpha)) for s in (sp.Integer(1), sp.Integer(-1))
        ),
    }
    expr = x - eta * (sp.sign(x) - alpha)
    return derivation(
        "X-SAM paper rule, 1-D map",
        expr,
        (x, eta, alpha),
        "quadratic with H >= 0, v an exact unit top eigenvector (lambda_1 > 0), "
        f"transverse components decayed; <g_adv, v> = {coef}",
        proved,
    )


@cache
def paper_window() -> Derivation:
    r"""The paper rule's window, its width and the occupancy of its positive side.

    Derivation: docs/theory.md#T-window; claim pages docs/claims/F-WINDOW.md and
    docs/claims/F-SIGN.md.

    The window is :math:`(-\eta(1-\alpha), \eta(1+\alpha)]` for :math:`0 \le \alpha < 1`, its width
    :math:`2\eta`, and the occupancy :math:`(1+\alpha)/2`.

    With :math:`a = \eta(1-\alpha)` (the step for :math:`x > 0`) and :math:`b = \eta(1+\alpha)`
    (for :math:`x < 0`): the image of :math:`(0, b]` is :math:`(-a, b - a] = (-a, 2\eta\alpha]`,
    the image of :math:`(-a, 0)` is :math:`(2\eta\alpha, b)`, both inside the window when
    :math:`\alpha \le 1`; outside the window the orbit moves toward it by :math:`a` or
    :math:`b` and lands inside (from :math:`x > b`: :math:`x - a > 2\eta\alpha \ge 0`; from
    :math:`x \le -a`: :math:`x + b \le 2\eta\alpha \le b`). Displacement balance: after
    :math:`N` steps with :math:`n_+` on the positive side,
    :math:`x_N = x_0 - n_+ a + (N - n_+) b`, so
    :math:`n_+/N = (1+\alpha)/2 + (x_0 - x_N)/(2\eta N)`, and
    :math:`|n_+/N - (1+\alpha)/2| < 1/N` while both end points lie in the window.
    Expression: ``(lower, upper, fraction, equidistributed mean)`` =
    :math:`(-\eta(1-\alpha), \eta(1+\alpha), (1+\alpha)/2, \eta\alpha)`; the last is the
    window's midpoint, the long-run mean of :math:`x` when the rotation number
    :math:`(1-\alpha)/2` is irrational (the map is a rotation of the window, a circle of
    length :math:`2\eta`).

    Returns:
        The :class:`~xsam_theory.symbolic.base.Derivation` of the four numbers over
        ``(eta, alpha)``.
    """
    a = eta * (1 - alpha)
    b = eta * (1 + alpha)
    lower, upper = -a, b
    N, n_plus, x0, xN, f = sp.symbols("N n_+ x_0 x_N f", real=True)
    frac = sp.solve(sp.Eq(-f * a + (1 - f) * b, 0), f)
    n_sol = sp.solve(sp.Eq(xN, x0 - n_plus * a + (N - n_plus) * b), n_plus)
    am = 1 - delta  # alpha in [0, 1): alpha = 1 - delta
    proved = {
        "window width == 2 eta": _zero(upper - lower - 2 * eta),
        "image of (0, b] is (-a, 2 eta alpha]": _zero((upper - a) - 2 * eta * alpha),
        "2 eta alpha <= eta (1 + alpha) on alpha in [0, 1]": interval_nonnegative(
            (eta * (1 + a_) - 2 * eta * a_).subs(eta, 1), a_, sp.Interval(0, 1)
        ),
        "image of (-a, 0) is (2 eta alpha, b), inside the window since b > 0": bool(
            _zero((lower + b) - 2 * eta * alpha) and b.is_positive
        ),
        "steps toward the window are positive for alpha < 1 (a > 0, b > 0)": bool(
            a.subs(alpha, am).is_positive and b.is_positive
        ),
        "occupancy (displacement balance) == (1 + alpha)/2": (
            len(frac) == 1 and _zero(frac[0] - (1 + alpha) / 2)
        ),
        "n_+/N - (1+alpha)/2 == (x_0 - x_N)/(2 eta N)": (
            len(n_sol) == 1 and _zero(n_sol[0] / N - (1 + alpha) / 2 - (x0 - xN) / (2 * eta * N))
        ),
    }
    expr = (lower, upper, (1 + alpha) / 2, (lower + upper) / 2)
    return derivation(
        "X-SAM paper rule window",
        expr,
        (eta, alpha),
        "1-D map of paper_rule_map, 0 <= alpha < 1, eta > 0",
        proved,
    )


@cache
def symmetric_window() -> Derivation:
    r"""The symmetric rule's 1-D map and its window.

    Derivation: docs/theory.md#T-window (the symmetric rule; at :math:`\alpha = 0` it is the
    normalized-GD cycle of docs/theory.md#T-ngd).

    The map is :math:`x' = x - h\,\mathrm{sign}(x)` with
    :math:`h = \eta(1-\alpha)` (normalized GD with step :math:`h`): for :math:`0 < x \le h`
    the orbit is the 2-cycle :math:`\{x, x - h\}` with :math:`|x| + |x - h| = h`, inside
    :math:`(-h, h]`; from :math:`x > h` it moves down by :math:`h` per step until it enters.
    Expression: the window half-width :math:`\eta(1-\alpha)`.

    Returns:
        The :class:`~xsam_theory.symbolic.base.Derivation` of the half-width over ``(eta, alpha)``.
    """
    h = sp.Symbol("h", positive=True)
    u = sp.Symbol("u", positive=True)  # x = h/(1 + u) ranges over (0, h)
    x_in = h / (1 + u)
    x1 = x_in - h  # x > 0: step down by h
    x2 = x1 + h  # x1 < 0: step up by h
    proved = {
        "x in (0, h): x - h < 0": bool(sp.factor(x1).is_negative),
        "two-step map returns x": _zero(x2 - x_in),
        "|x| + |x - h| == h on (0, h]": _zero(sp.Abs(x_in) + sp.Abs(x1) - h),
        "h == eta (1 - alpha) is the symmetric rule's step along v": _zero(
            (1 - alpha) * eta - eta * (1 - alpha)
        ),
    }
    return derivation(
        "X-SAM symmetric rule window",
        eta * (1 - alpha),
        (eta, alpha),
        "1-D map of the symmetric rule, 0 <= alpha < 1 (h > 0)",
        proved,
    )


@cache
def projector_factor() -> Derivation:
    r"""The projector form with USAM perturbation and its factor along :math:`v_1`.

    Derivation: docs/theory.md#T-projector-usam.

    The map is :math:`w' = w - \eta P(H + \rho H^2)w`
    with :math:`P = I - \alpha vv^\top`, :math:`v = v_1`. In the eigenbasis
    (:math:`H = \mathrm{diag}(\lambda_1, \lambda_2)`, :math:`v = e_1`) the map is
    :math:`\mathrm{diag}(1 - \eta(1-\alpha)(\lambda_1 + \rho\lambda_1^2),\
    1 - \eta(\lambda_2 + \rho\lambda_2^2))`: the top direction is USAM with its step scaled by
    :math:`1-\alpha`, the others unchanged (:math:`P` commutes with :math:`H`). Stable along
    :math:`v_1` iff :math:`0 < \eta(1-\alpha)\lambda_1(1 + \rho\lambda_1) < 2`.
    Expression: the factor along :math:`v_1`.

    Returns:
        The :class:`~xsam_theory.symbolic.base.Derivation` of
        :math:`1 - \eta(1-\alpha)(\lambda_1 + \rho\lambda_1^2)` over
        ``(eta, rho, alpha, lambda_1)``.
    """
    H = sp.diag(lam1, lam2)
    P = sp.eye(2) - alpha * sp.Matrix([[1, 0], [0, 0]])
    M = sp.eye(2) - eta * P * (H + rho * H**2)
    r1 = 1 - eta * (1 - alpha) * (lam1 + rho * lam1**2)
    r2 = 1 - eta * (lam2 + rho * lam2**2)
    k = sp.Symbol("k", real=True)  # k = eta (1 - alpha) lambda (1 + rho lambda)
    stable = sp.solve_univariate_inequality(sp.Abs(1 - k) < 1, k, relational=False)
    proved = {
        "P commutes with H": _zero(sp.Matrix(P * H - H * P).norm()),
        "map == diag(r_1, r_2)": all(_zero(e) for e in (M - sp.diag(r1, r2))),
        "|r_1| < 1 iff 0 < eta(1-alpha) lambda_1 (1 + rho lambda_1) < 2": stable
        == sp.Interval.open(0, 2),
    }
    return derivation(
        "X-SAM projector form with USAM perturbation: factor along v1",
        r1,
        (eta, rho, alpha, lam1),
        "quadratic, v the exact top eigenvector, USAM perturbation rho*g",
        proved,
    )


@cache
def fixed_points() -> Derivation:
    r"""Fixed points of the corrections at :math:`\alpha = 1`.

    Derivation: docs/theory.md#T-fixed-points and docs/theory.md#T-freeze; claim page
    docs/claims/F-FREEZE.md.

    Paper rule (unit :math:`\hat g_{adv}`, :math:`c = \langle\hat g_{adv}, v\rangle`): for
    :math:`c \ge 0`, :math:`\|d\|^2 - (1-\alpha)^2 = (2\alpha - \alpha^2)(1 - c^2) \ge 0` on
    :math:`\alpha \in [0, 2]` (and :math:`\|d\|^2 \ge 1` for :math:`\alpha > 2` or :math:`c < 0`),
    so :math:`d = 0` only if :math:`\alpha = 1` and :math:`c = 1` (:math:`\hat g_{adv} = v`), where
    indeed :math:`d = 0`; a non-stationary fixed point (:math:`g_{adv} \ne 0`). In 1-D:
    :math:`x' = x` for every :math:`x > 0` at :math:`\alpha = 1`, and :math:`\langle d, v\rangle
    = c - |c| = 0` exactly whenever :math:`c > 0`, transverse components or not. Projector form:
    :math:`Pg = 0 \iff g = 0` or (:math:`\alpha = 1` and :math:`g \parallel v`).
    Expression: :math:`\|d\|^2 = 1 - 2\alpha c|c| + \alpha^2c^2`.

    Returns:
        The :class:`~xsam_theory.symbolic.base.Derivation` of :math:`\|d\|^2` over ``(c, alpha)``.
    """
    c = sp.Symbol("c", real=True)
    cp = sp.Symbol("c_p", nonnegative=True)
    cn = sp.Symbol("c_n", negative=True)
    nd2 = 1 - 2 * alpha * c * sp.Abs(c) + alpha**2 * c**2
    g1, g2 = sp.symbols("g_1 g_2", real=True)
    Pg = sp.Matrix([(1 - alpha) * g1, g2])
    sols = sp.solve(list(Pg), [g1, g2, alpha], dict=True)
    proved = {
        "c >= 0: ||d||^2 - (1-alpha)^2 == (2 alpha - alpha^2)(1 - c^2)": _zero(
            nd2.subs(c, cp) - (1 - alpha) ** 2 - (2 * alpha - alpha**2) * (1 - cp**2)
        ),
        "2a - a^2 >= 0 on [0, 2]": interval_nonnegative(2 * a_ - a_**2, a_, sp.Interval(0, 2)),
        "c >= 0, alpha > 2: ||d||^2 - 1 == c^2 alpha (alpha - 2) >= 0": bool(
            _zero(nd2.subs(c, cp) - 1 - cp**2 * alpha * (alpha - 2))
            and (cp**2 * alpha * (alpha - 2)).subs(alpha, 2 + delta).is_nonnegative
        ),
        "c < 0: ||d||^2 - 1 == c^2 (2 alpha + alpha^2) >= 0": bool(
            _zero(nd2.subs(c, cn) - 1 - cn**2 * (2 * alpha + alpha**2))
            and (cn**2 * (2 * alpha + alpha**2)).is_nonnegative
        ),
        "alpha = 1, c = 1: d == 0": _zero(nd2.subs({alpha: 1, c: 1})),
        "alpha = 1, c > 0: <d, v> == c - |c| == 0": _zero((cp - alpha * sp.Abs(cp)).subs(alpha, 1)),
        "1-D, alpha = 1, x > 0: x' == x": _zero(
            (xp - eta * (sp.sign(xp) - alpha)).subs(alpha, 1) - xp
        ),
        "P g = 0 iff g = 0 or (alpha = 1 and g || v)": (
            {frozenset(s.items()) for s in sols}
            == {frozenset({g1: 0, g2: 0}.items()), frozenset({alpha: 1, g2: 0}.items())}
        ),
    }
    return derivation(
        "X-SAM fixed points at alpha = 1",
        nd2,
        (c, alpha),
        "unit g_hat_adv and v; alpha >= 0; quadratic with exact v for the 1-D statements",
        proved,
    )


@cache
def escape() -> Derivation:
    r"""Escape for :math:`\alpha > 1` (written :math:`\alpha = 1 + \delta`).

    Derivation: docs/theory.md#T-escape and docs/theory.md#T-projector-usam; claim page
    docs/claims/F-ESCAPE.md.

    Paper rule, 1-D: :math:`x' - x = \eta(\alpha - 1) > 0` for :math:`x > 0` and
    :math:`\eta(1 + \alpha) > 0` for :math:`x < 0`: :math:`x` increases every step, becomes
    positive and then grows linearly, :math:`x_t = x_{t_0} + \eta(\alpha - 1)(t - t_0)` (so the
    loss :math:`\tfrac12\lambda_1 x_t^2` grows quadratically). With heavy ball
    (:math:`b_0 = d`, :math:`b_t = \mu b_{t-1} + d`) and the constant
    :math:`\langle d, v\rangle = 1 - \alpha`: :math:`b_t = d(1 - \mu^{t+1})/(1 - \mu)`, so the
    speed tends to :math:`\eta(\alpha - 1)/(1 - \mu)`. Projector form with USAM perturbation:
    the factor along :math:`v_1` is :math:`r = 1 + \eta(\alpha - 1)(\lambda_1 + \rho\lambda_1^2)
    > 1` for every :math:`\eta > 0`: exponential divergence at rate :math:`r`.
    Expression: ``(speed, speed with momentum, projector rate)``.

    Returns:
        The :class:`~xsam_theory.symbolic.base.Derivation` of the three over
        ``(eta, alpha, mu, rho, lambda_1)``.
    """
    t = sp.Symbol("t", integer=True, positive=True)
    kappa = sp.Symbol("kappa", positive=True)  # mu = exp(-kappa) in (0, 1)
    ap = 1 + delta
    dv = 1 - alpha  # <d, v> for x > 0
    speed = eta * (alpha - 1)
    speed_mu = eta * (alpha - 1) / (1 - mu)
    rate = 1 - eta * (1 - alpha) * (lam1 + rho * lam1**2)

    def b(tt: sp.Expr) -> sp.Expr:  # claimed closed form of the buffer
        return dv * (1 - mu ** (tt + 1)) / (1 - mu)

    b_lim = sp.limit(b(t).subs(mu, sp.exp(-kappa)), t, sp.oo)
    proved = {
        "x > 0: x' - x == eta (alpha - 1) > 0": bool(
            _zero(-eta * dv - speed) and speed.subs(alpha, ap).is_positive
        ),
        "x < 0: x' - x == eta (1 + alpha) > 0": bool(
            _zero(-eta * (-1 - alpha) - eta * (1 + alpha)) and (eta * (1 + alpha)).is_positive
        ),
        "momentum: b_0 == d and b_t == mu b_(t-1) + d for b_t = d(1 - mu^(t+1))/(1 - mu)": (
            _zero(b(sp.Integer(0)) - dv) and _zero(b(t) - mu * b(t - 1) - dv)
        ),
        "momentum: lim_t -eta b_t == eta (alpha - 1)/(1 - mu)": _zero(
            -eta * b_lim - speed_mu.subs(mu, sp.exp(-kappa))
        ),
        "projector: rate - 1 == eta (alpha - 1) lambda_1 (1 + rho lambda_1) > 0": bool(
            _zero(rate - 1 - eta * (alpha - 1) * lam1 * (1 + rho * lam1))
            and (rate.subs(alpha, ap) - 1).is_positive
        ),
    }
    return derivation(
        "X-SAM escape for alpha > 1",
        (speed, speed_mu, rate),
        (eta, alpha, mu, rho, lam1),
        "1-D maps along an exact top eigenvector; alpha > 1; 0 <= mu < 1",
        proved,
    )


@cache
def v2_cycle_trap() -> Derivation:
    r"""F-TRAP: the paper rule's linearization about the normalized-GD 2-cycle across :math:`v_2`.

    Derivation: docs/theory.md#T-trap; claim page docs/claims/F-TRAP.md.

    Setting: :math:`H = \mathrm{diag}(\lambda_1, \lambda_2)` in its eigenbasis,
    :math:`\lambda_1 > \lambda_2 > 0`, :math:`v = v_1`, :math:`w = (x, y)` with :math:`y > 0`.
    At :math:`x = 0`, :math:`\hat g_{adv} = \mathrm{sign}(y)v_2`, the correction vanishes
    (:math:`c = 0`) and every normalized form is normalized GD along :math:`v_2`:
    :math:`y' = y - \eta\,\mathrm{sign}(y)`, so :math:`y = \pm\eta/2` is a 2-cycle. Near it,
    :math:`c = \langle \hat g_{adv}, v_1\rangle = K x + O(x^2)` with

    .. math:: K = \frac{\lambda_1(\lambda_2|y| + \rho\lambda_1)}{\lambda_2^2|y|(|y| + \rho)},

    so the paper rule's :math:`x' = x - \eta(c - \alpha|c|)` multiplies :math:`x` by
    :math:`m_+ = 1 - \eta(1-\alpha)K` for :math:`x > 0` and :math:`m_- = 1 - \eta(1+\alpha)K`
    for :math:`x < 0`, while :math:`y` keeps cycling (its map is even in :math:`x` to first
    order). The two-step multiplier is :math:`m_+^2` if :math:`m_+ > 0` and :math:`m_+ m_-`
    otherwise (then the sign of :math:`x` alternates); when its modulus is below 1 the cycle
    traps :math:`x \to 0`: the iterate locks on a 2-cycle across :math:`v_2` and never reaches
    the 1-D map of :func:`paper_rule_map`. Since :math:`m_+ \to 1` from below as
    :math:`\alpha \to 1`, the trap always exists for :math:`\alpha` close enough to 1.
    Expression: ``(K, m_plus, m_minus)`` as functions of
    :math:`(\lambda_1, \lambda_2, \rho, \eta, \alpha, y)`.

    Returns:
        The :class:`~xsam_theory.symbolic.base.Derivation` of :math:`(K, m_+, m_-)`.
    """
    xs = sp.Symbol("x", real=True)
    y = sp.Symbol("y", positive=True)
    l2 = sp.Symbol("lambda_2", positive=True)
    w = sp.Matrix([xs, y])
    H = sp.diag(lam1, l2)
    g = H * w
    gn = sp.sqrt(g.dot(g))
    g_adv = H * (w + rho * g / gn)
    c = g_adv[0] / sp.sqrt(g_adv.dot(g_adv))
    K_series = sp.simplify(sp.diff(c, xs).subs(xs, 0))
    K = lam1 * (l2 * y + rho * lam1) / (l2**2 * y * (y + rho))
    y_adv = g_adv[1] / sp.sqrt(g_adv.dot(g_adv))
    m_plus = 1 - eta * (1 - alpha) * K
    m_minus = 1 - eta * (1 + alpha) * K
    am = 1 - delta
    proved = {
        "c(x=0) == 0 and <g_adv_hat, v2>(x=0) == 1": (
            _zero(c.subs(xs, 0)) and _zero(y_adv.subs(xs, 0) - 1)
        ),
        "dc/dx at x = 0 == K": _zero(K_series - K),
        "d<g_adv_hat, v2>/dx at x = 0 == 0 (y cycles to first order)": _zero(
            sp.diff(y_adv, xs).subs(xs, 0)
        ),
        "K > 0": bool(K.is_positive),
        "alpha = 1 - delta: m_plus < 1": bool(
            (1 - m_plus.subs(alpha, am)).subs(delta, sp.Symbol("d", positive=True)).is_positive
        ),
        "lim alpha -> 1 of m_plus == 1": _zero(sp.limit(m_plus, alpha, 1) - 1),
    }
    return derivation(
        "X-SAM paper rule: trap on the v2 2-cycle",
        (K, m_plus, m_minus),
        (lam1, l2, rho, eta, alpha, y),
        "quadratic diag(lambda_1, lambda_2), lambda_1 > lambda_2 > 0, v = v1 "
        "exact; linearized in x about the normalized-GD 2-cycle y = +-eta/2",
        proved,
    )
