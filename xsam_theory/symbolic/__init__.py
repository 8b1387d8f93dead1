"""Symbolic derivations (sympy), each returning a :class:`Derivation`.

A :class:`Derivation` holds the expression, its lambdified twin, the assumptions, and the
sub-results sympy proved. Every section of docs/theory.md names, under "Checked by", the
derivation that proves it; each function's docstring links back to its section. The modules:

* :mod:`xsam_theory.symbolic.geometry`: the correction geometry G1-G4
  (docs/theory.md#T-correction-identities, docs/theory.md#T-angle-monotone);
* :mod:`xsam_theory.symbolic.curvature`: the curvature the step sees (docs/theory.md#T-curvature);
* :mod:`xsam_theory.symbolic.invariance`: orientation and scale (in)variance
  (docs/theory.md#T-orientation);
* :mod:`xsam_theory.symbolic.quadratic`: GD, USAM, SAM and heavy ball on quadratics
  (docs/theory.md#T-usam to docs/theory.md#T-gd-edge);
* :mod:`xsam_theory.symbolic.xsam_1d`: X-SAM along an exact top eigenvector
  (docs/theory.md#T-reduction-1d to docs/theory.md#T-trap);
* :mod:`xsam_theory.symbolic.drift`: drift along a valley and the factorization toy
  (docs/theory.md#T-drift, docs/theory.md#T-flat-bias, docs/theory.md#T-confound);
* :mod:`xsam_theory.symbolic.power_flip`: power iteration with a dominant negative eigenvalue
  (docs/theory.md#T-dominant-negative);
* :mod:`xsam_theory.symbolic.rates`: the rate of a decaying normalized step
  (docs/theory.md#T-normalized-rate).
"""

from xsam_theory.symbolic.base import Derivation, derivation, interval_nonnegative

__all__ = ["Derivation", "derivation", "interval_nonnegative"]
