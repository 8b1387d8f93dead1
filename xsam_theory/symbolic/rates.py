r"""Rates of the descent-lemma bounds under the step size :math:`\eta_t = \eta_0/\sqrt{t+1}`.

Derivation: docs/theory.md#T-normalized-rate (the rate P-CONV expects; claim page
docs/claims/P-CONV.md).

With :math:`S_T = \sum_{t<T}\eta_t/\eta_0 = \sum_{k=1}^{T} k^{-1/2}` and
:math:`H_T = \sum_{t<T}\eta_t^2/\eta_0^2 = \sum_{k=1}^{T} k^{-1}`, a descent-lemma argument
(see :mod:`xsam_theory.experiments.convergence`) bounds the best gradient norm by

.. math::
    \min_{t<T}\|\nabla L(w_t)\| \le \frac{A + B\,H_T}{S_T}
    \quad\text{(normalized step)},\qquad
    \min_{t<T}\|\nabla L(w_t)\|^2 \le \frac{A + B\,H_T}{S_T}
    \quad\text{(unnormalized step)},

with constants :math:`A, B \ge 0`. This module derives, with sympy:

* the integral bracketing of the two sums (:func:`partial_sums`):
  :math:`2\sqrt{T+1} - 2 \le S_T \le 2\sqrt T - 1` and :math:`\ln(T+1) \le H_T \le 1 + \ln T`
  (a decreasing summand lies between its integrals), so :math:`S_T \sim 2\sqrt T` and
  :math:`H_T \sim \ln T`;
* the asymptotic log-log slope of the bound (:func:`asymptotic_slopes`):
  :math:`\frac{d\ln((A + B\ln T)/\sqrt T)^{p}}{d\ln T} \to -p/2` as :math:`T \to \infty`
  for :math:`p = 1` (normalized: :math:`-1/2`) and :math:`p = 1/2` (unnormalized: :math:`-1/4`).

At finite :math:`T` the :math:`\ln T` factor flattens the bound: its least-squares log-log slope
on a grid of :math:`T` is larger than :math:`-p/2`, by at most the amount for :math:`A = 0`
(the bound is then :math:`B H_T/S_T`; any :math:`A > 0` only steepens it: the local slope
:math:`d\ln(A + BH_T)/d\ln T` is at most :math:`d\ln(BH_T)/d\ln T`, and a least-squares slope
is an average of local slopes with non-negative weights).
:func:`finite_t_allowance` computes that worst case from the exact sums; it does not depend on
the constants, so it is fixed by the grid alone.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import sympy as sp

from xsam_theory.symbolic.base import Derivation, derivation

__all__ = ["asymptotic_slopes", "bound_curve", "exact_sums", "finite_t_allowance", "partial_sums"]


@cache
def partial_sums() -> Derivation:
    r"""Integral bounds of the partial sums :math:`S_T` and :math:`H_T`.

    Here :math:`S_T = \sum_{k=1}^T k^{-1/2}` and :math:`H_T = \sum_{k=1}^T k^{-1}`:
    ``expr = (S_low, S_high, H_low, H_high)`` as functions of ``T``; ``proved`` holds the sympy
    identities behind them (the integrals and :math:`H_T` = ``harmonic(T)``):
    :math:`2\sqrt{T+1} - 2 \le S_T \le 2\sqrt T - 1` and
    :math:`\ln(T+1) \le H_T \le 1 + \ln T`. Derivation: docs/theory.md#T-normalized-rate.

    Returns:
        The :class:`~xsam_theory.symbolic.base.Derivation` of the four bounds over ``(T,)``.
    """
    T, x = sp.symbols("T x", positive=True)
    f_s, f_h = 1 / sp.sqrt(x), 1 / x
    s_low = sp.integrate(f_s, (x, 1, T + 1))
    s_high = 1 + sp.integrate(f_s, (x, 1, T))
    h_low = sp.integrate(f_h, (x, 1, T + 1))
    h_high = 1 + sp.integrate(f_h, (x, 1, T))
    n, j = sp.symbols("n j", positive=True, integer=True)
    proved = {
        "S_low = 2 sqrt(T+1) - 2": sp.simplify(s_low - (2 * sp.sqrt(T + 1) - 2)) == 0,
        "S_high = 2 sqrt(T) - 1": sp.simplify(s_high - (2 * sp.sqrt(T) - 1)) == 0,
        "H_low = log(T+1)": sp.simplify(h_low - sp.log(T + 1)) == 0,
        "H_high = 1 + log(T)": sp.simplify(h_high - (1 + sp.log(T))) == 0,
        "H_T = harmonic(T)": sp.summation(1 / j, (j, 1, n)) == sp.harmonic(n),
        "summands decreasing": bool(sp.diff(f_s, x).is_negative and sp.diff(f_h, x).is_negative),
    }
    return derivation(
        "bounds of S_T and H_T",
        (s_low, s_high, h_low, h_high),
        (T,),
        "T >= 1; sums over k = 1..T of decreasing positive summands",
        proved,
    )


@cache
def asymptotic_slopes() -> Derivation:
    r"""The asymptotic log-log slopes of the normalized and unnormalized bounds.

    ``expr = (normalized, unnormalized)``: the limits of
    :math:`d\ln\big((A + B\ln T)/(2\sqrt T)\big)^p/d\ln T` for :math:`p = 1` and :math:`1/2`
    (:math:`A, B > 0`): :math:`-1/2` and :math:`-1/4`. Derivation:
    docs/theory.md#T-normalized-rate.

    Returns:
        The :class:`~xsam_theory.symbolic.base.Derivation` of the two limits (no free symbols).
    """
    T, A, B = sp.symbols("T A B", positive=True)
    out = []
    for p in (sp.Integer(1), sp.Rational(1, 2)):
        bound = ((A + B * sp.log(T)) / (2 * sp.sqrt(T))) ** p
        out.append(sp.limit(sp.simplify(T * sp.diff(sp.log(bound), T)), T, sp.oo))
    proved = {
        "normalized -> -1/2": out[0] == sp.Rational(-1, 2),
        "unnormalized -> -1/4": out[1] == sp.Rational(-1, 4),
    }
    return derivation(
        "asymptotic log-log slopes of the descent-lemma bounds",
        tuple(out),
        (),
        "A, B > 0; eta_t = eta0/sqrt(t+1)",
        proved,
    )


def exact_sums(t_max: int) -> tuple[np.ndarray, np.ndarray]:
    r"""The partial sums :math:`(S_T, H_T)` for :math:`T = 1, \dots,` ``t_max``, in float64.

    :math:`S_T = \sum_{k=1}^T k^{-1/2}` and :math:`H_T = \sum_{k=1}^T k^{-1}` (cumulative sums), the
    sums of docs/theory.md#T-normalized-rate.

    Args:
        t_max: the largest :math:`T`, an integer ``>= 1``.

    Returns:
        The arrays ``(S, H)`` of length ``t_max``; ``S[T - 1]`` is :math:`S_T`.

    Raises:
        ValueError: if ``t_max`` is not an integer ``>= 1``.
    """
    if isinstance(t_max, bool) or not isinstance(t_max, (int, np.integer)) or t_max < 1:
        raise ValueError(f"t_max must be an integer >= 1, got {t_max!r}")
    k = np.arange(1, int(t_max) + 1, dtype=float)
    return np.cumsum(k**-0.5), np.cumsum(1.0 / k)


def bound_curve(grid: np.ndarray, a: float, b: float, power: float) -> np.ndarray:
    r"""The bound :math:`\big((a + b H_T)/S_T\big)^{p}` on ``grid`` (``power`` :math:`p`).

    The descent-lemma bound of docs/theory.md#T-normalized-rate with constants :math:`A = a`,
    :math:`B = b`: :math:`p = 1` bounds the best gradient norm of a normalized step,
    :math:`p = 1/2` that of an unnormalized one.

    Args:
        grid: the values of :math:`T`, a 1-D array of integers ``>= 1``.
        a: the constant :math:`A \ge 0`.
        b: the constant :math:`B \ge 0` (not both 0).
        power: the exponent :math:`p`.

    Returns:
        The bound at each :math:`T` of ``grid``.

    Raises:
        ValueError: if ``grid`` or the constants are invalid.
    """
    grid = np.asarray(grid, dtype=int)
    if grid.ndim != 1 or grid.size == 0 or np.any(grid < 1):
        raise ValueError(f"grid must be a 1-D array of integers >= 1, got {grid!r}")
    if not (a >= 0 and b >= 0 and a + b > 0):
        raise ValueError(f"a, b must be >= 0 and not both 0, got a={a!r}, b={b!r}")
    S, H = exact_sums(int(grid.max()))
    return ((a + b * H[grid - 1]) / S[grid - 1]) ** power


def _ls_slope(grid: np.ndarray, y: np.ndarray) -> float:
    lx, ly = np.log(np.asarray(grid, dtype=float)), np.log(y)
    return float(np.polyfit(lx, ly, 1)[0])


def finite_t_allowance(grid: np.ndarray, power: float = 1.0) -> float:
    r"""How far above :math:`-p/2` the least-squares log-log slope of the bound can lie on ``grid``.

    It is the slope of :math:`(H_T/S_T)^p` (the case :math:`A = 0`) plus :math:`p/2`. ``power`` is 1
    for a normalized step, 1/2 for an unnormalized one. Any :math:`A > 0` only steepens the bound,
    so this is the worst case over the constants (docs/theory.md#T-normalized-rate); about 0.15 on
    :math:`16 \le T \le 2048`.

    Args:
        grid: the values of :math:`T` (at least 2), integers ``>= 1``.
        power: 1 (normalized step) or 0.5 (unnormalized step).

    Returns:
        The least-squares log-log slope of :math:`(H_T/S_T)^p` on ``grid``, plus :math:`p/2`.

    Raises:
        ValueError: if ``power`` is not 1 or 0.5, or ``grid`` has fewer than 2 points.
    """
    if power not in (0.5, 1.0):
        raise ValueError(f"power must be 1 (normalized) or 0.5 (unnormalized), got {power!r}")
    grid = np.asarray(grid, dtype=int)
    if grid.size < 2:
        raise ValueError(f"grid needs at least 2 points, got {grid!r}")
    return _ls_slope(grid, bound_curve(grid, 0.0, 1.0, power)) + power / 2
