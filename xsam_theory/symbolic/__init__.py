"""Symbolic derivations (sympy), each returning a :class:`Derivation`.

A :class:`Derivation` holds the expression, its lambdified twin, the assumptions, and the
sub-results sympy proved.
"""

from xsam_theory.symbolic.base import Derivation, derivation, interval_nonnegative

__all__ = ["Derivation", "derivation", "interval_nonnegative"]
