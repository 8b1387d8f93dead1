r"""The pure maps of the SAM family: perturbations and X-SAM's corrected direction.

The formulas: docs/algorithms.md#A-xsam-forms (Eigen-SAM: docs/algorithms.md#A-eigen-sam); the
identities they satisfy: docs/theory.md#T-correction-identities.

Notation: :math:`g = \nabla L(w)`, :math:`g_{adv} = \nabla L(w+\varepsilon)`, :math:`v` a unit
estimate of the top Hessian eigenvector, :math:`\hat u = u/\|u\|` with :math:`\hat 0 = 0`.
Every map is branch-free and exact at zero vectors (no NaN from a finite input).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xsam_theory.backend import namespace
from xsam_theory.optimizers.config import Coefficient, SignRule
from xsam_theory.vectors import unit

__all__ = ["eigen_sam_perturbation", "sam_perturbation", "xsam_direction"]


def sam_perturbation(g: Any, rho: float, *, normalize: bool = True) -> Any:
    r"""SAM's ascent step :math:`\rho\,\hat g` (``normalize``), or USAM's :math:`\rho\,g`.

    The step is the perturbation :math:`\varepsilon`. Where :math:`g = 0` the perturbation is
    exactly :math:`0`.
    """
    if not normalize:
        return rho * g
    eps = unit(g)  # a new array: scaled in place where the namespace allows it
    return _scale_own(eps, rho)


def _scale_own(u: Any, s: Any) -> Any:
    """``s * u`` for an array ``u`` this module created: in place for NumPy (same bits)."""
    if type(u) is np.ndarray:
        u *= s
        return u
    return s * u


def eigen_sam_perturbation(g: Any, v: Any, rho: float, alpha: float) -> Any:
    r"""Eigen-SAM's perturbation as the authors implement it (not renormalized).

    .. math::
        s = \mathrm{sign}\langle g, v\rangle,\qquad
        \varepsilon = \rho\big(\hat g + \alpha\, s\,(v - \langle \hat g, v\rangle \hat g)\big),

    so :math:`\|\varepsilon\| = \rho\sqrt{1 + \alpha^2(1 - \langle\hat g,v\rangle^2)}` when
    :math:`\langle g, v\rangle \ne 0`. Invariant under :math:`v \to -v`. With :math:`g = 0`,
    :math:`s = 0` and :math:`\varepsilon = 0`.
    """
    xp = namespace(g, v)
    g_hat = unit(g)
    c_g = xp.vecdot(g_hat, v)
    # sign<g, v> = sign<ĝ, v>; taken from ĝ so that it cannot underflow to 0 for a tiny g
    s = xp.sign(c_g)
    return rho * (g_hat + (alpha * s) * (v - c_g * g_hat))


def xsam_direction(
    g_adv: Any,
    v: Any,
    alpha: float,
    *,
    sign_rule: SignRule | str = "paper",
    normalize: bool = True,
    coefficient: Coefficient | str = "normalized",
) -> tuple[Any, Any]:
    r"""X-SAM's corrected descent direction ``d`` and :math:`c = \langle \hat g_{adv}, v\rangle`.

    With base :math:`u = \hat g_{adv}` (``normalize``) or :math:`g_{adv}`, coefficient
    :math:`\gamma = \langle \hat g_{adv}, v\rangle` (``coefficient="normalized"``) or
    :math:`\langle g_{adv}, v\rangle` (``"raw"``):

    .. math::
        d = u - \alpha\,\mathrm{sign}(\gamma)\,\gamma\,v = u - \alpha|\gamma|\,v
        \quad(\text{paper rule}),\qquad d = u - \alpha\,\gamma\,v\quad(\text{symmetric rule}).

    The four forms (docs/algorithms.md#A-xsam-forms) are
    :class:`~xsam_theory.optimizers.config.CorrectionRule` presets.
    At :math:`\alpha = 0` the subtraction adds an exact zero, so ``d`` equals the base bit for bit.

    >>> import numpy as np
    >>> d, c = xsam_direction(np.array([3.0, 4.0]), np.array([0.0, 1.0]), 0.5)
    >>> d.tolist(), float(c)
    ([0.6, 0.4], 0.8)
    """
    xp = namespace(g_adv, v)
    sign_rule, coefficient = SignRule(sign_rule), Coefficient(coefficient)
    g_hat = unit(g_adv)
    c = xp.vecdot(g_hat, v)
    gamma = c if coefficient is Coefficient.NORMALIZED else xp.vecdot(g_adv, v)
    if sign_rule is SignRule.PAPER:
        gamma = xp.abs(gamma)  # sign(γ)·γ = |γ|
    if not normalize:
        return g_adv - (alpha * gamma) * v, c
    if type(g_hat) is np.ndarray:  # g_hat is new: subtract in place (same bits, one array fewer)
        g_hat -= (alpha * gamma) * v
        return g_hat, c
    return g_hat - (alpha * gamma) * v, c
