r"""SAM's drift along a valley of minimizers and the factorization toys, by sympy.

The derivations are docs/theory.md#T-drift (SAM), docs/theory.md#T-confound (the projector
form, fixed and exact ``v``, and the normalized forms) and docs/theory.md#T-flat-bias (the
factorization toy).

The ravine toy :math:`L(x, y) = \tfrac12\lambda_0(1 + y^2)x^2` has the minimizers :math:`x = 0`
with :math:`\lambda_1 = \lambda_0(1 + y^2)`, :math:`\nabla\lambda_1 = (0, 2\lambda_0 y)`.
Across the valley SAM settles into its 2-cycle :math:`x = \pm x^*`; the cycle's gradient along
the valley drives :math:`y` toward the flat point :math:`y = 0`.

* :func:`ravine_drift` — SAM and the projector form with the valley's eigenvector
  :math:`v = e_x` (per-direction step scale :math:`p = 1 - \alpha` along :math:`v`):
  :math:`x^* = \eta p\rho\lambda_1/(2 - \eta p\lambda_1)`, and the per-step drift
  :math:`\Delta y = -\eta\,(x^* + \rho)^2/2\cdot\partial_y\lambda_1
  = -\eta\cdot 2\rho^2/(2 - \eta p\lambda_1)^2\cdot 2\lambda_0 y` (docs/theory.md#T-drift
  with :math:`p = 1`, docs/theory.md#T-confound with :math:`p = 1 - \alpha`). GD's drift at the
  valley floor is exactly zero.
* :func:`ravine_drift_tilted` — the projector form with :math:`v` the exact top eigenvector of
  the Hessian *at the iterate*, tilted by :math:`v_y/v_x = 2xy/(1+y^2) + O(x^3)`: the
  correction then also removes part of the along-valley gradient,
  :math:`\Delta y = -\eta\lambda_0 y(x^* + \rho)(x^* + \rho - 2\alpha x^*)`.
* :func:`per_step_drift` — the leading-order per-step drift of every form at a given
  :math:`(x, y)`, used against measured steps: the drift per unit path length
  :math:`|\Delta y|/\|\Delta w\| = y(|x| + \rho - 2\alpha\kappa)/(1 + y^2)` is the same for every
  form (:math:`\kappa = 0` for a fixed :math:`v = e_x`, :math:`|x|` for the sign-free forms and
  :math:`\sigma x` for the paper rule with an exact, oriented :math:`v = \sigma(1, t)`); the forms
  differ by their path length per step: :math:`\eta` for the normalized forms,
  :math:`\eta\|g_{adv}\| = \eta\lambda_1(|x| + \rho)` for SAM and the projector form.
* :func:`factorization_gd` — on :math:`\tfrac12(xy-1)^2`, one GD step multiplies
  :math:`D = x^2 - y^2` by :math:`1 - \eta^2 r^2` (:math:`r = xy - 1`); on :math:`xy = 1`,
  :math:`\lambda_{\max} = x^2 + y^2 = \sqrt{D^2 + 4} \ge 2`, with equality at :math:`|x| = |y| = 1`
  (the flattest minimizer).

Assumptions of the drift formulas (leading order): the cycle across the valley has settled and
:math:`y` moves slowly (adiabatic); terms of relative size :math:`O(\rho|x|)` (the ascent step's
:math:`y` component) and :math:`O(y^2(|x|+\rho)^2)` (the tilt of :math:`\hat g_{adv}`) are dropped.
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from xsam_theory.symbolic.base import Derivation, derivation

__all__ = ["factorization_gd", "per_step_drift", "ravine_drift", "ravine_drift_tilted"]

eta = sp.Symbol("eta", positive=True)
rho = sp.Symbol("rho", positive=True)
lam0 = sp.Symbol("lambda_0", positive=True)
lam = sp.Symbol("lambda_1", positive=True)
alpha = sp.Symbol("alpha", nonnegative=True)
p = sp.Symbol("p", positive=True)  # step scale along v (1 - alpha)
y = sp.Symbol("y", real=True)
x = sp.Symbol("x", real=True)
xs = sp.Symbol("x_s", positive=True)  # the cycle amplitude (a positive unknown)
u = sp.Symbol("u", positive=True)  # eta p lambda_1 = 2/(1 + u): 0 < . < 2


def _zero(expr: sp.Expr) -> bool:
    return sp.simplify(expr) == 0


def _ravine_grad(xx: sp.Expr, yy: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    L = sp.Rational(1, 2) * lam0 * (1 + y**2) * x**2
    return (
        sp.diff(L, x).subs({x: xx, y: yy}, simultaneous=True),
        sp.diff(L, y).subs({x: xx, y: yy}, simultaneous=True),
    )


def _amplitude() -> sp.Expr:
    return eta * p * rho * lam / (2 - eta * p * lam)


def _slower() -> bool:
    """(2 - k)/(2 - (1 - a)k) in (0, 1) for k = eta lambda1 = 2/(1 + u) in (0, 2), a in (0, 1]."""
    a = sp.Symbol("a", positive=True)
    k = 2 / (1 + u)
    ratio = (2 - k) / (2 - (1 - a) * k)
    b = sp.Symbol("b", nonnegative=True)  # a = 1/(1 + b) covers (0, 1]
    r = sp.factor(sp.simplify(ratio.subs(a, 1 / (1 + b))))
    return bool(r.is_positive and sp.factor(sp.simplify(1 - r)).is_positive)


@cache
def ravine_drift() -> Derivation:
    r"""The cycle amplitude and the per-step drift along the ravine, SAM and projector form.

    Derivation: docs/theory.md#T-drift (SAM, :math:`p = 1`) and docs/theory.md#T-confound
    (projector form with :math:`v = e_x` fixed, :math:`p = 1 - \alpha`); the amplitude is also
    the cycle of docs/theory.md#T-projector-sam.

    Proved: (i) the 1-D SAM map with step scale :math:`p` along :math:`v`,
    :math:`x' = x - \eta p\lambda_1(x + \rho\,\mathrm{sign}\,x)`, has the 2-cycle :math:`\pm x^*`,
    :math:`x^* = \eta p\rho\lambda_1/(2 - \eta p\lambda_1)`, positive when
    :math:`0 < \eta p\lambda_1 < 2`; (ii) the gradient along the valley at the perturbed point
    :math:`(x + \rho\,\mathrm{sign}\,x,\ y)` is :math:`\lambda_0 y(x^* + \rho)^2` at *both* cycle
    points, i.e. :math:`(x^*+\rho)^2/2\cdot\partial_y\lambda_1`; (iii)
    :math:`(x^* + \rho)^2/2 = 2\rho^2/(2 - \eta p\lambda_1)^2`; (iv) GD's along-valley gradient at
    the valley floor :math:`x = 0` is exactly 0. Expression (per-step :math:`\Delta y`, with
    :math:`\lambda_1 = \lambda_0(1 + y^2)` and :math:`p = 1 - \alpha`):
    :math:`-\eta\cdot 2\rho^2/(2 - \eta(1-\alpha)\lambda_1)^2\cdot 2\lambda_0 y`.

    Returns:
        The :class:`~xsam_theory.symbolic.base.Derivation` of the per-step :math:`\Delta y` over
        ``(eta, rho, lambda_0, y, alpha)``.
    """
    sol = sp.solve(sp.Eq(xs - eta * p * lam * (xs + rho), -xs), xs)
    amp = _amplitude()
    gy_plus = _ravine_grad(amp + rho, y)[1]
    gy_minus = _ravine_grad(-amp - rho, y)[1]
    dlam_dy = sp.diff(lam0 * (1 + y**2), y)
    drift = -eta * 2 * rho**2 / (2 - eta * p * lam) ** 2 * dlam_dy
    proved = {
        "2-cycle amplitude x* == eta p rho lambda1/(2 - eta p lambda1)": (
            len(sol) == 1 and _zero(sol[0] - amp)
        ),
        "x* > 0 when 0 < eta p lambda1 < 2": bool(
            sp.simplify(amp.subs(lam, 2 / (1 + u) / (eta * p))).is_positive
        ),
        "g_adv,y equal at both cycle points": _zero(gy_plus - gy_minus),
        "g_adv,y == (x* + rho)^2/2 * d lambda1/dy": _zero(gy_plus - (amp + rho) ** 2 / 2 * dlam_dy),
        "(x* + rho)^2/2 == 2 rho^2/(2 - eta p lambda1)^2": _zero(
            (amp + rho) ** 2 / 2 - 2 * rho**2 / (2 - eta * p * lam) ** 2
        ),
        "GD: dL/dy == 0 at the valley floor x = 0": _zero(_ravine_grad(sp.Integer(0), y)[1]),
        "projector drift / SAM drift == ((2 - eta lambda1)/(2 - eta(1-alpha) lambda1))^2 < 1 "
        "for 0 < alpha <= 1, 0 < eta lambda1 < 2": _slower(),
    }
    expr = drift.subs({p: 1 - alpha}).subs(lam, lam0 * (1 + y**2))
    return derivation(
        "ravine drift per step (SAM: alpha = 0; projector form, v = e_x)",
        expr,
        (eta, rho, lam0, y, alpha),
        "SAM 2-cycle across the ravine settled, y adiabatic; leading order "
        "(epsilon's y component O(rho|x| y) and O(x^2) terms dropped); "
        "0 < eta (1 - alpha) lambda_1 < 2",
        proved,
    )


@cache
def ravine_drift_tilted() -> Derivation:
    r"""The projector form's drift with :math:`v` the exact top eigenvector at the iterate.

    Derivation: docs/theory.md#T-confound (item 3: the fixed-:math:`v` formula of
    :func:`ravine_drift` does not hold for this :math:`v`; the drift is smaller by the factor
    :math:`1 - \alpha\eta(1-\alpha)\lambda_1`).

    Proved: (i) the top eigenvector :math:`(1, t)` of the ravine Hessian
    :math:`\lambda_0\begin{pmatrix}1+y^2 & 2xy\\ 2xy & x^2\end{pmatrix}` has
    :math:`t = 2xy/(1+y^2) + O(x^3)` (the slope solves :math:`Bt^2 + (A-C)t - B = 0`; the
    candidate leaves a residual :math:`O(x^3)` and the derivative :math:`A - C` stays near
    :math:`\lambda_1`); (ii) with :math:`g_{adv} = \nabla L(x + \rho s, y)`,
    :math:`s = \mathrm{sign}\,x`, the :math:`y` component of
    :math:`g_{adv} - \alpha\langle g_{adv}, v\rangle v` is, to leading order,
    :math:`\lambda_0 y(|x| + \rho)(|x| + \rho - 2\alpha|x|)` at both cycle points.
    Expression: :math:`-\eta\lambda_0 y(x^* + \rho)(x^* + \rho - 2\alpha x^*)` with
    :math:`x^* = \eta(1-\alpha)\rho\lambda_1/(2 - \eta(1-\alpha)\lambda_1)`.

    Returns:
        The :class:`~xsam_theory.symbolic.base.Derivation` of the per-step :math:`\Delta y` over
        ``(eta, rho, lambda_0, y, alpha)``.
    """
    A, B, C = lam0 * (1 + y**2), 2 * lam0 * x * y, lam0 * x**2
    t0 = 2 * x * y / (1 + y**2)
    resid = sp.series(sp.simplify(B * t0**2 + (A - C) * t0 - B), x, 0, 3).removeO()
    ok_tilt = _zero(resid)
    amp = _amplitude()

    def dy_at(sgn: int) -> sp.Expr:
        xx = sgn * amp
        gx, gy = _ravine_grad(xx + rho * sgn, y)
        t = t0.subs(x, xx)
        # <g_adv, v> v_y to leading order: g_x * t (v = (1, t), |t| << 1)
        return gy - alpha * gx * t

    target = lam0 * y * (amp + rho) * (amp + rho - 2 * alpha * amp)
    proved = {
        "top eigenvector slope t = 2xy/(1+y^2) + O(x^3)": ok_tilt,
        "d_y at x = +x*": _zero(dy_at(1) - target),
        "d_y at x = -x*": _zero(dy_at(-1) - target),
    }
    expr = (-eta * target).subs(p, 1 - alpha).subs(lam, lam0 * (1 + y**2))
    return derivation(
        "ravine drift per step, projector form with the iterate's exact v",
        expr,
        (eta, rho, lam0, y, alpha),
        "as ravine_drift, plus v = exact top eigenvector of the Hessian at the "
        "iterate (first order in its tilt)",
        proved,
    )


@cache
def per_step_drift() -> Derivation:
    r"""Leading-order drift of one step at :math:`(x, y)`, every form.

    Derivation: docs/theory.md#T-confound (item 4: the step-size confound).

    With :math:`s = \mathrm{sign}\,x`, :math:`g_{adv} \approx \nabla L(x + \rho s, y)`:
    :math:`\hat g_{adv,y} = y(|x| + \rho)/(1 + y^2)` to leading order (proved from the
    ratio :math:`g_{adv,y}/g_{adv,x}`), so the drift per unit path length is
    :math:`y(|x| + \rho - 2\alpha\kappa)/(1 + y^2)` for every form, where the correction adds
    :math:`-2\alpha\kappa` only through the tilt of an exact :math:`v`. Expression (a function of
    ``(x, y, step_length, rho, alpha, kappa)``):
    :math:`-\ell\, y(|x| + \rho - 2\alpha\kappa)/(1 + y^2)`, with :math:`\ell = \eta` for the
    normalized forms and :math:`\ell = \eta\lambda_1(|x| + \rho)` for SAM / the projector form.

    Returns:
        The :class:`~xsam_theory.symbolic.base.Derivation` of the drift over
        ``(x, y, ell, rho, alpha, kappa)``.
    """
    gx, gy = _ravine_grad(x + rho * sp.sign(x), y)
    xp = sp.Symbol("x_p", positive=True)
    ratio_pos = sp.simplify((gy / gx).subs(x, xp))
    ratio_neg = sp.simplify((gy / gx).subs(x, -xp))
    ell, kappa = sp.symbols("ell kappa", real=True)
    proved = {
        "g_adv,y/|g_adv,x| == y(|x| + rho)/(1 + y^2) (x > 0)": _zero(
            ratio_pos - y * (xp + rho) / (1 + y**2)
        ),
        "g_adv,y/|g_adv,x| == y(|x| + rho)/(1 + y^2) (x < 0)": _zero(
            -ratio_neg - y * (xp + rho) / (1 + y**2)
        ),
        "SAM path length eta ||g_adv|| == eta lambda1 (|x| + rho) to leading order": _zero(
            sp.Abs(gx.subs(x, xp)) - lam0 * (1 + y**2) * (xp + rho)
        ),
    }
    expr = -ell * y * (sp.Abs(x) + rho - 2 * alpha * kappa) / (1 + y**2)
    return derivation(
        "per-step drift along the ravine",
        expr,
        (x, y, ell, rho, alpha, kappa),
        "leading order in the tilt of g_adv (|y(|x|+rho)| << 1) and in rho|x|",
        proved,
    )


@cache
def factorization_gd() -> Derivation:
    r"""Toy A: GD on :math:`\tfrac12(xy - 1)^2` and the sharpness on :math:`xy = 1`.

    Derivation: docs/theory.md#T-flat-bias (toy A).

    Proved: one GD step gives :math:`x'^2 - y'^2 = (x^2 - y^2)(1 - \eta^2 r^2)`;
    on :math:`xy = 1`, :math:`(x^2 + y^2)^2 = (x^2 - y^2)^2 + 4`, so
    :math:`\lambda_{\max} = \sqrt{D^2 + 4}`; and :math:`x^2 + 1/x^2 - 2 = (x - 1/x)^2 \ge 0`, so the
    flattest minimizer has :math:`\lambda = 2` at :math:`|x| = |y| = 1`.
    Expression: :math:`\sqrt{D^2 + 4}` (the sharpness of the minimizer with imbalance :math:`D`).

    Returns:
        The :class:`~xsam_theory.symbolic.base.Derivation` of :math:`\sqrt{D^2 + 4}` over ``(D,)``.
    """
    xx, yy = sp.symbols("x y", real=True)
    xpos = sp.Symbol("x", positive=True)
    D = sp.Symbol("D", real=True)
    r = xx * yy - 1
    x1, y1 = xx - eta * r * yy, yy - eta * r * xx
    proved = {
        "GD: D' == D (1 - eta^2 r^2)": _zero(
            sp.expand(x1**2 - y1**2 - (xx**2 - yy**2) * (1 - eta**2 * r**2))
        ),
        "on xy = 1: (x^2 + y^2)^2 == D^2 + 4": _zero(
            ((xpos**2 + 1 / xpos**2) ** 2 - (xpos**2 - 1 / xpos**2) ** 2) - 4
        ),
        "x^2 + 1/x^2 - 2 == (x - 1/x)^2 (flattest: lambda = 2 at |x| = 1)": _zero(
            xpos**2 + 1 / xpos**2 - 2 - (xpos - 1 / xpos) ** 2
        ),
    }
    return derivation(
        "factorization toy: GD imbalance and sharpness on xy = 1",
        sp.sqrt(D**2 + 4),
        (D,),
        "scalar factorization L = (xy - 1)^2/2; GD with step eta",
        proved,
    )
